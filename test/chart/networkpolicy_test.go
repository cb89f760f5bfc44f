package chart

import (
	"maps"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestTheHelmTestPodMayReachTheBrokersHealthPort guards `helm test`: with
// monitoringFrom naming peers elsewhere, the test pod must still be admitted.
func TestTheHelmTestPodMayReachTheBrokersHealthPort(t *testing.T) {
	sets := maps.Clone(renders)
	sets["monitoring by labelled pods, another health port"] = []string{
		"--set-json", `networkPolicy.monitoringFrom=[{"podSelector":{"matchLabels":{"app":"prometheus"}}}]`,
		"--set", "broker.healthPort=8181"}
	checked := 0
	for name, args := range sets {
		t.Run(name, func(t *testing.T) {
			objs := render(t, "lanyard", "lanyard", args...)
			obj := find(objs, "NetworkPolicy", "lanyard-broker")
			if obj == nil {
				return // NetworkPolicy off: nothing restricts the test pod
			}
			checked++
			var policy networkingv1.NetworkPolicy
			convert(t, obj, &policy)
			broker := find(objs, "Deployment", "lanyard-broker")
			if broker == nil {
				t.Fatal("no broker Deployment lanyard-broker")
			}
			podLabels, _, _ := unstructured.NestedStringMap(broker.Object,
				"spec", "template", "metadata", "labels")
			if !selects(t, &policy.Spec.PodSelector, podLabels) {
				t.Fatalf("the policy does not select the broker pods %v", podLabels)
			}
			test := find(objs, "Pod", "lanyard-test")
			if test == nil {
				t.Fatal("no helm test pod lanyard-test")
			}
			port := healthPort(t, broker)
			if !admits(t, &policy, test.GetNamespace(), test.GetLabels(), port) {
				t.Errorf("no ingress rule admits the test pod %v to port %d", test.GetLabels(), port)
			}
		})
	}
	if checked == 0 {
		t.Error("no value set rendered the broker's NetworkPolicy")
	}
}

func convert(t *testing.T, obj *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, into); err != nil {
		t.Fatalf("%s/%s: %v", obj.GetKind(), obj.GetName(), err)
	}
}

// healthPort is the broker container's port named health, the one the kubelet
// and the NetworkPolicy see behind the Service.
func healthPort(t *testing.T, broker *unstructured.Unstructured) int32 {
	t.Helper()
	var d appsv1.Deployment
	convert(t, broker, &d)
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == "health" {
				return p.ContainerPort
			}
		}
	}
	t.Fatal("the broker container has no port named health")
	return 0
}

// admits tells whether an ingress rule of policy lets a pod with podLabels in
// namespace connect to TCP port; namespaces carry only their name label here.
func admits(t *testing.T, policy *networkingv1.NetworkPolicy, namespace string,
	podLabels map[string]string, port int32) bool {
	t.Helper()
	nsLabels := map[string]string{"kubernetes.io/metadata.name": namespace}
	for _, rule := range policy.Spec.Ingress {
		if !rulePortsAdmit(rule.Ports, port) {
			continue
		}
		if len(rule.From) == 0 {
			return true
		}
		for _, peer := range rule.From {
			switch {
			case peer.IPBlock != nil:
			case peer.NamespaceSelector == nil:
				if namespace == policy.Namespace && selects(t, peer.PodSelector, podLabels) {
					return true
				}
			case selects(t, peer.NamespaceSelector, nsLabels):
				if peer.PodSelector == nil || selects(t, peer.PodSelector, podLabels) {
					return true
				}
			}
		}
	}
	return false
}

func rulePortsAdmit(ports []networkingv1.NetworkPolicyPort, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		tcp := p.Protocol == nil || *p.Protocol == "TCP"
		if tcp && p.Port != nil && p.Port.Type == intstr.Int && p.Port.IntVal == port {
			return true
		}
	}
	return false
}

func selects(t *testing.T, sel *metav1.LabelSelector, set map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return s.Matches(labels.Set(set))
}

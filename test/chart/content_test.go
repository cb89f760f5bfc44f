package chart

import (
	"reflect"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// components are the chart's Deployments. Each has a Service, a PodDisruptionBudget and
// a NetworkPolicy of the same name, lanyard-<component> for the release lanyard.
var components = []string{"broker", "webhook"}

// other is the component whose pods a component's selectors must not reach.
func other(component string) string {
	if component == "broker" {
		return "webhook"
	}
	return "broker"
}

func TestDisruptionBudgetsSelectTheirPodsAndLetADrainProceed(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"default values", nil},
		{"every feature on", []string{"-f", allFeatures}},
		{"a percentage of the replicas", []string{"--set", "podDisruptionBudget.maxUnavailable=50%"}},
		{"one broker replica", renders["one replica without shared key"]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, "lanyard", "lanyard", tc.args...)
			for _, c := range components {
				pdb := rendered[policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget", "lanyard-"+c)
				d := deployment(t, objs, "lanyard-"+c)
				if !reflect.DeepEqual(pdb.Spec.Selector, d.Spec.Selector) {
					t.Errorf("%s: selector %v, want the Deployment's %v", c, pdb.Spec.Selector, d.Spec.Selector)
				}
				for pod, podLabels := range podLabelSets(objs) {
					want := pod == "Deployment/lanyard-"+c
					if got := selects(t, pdb.Spec.Selector, podLabels); got != want {
						t.Errorf("%s: selects the pods of %s = %v, want %v", c, pod, got, want)
					}
				}
				evict, keep := disruptionBounds(t, pdb, int(*d.Spec.Replicas))
				if evict < 1 {
					t.Errorf("%s: no pod of %d may be evicted; a node drain would hang", c, *d.Spec.Replicas)
				}
				if *d.Spec.Replicas > 1 && keep < 1 {
					t.Errorf("%s: all %d pods may be evicted at once", c, *d.Spec.Replicas)
				}
			}
		})
	}
}

// disruptionBounds tells how many of replicas healthy pods the budget lets a voluntary
// disruption evict, and how many it keeps, rounding as the disruption controller does.
func disruptionBounds(t *testing.T, pdb *policyv1.PodDisruptionBudget,
	replicas int) (evict, keep int) {
	t.Helper()
	limit, fromMax := pdb.Spec.MaxUnavailable, true
	if limit == nil {
		limit, fromMax = pdb.Spec.MinAvailable, false
	}
	if limit == nil {
		t.Fatalf("%s: neither maxUnavailable nor minAvailable", pdb.Name)
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(limit, replicas, true)
	if err != nil {
		t.Fatalf("%s: %v", pdb.Name, err)
	}
	if fromMax {
		return n, replicas - n
	}
	return replicas - n, n
}

func TestReplicasAreSpreadOverNodesByTheirOwnLabels(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		replicas int32
	}{
		{"default values", nil, 2},
		{"every feature on", []string{"-f", allFeatures}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, "lanyard", "lanyard", tc.args...)
			for _, c := range components {
				d := deployment(t, objs, "lanyard-"+c)
				if *d.Spec.Replicas != tc.replicas {
					t.Errorf("%s: %d replicas, want %d", c, *d.Spec.Replicas, tc.replicas)
				}
				term := hostnameAntiAffinity(d)
				if term == nil {
					t.Errorf("%s: no pod anti-affinity term on kubernetes.io/hostname", c)
					continue
				}
				if !reflect.DeepEqual(term.LabelSelector, d.Spec.Selector) {
					t.Errorf("%s: anti-affinity selects %v, want the Deployment's own %v",
						c, term.LabelSelector, d.Spec.Selector)
				}
				if !selects(t, term.LabelSelector, d.Spec.Template.Labels) {
					t.Errorf("%s: anti-affinity does not select the component's pods", c)
				}
			}
		})
	}
}

// hostnameAntiAffinity returns the Deployment's anti-affinity term, required or
// preferred, that keeps replicas off one node.
func hostnameAntiAffinity(d *appsv1.Deployment) *corev1.PodAffinityTerm {
	a := d.Spec.Template.Spec.Affinity
	if a == nil || a.PodAntiAffinity == nil {
		return nil
	}
	terms := a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	for _, w := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
		terms = append(terms, w.PodAffinityTerm)
	}
	for i := range terms {
		if terms[i].TopologyKey == "kubernetes.io/hostname" {
			return &terms[i]
		}
	}
	return nil
}

// peer is a pod that may try to connect to the chart's pods.
type peer struct {
	namespace string
	labels    map[string]string
}

func TestNetworkPoliciesOpenServingPortsAndRestrictTheRest(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		egress   bool
		monitor  peer // named by networkPolicy.monitoringFrom, or its default
		stranger peer // not named there
	}{
		{"default values", nil, false,
			peer{"lanyard", map[string]string{"app": "prometheus"}},
			peer{"team-a", map[string]string{"app": "prometheus"}}},
		{"every feature on", []string{"-f", allFeatures}, true,
			peer{"monitoring", map[string]string{"app": "prometheus"}},
			peer{"lanyard", map[string]string{"app": "web"}}},
		{"monitoring by labelled pods", []string{"--set-json",
			`networkPolicy.monitoringFrom=[{"podSelector":{"matchLabels":{"app":"prometheus"}}}]`}, false,
			peer{"lanyard", map[string]string{"app": "prometheus"}},
			peer{"lanyard", map[string]string{"app": "web"}}},
	}
	serving := map[string]string{"broker": "grpc", "webhook": "https"}
	restricted := map[string][]string{"broker": {"health", "metrics"}, "webhook": {"health"}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, "lanyard", "lanyard", tc.args...)
			for _, c := range components {
				policy := rendered[networkingv1.NetworkPolicy](t, objs, "NetworkPolicy", "lanyard-"+c)
				d := deployment(t, objs, "lanyard-"+c)
				otherPods := deployment(t, objs, "lanyard-"+other(c)).Spec.Template.Labels
				if !selects(t, &policy.Spec.PodSelector, d.Spec.Template.Labels) ||
					selects(t, &policy.Spec.PodSelector, otherPods) {
					t.Errorf("%s: the policy does not select exactly the component's pods", c)
				}
				checkPolicyTypes(t, c, policy, tc.egress)
				for _, p := range []peer{tc.monitor, tc.stranger} {
					port := containerPort(t, d, serving[c])
					if !admits(t, policy, p.namespace, p.labels, port) {
						t.Errorf("%s: serving port %d closed to %v", c, port, p)
					}
				}
				for _, name := range restricted[c] {
					port := containerPort(t, d, name)
					if !admits(t, policy, tc.monitor.namespace, tc.monitor.labels, port) {
						t.Errorf("%s: %s port %d closed to the monitoring peer %v", c, name, port, tc.monitor)
					}
					if admits(t, policy, tc.stranger.namespace, tc.stranger.labels, port) {
						t.Errorf("%s: %s port %d open to %v", c, name, port, tc.stranger)
					}
				}
			}
		})
	}
}

// checkPolicyTypes wants Ingress always, and Egress exactly when networkPolicy.egress
// lists rules: with none, egress stays unrestricted as values.yaml promises.
func checkPolicyTypes(t *testing.T, c string, policy *networkingv1.NetworkPolicy, egress bool) {
	t.Helper()
	want := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	if egress {
		want = append(want, networkingv1.PolicyTypeEgress)
	}
	if !slices.Equal(policy.Spec.PolicyTypes, want) {
		t.Errorf("%s: policyTypes %v, want %v", c, policy.Spec.PolicyTypes, want)
	}
	if egress != (len(policy.Spec.Egress) > 0) {
		t.Errorf("%s: %d egress rules with egress restricted = %v", c, len(policy.Spec.Egress), egress)
	}
}

func TestServiceMonitorScrapesTheBrokersMetricsPort(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		want   bool
		labels map[string]string
	}{
		{"default values", nil, false, nil},
		{"enabled on the defaults", []string{"--set", "serviceMonitor.enabled=true"}, true, nil},
		{"every feature on", []string{"-f", allFeatures}, true, map[string]string{"release": "prometheus"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, "lanyard", "lanyard", tc.args...)
			monitor := find(objs, "ServiceMonitor", "")
			if (monitor != nil) != tc.want {
				t.Fatalf("ServiceMonitor rendered = %v, want %v", monitor != nil, tc.want)
			}
			if monitor == nil {
				return
			}
			for k, v := range tc.labels {
				if monitor.GetLabels()[k] != v {
					t.Errorf("label %s = %q, want %q", k, monitor.GetLabels()[k], v)
				}
			}
			var sel metav1.LabelSelector
			convert(t, nested(t, monitor, "spec", "selector"), &sel)
			broker, webhook := service(t, objs, "lanyard-broker"), service(t, objs, "lanyard-webhook")
			if !selects(t, &sel, broker.Labels) || selects(t, &sel, webhook.Labels) {
				t.Errorf("selector %v does not select exactly the broker Service", sel.MatchLabels)
			}
			names, _, _ := unstructured.NestedStringSlice(monitor.Object,
				"spec", "namespaceSelector", "matchNames")
			if !slices.Equal(names, []string{"lanyard"}) {
				t.Errorf("namespaceSelector.matchNames = %v, want the release namespace", names)
			}
			endpoints, _, _ := unstructured.NestedSlice(monitor.Object, "spec", "endpoints")
			if len(endpoints) == 0 {
				t.Fatal("no endpoints")
			}
			brokerPods := deployment(t, objs, "lanyard-broker")
			metrics := containerPort(t, brokerPods, "metrics")
			for _, e := range endpoints {
				name, _ := e.(map[string]any)["port"].(string)
				port, ok := servicePortTarget(t, broker, brokerPods,
					func(p corev1.ServicePort) bool { return p.Name == name })
				if !ok || port != metrics {
					t.Errorf("endpoint port %q leads to container port %d (found %v), want %d",
						name, port, ok, metrics)
				}
			}
		})
	}
}

// rendered returns the rendered object of kind named name (any name when empty) as a T,
// failing the test when there is none.
func rendered[T any](t *testing.T, objs []*unstructured.Unstructured, kind, name string) *T {
	t.Helper()
	obj := find(objs, kind, name)
	if obj == nil {
		t.Fatalf("no %s %s rendered", kind, name)
	}
	var v T
	convert(t, obj, &v)
	return &v
}

func deployment(t *testing.T, objs []*unstructured.Unstructured, name string) *appsv1.Deployment {
	t.Helper()
	return rendered[appsv1.Deployment](t, objs, "Deployment", name)
}

func service(t *testing.T, objs []*unstructured.Unstructured, name string) *corev1.Service {
	t.Helper()
	return rendered[corev1.Service](t, objs, "Service", name)
}

// nested returns the map at path of obj as an object to convert.
func nested(t *testing.T, obj *unstructured.Unstructured, path ...string) *unstructured.Unstructured {
	t.Helper()
	m, ok, err := unstructured.NestedMap(obj.Object, path...)
	if !ok || err != nil {
		t.Fatalf("%s/%s: no map at %v (%v)", obj.GetKind(), obj.GetName(), path, err)
	}
	return &unstructured.Unstructured{Object: m}
}

// podLabelSets returns the labels of every pod the chart makes, by object.
func podLabelSets(objs []*unstructured.Unstructured) map[string]map[string]string {
	sets := map[string]map[string]string{}
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment":
			l, _, _ := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "labels")
			sets["Deployment/"+o.GetName()] = l
		case "Pod":
			sets["Pod/"+o.GetName()] = o.GetLabels()
		}
	}
	return sets
}

// containerPort returns the number of the port called name in the Deployment's pods.
func containerPort(t *testing.T, d *appsv1.Deployment, name string) int32 {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name {
				return p.ContainerPort
			}
		}
	}
	t.Fatalf("%s: no container port %s", d.Name, name)
	return 0
}

// servicePortTarget returns the container port of d behind the first port of svc that
// match accepts, resolving a named targetPort as the endpoints controller does.
func servicePortTarget(t *testing.T, svc *corev1.Service, d *appsv1.Deployment,
	match func(corev1.ServicePort) bool) (int32, bool) {
	t.Helper()
	for _, p := range svc.Spec.Ports {
		if !match(p) {
			continue
		}
		switch {
		case p.TargetPort.Type == intstr.String:
			return containerPort(t, d, p.TargetPort.StrVal), true
		case p.TargetPort.IntVal != 0:
			return p.TargetPort.IntVal, true
		default:
			return p.Port, true
		}
	}
	return 0, false
}

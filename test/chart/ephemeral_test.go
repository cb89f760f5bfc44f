package chart

import (
	"reflect"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/lanyard-dev/lanyard/broker/webhook"
)

// renderEphemeralHook renders the chart and returns its webhook for ephemeral containers,
// or nil when the chart renders no ValidatingWebhookConfiguration.
func renderEphemeralHook(
	t *testing.T,
	args ...string,
) (*admissionv1.ValidatingWebhook, map[string]string) {
	t.Helper()
	obj := find(render(t, "lanyard", "lanyard", args...), "ValidatingWebhookConfiguration", "")
	if obj == nil {
		return nil, nil
	}
	var config admissionv1.ValidatingWebhookConfiguration
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &config); err != nil {
		t.Fatal(err)
	}
	if len(config.Webhooks) != 1 {
		t.Fatalf("the ValidatingWebhookConfiguration has %d webhooks, want 1", len(config.Webhooks))
	}
	return &config.Webhooks[0], config.Annotations
}

func TestDebugSessionsAndPodUpdatesAreSentToTheWebhooksValidatePath(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		failure admissionv1.FailurePolicyType
		timeout int32
		bundle  string // caBundle; empty: cert-manager's CA injector fills it
	}{
		{"default values", nil, admissionv1.Fail, 10, ""},
		{"every feature on", []string{"-f", allFeatures}, admissionv1.Fail, 5, ""},
		{"an existing TLS secret", renders["an existing TLS secret"], admissionv1.Fail, 10, "pem"},
		{"an operator who chose to fail open", []string{"--set", "webhook.failurePolicy=Ignore"},
			admissionv1.Ignore, 10, ""},
	}
	namespaced := admissionv1.NamespacedScope
	update := func(resource string) admissionv1.RuleWithOperations {
		return admissionv1.RuleWithOperations{
			Operations: []admissionv1.OperationType{admissionv1.Update},
			Rule: admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"},
				Resources: []string{resource}, Scope: &namespaced},
		}
	}
	// Only UPDATE: creation is /mutate's, and pods/status, which the kubelet writes all the
	// time, must not depend on the webhook.
	want := []admissionv1.RuleWithOperations{update("pods/ephemeralcontainers"), update("pods")}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, annotations := renderEphemeralHook(t, tc.args...)
			if h == nil {
				t.Fatal("no ValidatingWebhookConfiguration rendered")
			}
			if !reflect.DeepEqual(h.Rules, want) {
				t.Errorf("rules = %+v, want only UPDATE of pods/ephemeralcontainers and pods", h.Rules)
			}
			ref := h.ClientConfig.Service
			if ref == nil || ref.Name != "lanyard-webhook" || ref.Namespace != "lanyard" ||
				ref.Path == nil || *ref.Path != "/validate" {
				t.Errorf("client config %+v, want lanyard/lanyard-webhook path /validate", h.ClientConfig)
			}
			if string(h.ClientConfig.CABundle) != tc.bundle {
				t.Errorf("caBundle = %q, want %q", h.ClientConfig.CABundle, tc.bundle)
			}
			injected := annotations["cert-manager.io/inject-ca-from"] == "lanyard/lanyard-tls"
			if injected != (tc.bundle == "") {
				t.Errorf("cert-manager injection annotations = %v with caBundle %q", annotations, tc.bundle)
			}
			if *h.FailurePolicy != tc.failure || *h.TimeoutSeconds != tc.timeout ||
				*h.SideEffects != admissionv1.SideEffectClassNone {
				t.Errorf("failurePolicy %s, timeout %d, sideEffects %s; want %s, %d, None",
					*h.FailurePolicy, *h.TimeoutSeconds, *h.SideEffects, tc.failure, tc.timeout)
			}
		})
	}
}

func TestDebugContainersAreCheckedWhereverInjectedPodsMayLive(t *testing.T) {
	h, _ := renderEphemeralHook(t)
	if h == nil || h.NamespaceSelector == nil {
		t.Fatal("no namespace selector rendered")
	}
	selector, err := metav1.LabelSelectorAsSelector(h.NamespaceSelector)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		namespace string
		labels    map[string]string
		checked   bool
	}{
		{"a namespace opted in to injection", "team-a",
			map[string]string{"lanyard.dev/inject": "enabled"}, true},
		{"an enforced namespace", "team-b", map[string]string{"lanyard.dev/enforce": "true"}, true},
		{"a namespace that has lost its injection label", "team-c", nil, true},
		{"the release namespace", "lanyard", map[string]string{"lanyard.dev/inject": "enabled"}, false},
		{"kube-system", "kube-system", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set := labels.Set{"kubernetes.io/metadata.name": tc.namespace}
			for k, v := range tc.labels {
				set[k] = v
			}
			if got := selector.Matches(set); got != tc.checked {
				t.Errorf("namespace %s %v selected = %v, want %v", tc.namespace, tc.labels, got, tc.checked)
			}
		})
	}
	// The real API server evaluates the expression (ephemeral_integration_test.go); here the
	// names it looks for must be the injector's.
	if len(h.MatchConditions) != 1 {
		t.Fatalf("match conditions = %+v, want one", h.MatchConditions)
	}
	expr := h.MatchConditions[0].Expression
	names := []string{webhook.AgentContainerName, webhook.TokenVolumeName, webhook.AnnotationPrefix}
	for _, name := range names {
		if !strings.Contains(expr, "'"+name) {
			t.Errorf("match condition %q does not look for %s", expr, name)
		}
	}
}

func TestNoDebugWebhookIsRegisteredWithoutTheInjector(t *testing.T) {
	h, _ := renderEphemeralHook(t, "--set", "webhook.enabled=false,enforcement.enabled=false")
	if h != nil {
		t.Error("a ValidatingWebhookConfiguration is rendered with webhook.enabled=false")
	}
}

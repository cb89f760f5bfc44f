package chart

import (
	"slices"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

func TestTheInjectorFailsClosedAndCallsTheWebhookService(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		timeout int32
	}{
		{"default values", nil, 10},
		{"every feature on", []string{"-f", allFeatures}, 5},
		{"the longest timeout", []string{"--set", "webhook.timeoutSeconds=30"}, 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, "lanyard", "lanyard", tc.args...)
			config := mutatingConfig(t, objs)
			svc := service(t, objs, "lanyard-webhook")
			webhook := deployment(t, objs, "lanyard-webhook")
			serving := containerPort(t, webhook, "https")
			for _, h := range config.Webhooks {
				checkWebhookPolicies(t, &h, tc.timeout)
				ref := h.ClientConfig.Service
				if ref == nil || h.ClientConfig.URL != nil {
					t.Errorf("%s: client config %+v, want the webhook Service", h.Name, h.ClientConfig)
					continue
				}
				if ref.Name != svc.Name || ref.Namespace != "lanyard" ||
					ref.Path == nil || *ref.Path != "/mutate" {
					t.Errorf("%s: calls %s/%s path %v, want lanyard/%s path /mutate",
						h.Name, ref.Namespace, ref.Name, ref.Path, svc.Name)
				}
				port := int32(443) // the API server's default
				if ref.Port != nil {
					port = *ref.Port
				}
				target, ok := servicePortTarget(t, svc, webhook,
					func(p corev1.ServicePort) bool { return p.Port == port })
				if !ok || target != serving {
					t.Errorf("%s: Service port %d leads to %d (found %v), want the serving port %d",
						h.Name, port, target, ok, serving)
				}
			}
			if len(podCreateWebhooks(config)) == 0 {
				t.Error("no webhook is called for pod CREATE")
			}
		})
	}
}

func checkWebhookPolicies(t *testing.T, h *admissionv1.MutatingWebhook, timeout int32) {
	t.Helper()
	want := map[string][2]any{
		"failurePolicy":      {ptrValue(h.FailurePolicy), admissionv1.Fail},
		"timeoutSeconds":     {ptrValue(h.TimeoutSeconds), timeout},
		"reinvocationPolicy": {ptrValue(h.ReinvocationPolicy), admissionv1.IfNeededReinvocationPolicy},
		"sideEffects":        {ptrValue(h.SideEffects), admissionv1.SideEffectClassNone},
	}
	for field, v := range want {
		if v[0] != v[1] {
			t.Errorf("%s: %s = %v, want %v", h.Name, field, v[0], v[1])
		}
	}
}

func ptrValue[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestTheInjectorSeesOptedInNamespacesOnceAndNeverItsOwn(t *testing.T) {
	inject, enforce := "lanyard.dev/inject", "lanyard.dev/enforce"
	tests := []struct {
		name      string
		namespace string
		labels    map[string]string
		calls     int
	}{
		{"a namespace opted in to injection", "team-a", map[string]string{inject: "enabled"}, 1},
		{"an enforced namespace", "team-b", map[string]string{enforce: "true"}, 1},
		{"a namespace with both labels", "team-c",
			map[string]string{"lanyard.dev/inject": "enabled", "lanyard.dev/enforce": "true"}, 1},
		{"an unlabelled namespace", "team-d", nil, 0},
		{"a namespace with injection disabled", "team-e", map[string]string{inject: "disabled"}, 0},
		{"a namespace with enforcement off", "team-f", map[string]string{enforce: "false"}, 0},
		{"the release namespace with both labels", "lanyard",
			map[string]string{"lanyard.dev/inject": "enabled", "lanyard.dev/enforce": "true"}, 0},
		{"kube-system with both labels", "kube-system",
			map[string]string{"lanyard.dev/inject": "enabled", "lanyard.dev/enforce": "true"}, 0},
	}
	values := map[string][]string{"default values": nil, "every feature on": {"-f", allFeatures}}
	for name, args := range values {
		hooks := podCreateWebhooks(mutatingConfig(t, render(t, "lanyard", "lanyard", args...)))
		for _, tc := range tests {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				nsLabels := map[string]string{"kubernetes.io/metadata.name": tc.namespace}
				for k, v := range tc.labels {
					nsLabels[k] = v
				}
				calls := 0
				for _, h := range hooks {
					if h.NamespaceSelector != nil && selects(t, h.NamespaceSelector, nsLabels) {
						calls++
					}
				}
				if calls != tc.calls {
					t.Errorf("a pod CREATE in %s %v calls the injector %d times, want %d",
						tc.namespace, tc.labels, calls, tc.calls)
				}
			})
		}
	}
}

func TestTheEnforcementPolicyIsBoundToEnforcedNamespaces(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		actions []admissionv1.ValidationAction // nil: nothing rendered
	}{
		{"default values", nil, []admissionv1.ValidationAction{admissionv1.Deny}},
		{"every feature on", []string{"-f", allFeatures},
			[]admissionv1.ValidationAction{admissionv1.Deny, admissionv1.Audit}},
		{"enforcement off", []string{"--set", "enforcement.enabled=false"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, "lanyard", "lanyard", tc.args...)
			policyObj := find(objs, "ValidatingAdmissionPolicy", "")
			bindingObj := find(objs, "ValidatingAdmissionPolicyBinding", "")
			if tc.actions == nil {
				if policyObj != nil || bindingObj != nil {
					t.Error("a policy or binding is rendered with enforcement off")
				}
				return
			}
			if policyObj == nil || bindingObj == nil {
				t.Fatal("the policy or its binding is missing")
			}
			var policy admissionv1.ValidatingAdmissionPolicy
			var binding admissionv1.ValidatingAdmissionPolicyBinding
			convert(t, policyObj, &policy)
			convert(t, bindingObj, &binding)
			if binding.Spec.PolicyName != policy.Name {
				t.Errorf("binding names policy %q, want %q", binding.Spec.PolicyName, policy.Name)
			}
			if binding.Spec.ParamRef != nil {
				t.Errorf("binding has a paramRef %+v; the policy takes no parameters", binding.Spec.ParamRef)
			}
			if !slices.Equal(binding.Spec.ValidationActions, tc.actions) ||
				!slices.Contains(binding.Spec.ValidationActions, admissionv1.Deny) {
				t.Errorf("validationActions %v, want %v", binding.Spec.ValidationActions, tc.actions)
			}
			m := binding.Spec.MatchResources
			if m == nil || m.NamespaceSelector == nil {
				t.Fatal("the binding has no namespace selector")
			}
			sel, err := metav1.LabelSelectorAsSelector(m.NamespaceSelector)
			if err != nil {
				t.Fatal(err)
			}
			for _, ns := range []struct {
				name   string
				labels labels.Set
				want   bool
			}{
				{"team-a", labels.Set{"lanyard.dev/enforce": "true"}, true},
				{"team-b", labels.Set{"lanyard.dev/enforce": "false"}, false},
				{"team-c", labels.Set{"lanyard.dev/inject": "enabled"}, false},
				{"lanyard", labels.Set{"lanyard.dev/enforce": "true"}, false}, // the release's own
			} {
				ns.labels["kubernetes.io/metadata.name"] = ns.name
				if got := sel.Matches(ns.labels); got != ns.want {
					t.Errorf("binding selects namespace %s labelled %v: %v, want %v",
						ns.name, ns.labels, got, ns.want)
				}
			}
			if policy.Spec.FailurePolicy == nil || *policy.Spec.FailurePolicy != admissionv1.Fail {
				t.Errorf("policy failurePolicy = %v, want Fail", ptrValue(policy.Spec.FailurePolicy))
			}
			c := policy.Spec.MatchConstraints
			covers := func(r admissionv1.NamedRuleWithOperations) bool {
				return coversPodCreate(r.RuleWithOperations)
			}
			if c == nil || !slices.ContainsFunc(c.ResourceRules, covers) {
				t.Errorf("the policy's match constraints %+v do not cover pod CREATE", c)
			}
		})
	}
}

func mutatingConfig(t *testing.T,
	objs []*unstructured.Unstructured) *admissionv1.MutatingWebhookConfiguration {
	t.Helper()
	config := rendered[admissionv1.MutatingWebhookConfiguration](t, objs, "MutatingWebhookConfiguration", "")
	if len(config.Webhooks) == 0 {
		t.Fatalf("%s has no webhooks", config.Name)
	}
	return config
}

// podCreateWebhooks returns the webhooks of config that the API server calls when a pod
// is created; others, such as one for ephemeral containers, are left out.
func podCreateWebhooks(
	config *admissionv1.MutatingWebhookConfiguration) []admissionv1.MutatingWebhook {
	var hooks []admissionv1.MutatingWebhook
	for _, h := range config.Webhooks {
		if slices.ContainsFunc(h.Rules, coversPodCreate) {
			hooks = append(hooks, h)
		}
	}
	return hooks
}

// coversPodCreate tells whether rule matches the creation of a core/v1 pod.
func coversPodCreate(rule admissionv1.RuleWithOperations) bool {
	has := func(list []string, v string) bool {
		return slices.Contains(list, v) || slices.Contains(list, "*")
	}
	ops := make([]string, len(rule.Operations))
	for i, op := range rule.Operations {
		ops[i] = string(op)
	}
	scope := rule.Scope == nil || *rule.Scope == admissionv1.AllScopes ||
		*rule.Scope == admissionv1.NamespacedScope
	return has(rule.APIGroups, "") && has(rule.APIVersions, "v1") && has(rule.Resources, "pods") &&
		has(ops, string(admissionv1.Create)) && scope
}

package chart

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestChartLintsWithDefaultsAndEveryFeature(t *testing.T) {
	for _, args := range [][]string{nil, {"-f", allFeatures}} {
		out, err := helm(t, append([]string{"lint", "--strict", chartDir}, args...)...)
		if err != nil {
			t.Errorf("helm lint %v: %v\n%s", args, err, out)
		}
	}
}

var renders = map[string][]string{
	"default values":   nil,
	"every feature on": {"-f", allFeatures},
	"an existing TLS secret": {"--set",
		"tls.certManager.enabled=false,tls.existingSecret=tls,tls.caBundle=pem"},
	"Vault token authentication": {"--set", "vault.auth=token,vault.tokenSecret=vault-token"},
	"one replica without shared key": {"--set",
		"broker.replicas=1,broker.credentialKey.generate=false"},
}

func TestNoPodOfTheChartAutomountsAToken(t *testing.T) {
	for name, args := range renders {
		t.Run(name, func(t *testing.T) {
			specs := podSpecs(render(t, "lanyard", "lanyard", args...))
			if len(specs) < 2 {
				t.Fatalf("found %d pod specs", len(specs))
			}
			for obj, spec := range specs {
				if v, ok := spec["automountServiceAccountToken"].(bool); !ok || v {
					t.Errorf("%s: automountServiceAccountToken = %v, want false", obj,
						spec["automountServiceAccountToken"])
				}
			}
		})
	}
}

func TestEveryContainerIsHardened(t *testing.T) {
	for name, args := range renders {
		t.Run(name, func(t *testing.T) {
			for obj, spec := range podSpecs(render(t, "lanyard", "lanyard", args...)) {
				pod, _, _ := unstructured.NestedMap(spec, "securityContext")
				containers, _, _ := unstructured.NestedSlice(spec, "containers")
				inits, _, _ := unstructured.NestedSlice(spec, "initContainers")
				for _, c := range append(containers, inits...) {
					c := c.(map[string]any)
					for _, problem := range hardeningProblems(pod, c) {
						t.Errorf("%s container %s: %s", obj, c["name"], problem)
					}
				}
			}
		})
	}
}

// hardeningProblems lists what a container lacks of SPEC's hardened securityContext,
// reading the pod-level context where Kubernetes falls back to it.
func hardeningProblems(pod, c map[string]any) []string {
	sc, _, _ := unstructured.NestedMap(c, "securityContext")
	get := func(field ...string) any {
		if v, ok, _ := unstructured.NestedFieldNoCopy(sc, field...); ok {
			return v
		}
		v, _, _ := unstructured.NestedFieldNoCopy(pod, field...)
		return v
	}
	var problems []string
	want := map[string]any{"runAsNonRoot": true, "readOnlyRootFilesystem": true,
		"allowPrivilegeEscalation": false}
	for field, v := range want {
		if get(field) != v {
			problems = append(problems, fmt.Sprintf("%s = %v, want %v", field, get(field), v))
		}
	}
	if get("seccompProfile", "type") != "RuntimeDefault" {
		problems = append(problems, "seccomp profile is not RuntimeDefault")
	}
	if drop := fmt.Sprint(get("capabilities", "drop")); drop != "[ALL]" {
		problems = append(problems, "capabilities drop "+drop+", want [ALL]")
	}
	if _, ok := c["resources"]; !ok {
		problems = append(problems, "no resources")
	}
	return problems
}

func TestNamesAndLabelsFit63Characters(t *testing.T) {
	long := strings.Repeat("a", 63)
	for _, args := range [][]string{
		{"--set", "fullnameOverride=" + long},
		{"-f", allFeatures, "--set", "nameOverride=" + long},
	} {
		objs := render(t, long[:53], "lanyard", args...) // helm allows 53 characters
		seen := map[string]bool{}
		for _, o := range objs {
			key := o.GetKind() + "/" + o.GetName()
			if len(o.GetName()) > 63 {
				t.Errorf("%s: name has %d characters", key, len(o.GetName()))
			}
			if seen[key] {
				t.Errorf("%s: two objects share the name", key)
			}
			seen[key] = true
			for k, v := range o.GetLabels() {
				if len(v) > 63 {
					t.Errorf("%s: label %s has %d characters", key, k, len(v))
				}
			}
		}
	}
}

func TestEveryObjectCarriesTheStandardLabels(t *testing.T) {
	for _, o := range render(t, "lanyard", "lanyard", "-f", allFeatures) {
		labels := o.GetLabels()
		for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance",
			"app.kubernetes.io/version", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
			if labels[k] == "" {
				t.Errorf("%s/%s lacks label %s", o.GetKind(), o.GetName(), k)
			}
		}
	}
}

func TestCatalogChangeRollsTheBrokerAndWebhook(t *testing.T) {
	checksums := func(args ...string) map[string]string {
		out := map[string]string{}
		for _, o := range render(t, "lanyard", "lanyard", args...) {
			if o.GetKind() == "Deployment" {
				v, _, _ := unstructured.NestedString(o.Object, "spec", "template", "metadata",
					"annotations", "checksum/catalog")
				out[o.GetName()] = v
			}
		}
		return out
	}
	before := checksums()
	same := checksums()
	after := checksums("-f", allFeatures)
	for name, sum := range before {
		if sum == "" {
			t.Errorf("%s has no checksum/catalog annotation", name)
		}
		if same[name] != sum {
			t.Errorf("%s: checksum changes without a catalog change", name)
		}
		if after[name] == sum {
			t.Errorf("%s: checksum unchanged although the catalog changed", name)
		}
	}
}

func TestContradictoryValuesFailWithAMessage(t *testing.T) {
	tests := []struct {
		name string
		set  string
		want string
	}{
		{"both TLS sources", "tls.existingSecret=tls",
			"set either tls.certManager.enabled or tls.existingSecret, not both"},
		{"no TLS source", "tls.certManager.enabled=false", "need a certificate"},
		{"an existing secret without CA", "tls.certManager.enabled=false,tls.existingSecret=tls",
			"set tls.caBundle to its PEM"},
		{"no broker replica", "broker.replicas=0", "broker.replicas must be at least 1"},
		{"a budget that lets no pod go", "podDisruptionBudget.maxUnavailable=0", "node drains hang"},
		{"a budget of 0%", "podDisruptionBudget.maxUnavailable=0%", "node drains hang"},
		{"no webhook replica", "webhook.replicas=0", "webhook.replicas must be at least 1"},
		{"replicas without shared key", "broker.credentialKey.generate=false", "replicas > 1 must share a key"},
		{"enforcement without injector", "webhook.enabled=false", "leaves nothing to inject the agent"},
		{"token auth without token", "vault.auth=token", "vault.auth=token needs the Secret"},
		{"kubernetes auth with a token secret", "vault.tokenSecret=t", "only used with vault.auth=token"},
		{"kubernetes auth without role", "vault.role=", "needs the Vault role"},
		{"a trust bundle without webhook", "webhook.enabled=false,enforcement.enabled=false," +
			"webhook.brokerCA.clusterTrustBundle=b", "has no effect with webhook.enabled=false"},
		{"an unknown value", "brokr.replicas=2", "additional properties 'brokr' not allowed"},
		{"an unknown validation action", "enforcement.validationActions={Block}", "validationActions"},
		{"Deny with Warn", "enforcement.validationActions={Warn,Deny}", "refuses Deny together with Warn"},
		{"an agent token under 10m", "webhook.agent.tokenExpiration=9m59s", "at least 10m"},
		{"an agent token in seconds under 10m", "webhook.agent.tokenExpiration=599s", "at least 10m"},
		{"the broker's health and metrics on one port", "broker.metricsPort=8081",
			"broker.healthPort and broker.metricsPort are both port 8081"},
		{"all broker ports equal", "broker.port=9000,broker.healthPort=9000,broker.metricsPort=9000",
			"are both port 9000"},
		{"the webhook's ports equal", "webhook.healthPort=9443",
			"webhook.healthPort and webhook.port are both port 9443"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := helm(t, "template", "lanyard", chartDir, "--set", tc.set)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestValuesAtTheLimitsRender(t *testing.T) {
	for _, set := range []string{
		"webhook.agent.tokenExpiration=10m",
		"webhook.agent.tokenExpiration=600s",
		"webhook.agent.tokenExpiration=1h0m0s",
		"enforcement.validationActions={Warn,Audit}",
		"enforcement.validationActions={Deny,Audit}",
		// Broker and webhook are separate pods: the same health port in each is fine.
		"broker.healthPort=8081,webhook.healthPort=8081",
		"webhook.enabled=false,enforcement.enabled=false,webhook.port=8443,webhook.healthPort=8443",
	} {
		if _, err := helm(t, "template", "lanyard", chartDir, "--set", set); err != nil {
			t.Errorf("--set %s: %v", set, err)
		}
	}
}

func TestWebhookCABundleFollowsTheTLSSource(t *testing.T) {
	certManager := find(render(t, "lanyard", "lanyard"), "MutatingWebhookConfiguration", "")
	got := certManager.GetAnnotations()["cert-manager.io/inject-ca-from"]
	if got != "lanyard/lanyard-tls" {
		t.Errorf("cert-manager injection annotation = %q", got)
	}
	objs := render(t, "lanyard", "lanyard", renders["an existing TLS secret"]...)
	if find(objs, "Certificate", "") != nil {
		t.Error("a Certificate is rendered although tls.existingSecret is set")
	}
	config := find(objs, "MutatingWebhookConfiguration", "")
	hooks, _, _ := unstructured.NestedSlice(config.Object, "webhooks")
	for _, h := range hooks {
		bundle, _, _ := unstructured.NestedString(h.(map[string]any), "clientConfig", "caBundle")
		if bundle != "cGVt" {
			t.Errorf("caBundle = %q, want base64 of tls.caBundle", bundle)
		}
	}
}

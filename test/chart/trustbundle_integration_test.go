//go:build integration

package chart

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/broker/webhook"
	"github.com/lanyard-dev/lanyard/test/harness"
)

type fixedRoles map[string]time.Duration

func (r fixedRoles) MaxTTL(name string) (time.Duration, bool) {
	d, ok := r[name]
	return d, ok
}

// The ClusterTrustBundle variant cannot run through the webhook of the other tests, so the
// test applies the injector's patch itself and asks the API server to validate the result.
func TestAPIServerAcceptsTheClusterTrustBundleProjection(t *testing.T) {
	s := harness.Shared(t)
	ctx := context.Background()
	if err := s.CreateNamespace(ctx, "trust-bundle", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateServiceAccount(ctx, "trust-bundle", "app"); err != nil {
		t.Fatal(err)
	}
	cfg := webhook.DefaultConfig()
	cfg.AgentImage, cfg.BrokerAddr = "agent:test", "broker:8443"
	cfg.ClusterTrustBundle = "lanyard-broker-ca"
	injector, err := webhook.NewInjector(cfg, fixedRoles{"pod-reader": time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	pod := annotatedPod("bundle")
	res, err := injector.Mutate(pod)
	if err != nil {
		t.Fatal(err)
	}
	mutated := applyPatch(t, pod, res.Patch)
	_, err = s.Admin.CoreV1().Pods("trust-bundle").Create(ctx, mutated, metav1.CreateOptions{
		DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
	if err != nil {
		t.Errorf("API server refused the injected pod: %v", err)
	}
}

func applyPatch(t *testing.T, pod *corev1.Pod, ops []webhook.Op) *corev1.Pod {
	t.Helper()
	doc, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := jsonpatch.DecodePatch(raw)
	if err != nil {
		t.Fatal(err)
	}
	out, err := patch.Apply(doc)
	if err != nil {
		t.Fatal(err)
	}
	var mutated corev1.Pod
	if err := json.Unmarshal(out, &mutated); err != nil {
		t.Fatal(err)
	}
	return &mutated
}

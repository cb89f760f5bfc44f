//go:build integration

package chart

import (
	"context"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/lanyard-dev/lanyard/test/harness"
)

// admissionKinds would act on every later test's namespaces; they are deleted right after
// the API server accepted them.
var admissionKinds = map[string]bool{"MutatingWebhookConfiguration": true,
	"ValidatingWebhookConfiguration": true, "ValidatingAdmissionPolicy": true,
	"ValidatingAdmissionPolicyBinding": true}

func TestRenderedManifestsAreAcceptedByTheAPIServer(t *testing.T) {
	s := harness.Shared(t)
	ctx := context.Background()
	// cert-manager's and the Prometheus Operator's CRDs, so that the chart's Certificate,
	// Issuer and ServiceMonitor are validated like every other object.
	dyn, disc := installCRDs(ctx, t, s)
	groups, err := restmapper.GetAPIGroupResources(disc)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	cases := map[string][]string{
		"create-defaults": nil,
		"create-all":      {"-f", allFeatures},
		"create-secret":   renders["an existing TLS secret"],
		"create-token":    renders["Vault token authentication"],
	}
	for release, args := range cases {
		t.Run(release, func(t *testing.T) {
			if err := s.CreateNamespace(ctx, release, nil); err != nil {
				t.Fatal(err)
			}
			created := 0
			for _, o := range render(t, release, release, args...) {
				gvk := o.GroupVersionKind()
				m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
				if err != nil {
					t.Errorf("%s: %v", gvk, err)
					continue
				}
				ri := dyn.Resource(m.Resource)
				var client dynamic.ResourceInterface = ri
				if m.Scope.Name() == "namespace" {
					client = ri.Namespace(release)
				}
				opts := metav1.CreateOptions{FieldValidation: "Strict", FieldManager: "chart-test"}
				if _, err := client.Create(ctx, o, opts); err != nil {
					t.Errorf("create %s %s: %v", o.GetKind(), o.GetName(), err)
					continue
				}
				created++
				if admissionKinds[o.GetKind()] {
					deleteNow(t, ctx, client, o)
				}
			}
			if created < 15 {
				t.Errorf("created %d objects, want the whole chart", created)
			}
		})
	}
}

func deleteNow(t *testing.T, ctx context.Context, c dynamic.ResourceInterface, o *unstructured.Unstructured) {
	t.Helper()
	if err := c.Delete(ctx, o.GetName(), metav1.DeleteOptions{}); err != nil &&
		!apierrors.IsNotFound(err) {
		t.Errorf("delete %s %s: %v", o.GetKind(), o.GetName(), err)
	}
}

//go:build integration

package server

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

// apiCall is one real request made with a minted credential.
type apiCall struct {
	name string
	do   func(ctx context.Context, c kubernetes.Interface) error
	ok   bool // false: must be 403
}

func listPods(ns string) func(context.Context, kubernetes.Interface) error {
	return func(ctx context.Context, c kubernetes.Interface) error {
		_, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err
	}
}

func listConfigMaps(ns string) func(context.Context, kubernetes.Interface) error {
	return func(ctx context.Context, c kubernetes.Interface) error {
		_, err := c.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		return err
	}
}

func createConfigMap(ns string) func(context.Context, kubernetes.Interface) error {
	return func(ctx context.Context, c kubernetes.Interface) error {
		_, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "lanyard-test-"}}, metav1.CreateOptions{})
		return err
	}
}

func listNamespaces(ctx context.Context, c kubernetes.Interface) error {
	_, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	return err
}

func deletePods(ns string) func(context.Context, kubernetes.Interface) error {
	return func(ctx context.Context, c kubernetes.Interface) error {
		return c.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	}
}

// TestAllowedCallerGetsTheGrantExactly issues a credential for each grant
// kind and checks its real permissions against the API server.
func TestAllowedCallerGetsTheGrantExactly(t *testing.T) {
	lb := sharedBroker(t)
	_, tok := newPod(t, lb, "team-a", "app", map[string]string{"app": "web"})
	cases := []struct {
		role  string
		calls []apiCall
		rules string // a resource the SelfSubjectRulesReview in team-a must list
	}{
		{"pod-reader", []apiCall{
			{"list pods in team-a", listPods("team-a"), true},
			{"list pods in team-b", listPods("team-b"), false},
			{"delete pods in team-a", deletePods("team-a"), false},
			{"list configmaps in team-a", listConfigMaps("team-a"), false},
		}, "pods"},
		{"viewer", []apiCall{
			{"list configmaps in team-a", listConfigMaps("team-a"), true},
			{"create a configmap in team-a", createConfigMap("team-a"), false},
			{"list pods in team-b", listPods("team-b"), false},
		}, "configmaps"},
		{"config-editor", []apiCall{
			{"create a configmap in team-a", createConfigMap("team-a"), true},
			{"list pods in team-a", listPods("team-a"), false},
		}, "configmaps"},
		{"reporter", []apiCall{
			{"list pods in team-a", listPods("team-a"), true},
			{"create a configmap in team-a", createConfigMap("team-a"), false},
		}, "pods"},
		{"ns-lister", []apiCall{
			{"list namespaces", listNamespaces, true},
			{"list pods in team-a", listPods("team-a"), false},
		}, "namespaces"},
	}
	for _, c := range cases {
		t.Run(c.role, func(t *testing.T) {
			before := lb.minter.issues.Load()
			resp, err := lb.client.IssueCredential(bearer(tok), &lanyardv1.IssueCredentialRequest{Role: c.role})
			if err != nil {
				t.Fatalf("IssueCredential: %v", err)
			}
			if n := lb.minter.issues.Load() - before; n != 1 {
				t.Errorf("vault issues = %d, want 1", n)
			}
			cred := resp.GetCredential()
			rememberSecret(cred.GetToken())
			client, err := lb.stack.ClientForToken(cred.GetToken())
			if err != nil {
				t.Fatal(err)
			}
			for _, call := range c.calls {
				checkCall(t, client, call)
			}
			checkRules(t, client, c.rules)
		})
	}
}

func checkCall(t *testing.T, client kubernetes.Interface, call apiCall) {
	t.Helper()
	err := call.do(context.Background(), client)
	switch {
	case call.ok && err != nil:
		t.Errorf("%s: %v, want success", call.name, err)
	case !call.ok && !apierrors.IsForbidden(err):
		t.Errorf("%s: %v, want 403", call.name, err)
	}
}

// checkRules asks the API server what the credential may do in team-a.
func checkRules(t *testing.T, client kubernetes.Interface, resource string) {
	t.Helper()
	review, err := client.AuthorizationV1().SelfSubjectRulesReviews().Create(context.Background(),
		&authzv1.SelfSubjectRulesReview{Spec: authzv1.SelfSubjectRulesReviewSpec{Namespace: "team-a"}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectRulesReview: %v", err)
	}
	for _, r := range review.Status.ResourceRules {
		if slices.Contains(r.Resources, resource) {
			return
		}
	}
	t.Errorf("rules in team-a lack %s: %+v", resource, review.Status.ResourceRules)
}

// TestRevokeByOwnerKillsTheCredential revokes as the owning pod and waits
// until the API server refuses the minted token; another pod is refused.
func TestRevokeByOwnerKillsTheCredential(t *testing.T) {
	lb := sharedBroker(t)
	_, owner := newPod(t, lb, "team-a", "app", map[string]string{"app": "web"})
	_, other := newPod(t, lb, "team-a", "app", map[string]string{"app": "web"})
	resp, err := lb.client.IssueCredential(bearer(owner), &lanyardv1.IssueCredentialRequest{Role: "pod-reader"})
	if err != nil {
		t.Fatalf("IssueCredential: %v", err)
	}
	cred := resp.GetCredential()
	rememberSecret(cred.GetToken())
	client, err := lb.stack.ClientForToken(cred.GetToken())
	if err != nil {
		t.Fatal(err)
	}
	if err := listPods("team-a")(context.Background(), client); err != nil {
		t.Fatalf("fresh credential: %v", err)
	}

	revokes := lb.minter.revokes.Load()
	_, err = lb.client.RevokeCredential(bearer(other), &lanyardv1.RevokeCredentialRequest{Id: cred.GetId()})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("revoke by another pod = %v, want PERMISSION_DENIED", err)
	}
	if lb.minter.revokes.Load() != revokes {
		t.Error("revoke by another pod reached Vault")
	}
	if err := listPods("team-a")(context.Background(), client); err != nil {
		t.Errorf("credential died after a refused revoke: %v", err)
	}

	if _, err := lb.client.RevokeCredential(bearer(owner),
		&lanyardv1.RevokeCredentialRequest{Id: cred.GetId()}); err != nil {
		t.Fatalf("revoke by the owner: %v", err)
	}
	err = poll(30*time.Second, func() error {
		err := listPods("team-a")(context.Background(), client)
		if apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err) {
			return nil
		}
		return errStillThere
	})
	if err != nil {
		t.Errorf("revoked credential still works")
	}
}

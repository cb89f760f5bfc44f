//go:build integration

package harness_test

import (
	"context"
	"os"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/test/harness"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		// A child started by TestInterruptStopsTheStack runs its own stack.
		os.Exit(m.Run())
	}
	os.Exit(harness.Main(m, harness.Options{}))
}

func TestPodTokenPassesTokenReviewOnlyForItsAudience(t *testing.T) {
	s := harness.Shared(t)
	ctx := context.Background()
	must(t, s.CreateNamespace(ctx, "stack-tokens", nil))
	pod, err := s.CreatePod(ctx, "stack-tokens", "web-0", "app", map[string]string{"app": "web"})
	must(t, err)
	token, err := s.PodToken(ctx, pod, "lanyard", 10*time.Minute)
	must(t, err)

	tests := []struct {
		name     string
		audience string
		wantOK   bool
	}{
		{name: "the token's own audience is accepted", audience: "lanyard", wantOK: true},
		{name: "another audience is refused", audience: "vault", wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			review, err := s.Admin.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{
				Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{tt.audience}},
			}, metav1.CreateOptions{})
			must(t, err)
			if review.Status.Authenticated != tt.wantOK {
				t.Fatalf("authenticated = %v, want %v (error %q)",
					review.Status.Authenticated, tt.wantOK, review.Status.Error)
			}
			if !tt.wantOK {
				return
			}
			extra := review.Status.User.Extra
			if got := extra["authentication.kubernetes.io/pod-name"]; len(got) != 1 || got[0] != "web-0" {
				t.Errorf("pod-name = %v, want [web-0]", got)
			}
			if got := extra["authentication.kubernetes.io/pod-uid"]; len(got) != 1 || got[0] != string(pod.UID) {
				t.Errorf("pod-uid = %v, want [%s]", got, pod.UID)
			}
			if got := extra["authentication.kubernetes.io/credential-id"]; len(got) != 1 {
				t.Errorf("credential-id = %v, want one JTI", got)
			}
			want := "system:serviceaccount:stack-tokens:app"
			if review.Status.User.Username != want {
				t.Errorf("username = %q, want %q", review.Status.User.Username, want)
			}
		})
	}
}

func TestVaultMintsAScopedTokenThatDiesWithItsLease(t *testing.T) {
	s := harness.Shared(t)
	ctx := context.Background()
	must(t, s.CreateNamespace(ctx, "stack-vault", nil))
	must(t, s.CreateNamespace(ctx, "stack-other", nil))
	root, err := s.VaultClient(s.VaultRootToken)
	must(t, err)
	_, err = root.Logical().WriteWithContext(ctx, s.VaultMount+"/roles/stack-pod-lister", map[string]any{
		"allowed_kubernetes_namespaces": []string{"stack-vault"},
		"generated_role_rules":          `{"rules":[{"apiGroups":[""],"resources":["pods"],"verbs":["list"]}]}`,
		"token_default_ttl":             "10m",
	})
	must(t, err)
	secret, err := root.Logical().WriteWithContext(ctx, s.VaultMount+"/creds/stack-pod-lister",
		map[string]any{"kubernetes_namespace": "stack-vault"})
	must(t, err)
	token, _ := secret.Data["service_account_token"].(string)
	if token == "" {
		t.Fatal("vault returned no service_account_token")
	}
	client, err := s.ClientForToken(token)
	must(t, err)

	_, err = client.CoreV1().Pods("stack-vault").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list pods in the granted namespace: %v", err)
	}
	if err := client.CoreV1().Pods("stack-vault").Delete(ctx, "none", metav1.DeleteOptions{}); !isForbidden(err) {
		t.Errorf("delete in the granted namespace: got %v, want 403", err)
	}
	if _, err := client.CoreV1().Pods("stack-other").List(ctx, metav1.ListOptions{}); !isForbidden(err) {
		t.Errorf("list pods in another namespace: got %v, want 403", err)
	}

	must(t, root.Sys().RevokeWithContext(ctx, secret.LeaseID))
	waitUntil(t, 30*time.Second, func() bool {
		_, err := client.CoreV1().Pods("stack-vault").List(ctx, metav1.ListOptions{})
		return isUnauthorized(err)
	}, "the token is refused after its lease is revoked")
}

//go:build integration

package issuer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/lanyard-dev/lanyard/broker/catalog"
)

// Namespaces of the issue tests: credentials are minted for team-a; team-b
// is somewhere else.
const (
	nsTarget = "issuer-team-a"
	nsOther  = "issuer-team-b"
)

// apiCall is an API call a test makes with a minted token.
type apiCall struct {
	name string
	do   func(ctx context.Context, c kubernetes.Interface) error
}

func listPods(ns string) apiCall {
	return apiCall{"list pods in " + ns, func(ctx context.Context, c kubernetes.Interface) error {
		_, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err
	}}
}

func deletePod(ns string) apiCall {
	return apiCall{"delete a pod in " + ns, func(ctx context.Context, c kubernetes.Interface) error {
		return c.CoreV1().Pods(ns).Delete(ctx, "victim", metav1.DeleteOptions{DryRun: []string{"All"}})
	}}
}

func listConfigMaps(ns string) apiCall {
	return apiCall{"list configmaps in " + ns, func(ctx context.Context, c kubernetes.Interface) error {
		_, err := c.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		return err
	}}
}

func listSecrets(ns string) apiCall {
	return apiCall{"list secrets in " + ns, func(ctx context.Context, c kubernetes.Interface) error {
		_, err := c.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		return err
	}}
}

func listNamespaces() apiCall {
	return apiCall{"list namespaces", func(ctx context.Context, c kubernetes.Interface) error {
		_, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		return err
	}}
}

func TestIssuedCredentialsHaveExactlyTheirGrant(t *testing.T) {
	env := sharedBroker(t)
	ctx := context.Background()
	setUpIssueFixtures(t, env)
	caller := catalog.CallerNamespace
	tests := []struct {
		name               string
		grant              catalog.Grant
		allowed, forbidden []apiCall
		wantAccount        string // "" for a generated account
		revokeKills        bool
	}{
		{
			"rules", catalog.Grant{Namespace: caller, Rules: podReadRules},
			[]apiCall{listPods(nsTarget)},
			[]apiCall{deletePod(nsTarget), listPods(nsOther), listConfigMaps(nsTarget)}, "", true,
		},
		{
			"clusterRole view", catalog.Grant{Namespace: caller, ClusterRole: "view"},
			[]apiCall{listPods(nsTarget), listConfigMaps(nsTarget)},
			[]apiCall{deletePod(nsTarget), listPods(nsOther)}, "", true,
		},
		{
			"role", catalog.Grant{Namespace: caller, Role: "config-reader"},
			[]apiCall{listConfigMaps(nsTarget)},
			[]apiCall{listPods(nsTarget), listConfigMaps(nsOther)}, "", true,
		},
		{
			"serviceAccount", catalog.Grant{Namespace: nsTarget, ServiceAccount: "reporter"},
			[]apiCall{listPods(nsTarget)},
			[]apiCall{deletePod(nsTarget), listPods(nsOther)}, "reporter", false,
		},
		{
			"clusterWide rules",
			catalog.Grant{Namespace: caller, ClusterWide: true, Rules: []rbacv1.PolicyRule{{
				APIGroups: []string{""}, Resources: []string{"namespaces", "pods"}, Verbs: []string{"list"},
			}}},
			[]apiCall{listNamespaces(), listPods(nsTarget), listPods(nsOther)},
			[]apiCall{deletePod(nsOther), listConfigMaps(nsOther)}, "", true,
		},
		{
			"clusterWide clusterRole view", catalog.Grant{Namespace: caller, ClusterWide: true, ClusterRole: "view"},
			[]apiCall{listPods(nsTarget), listPods(nsOther)},
			[]apiCall{deletePod(nsOther), listSecrets(nsOther)}, "", true,
		},
	}
	roles := make([]*catalog.Role, len(tests))
	for n, tt := range tests {
		roles[n] = testRole(fmt.Sprintf("grant-%d", n), tt.grant,
			catalog.Subject{Namespace: nsTarget, ServiceAccounts: []string{"app"}})
	}
	if _, err := env.issuer.Sync(ctx, syncCatalog(roles...), false); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	for n, tt := range tests {
		role := roles[n]
		t.Run(tt.name, func(t *testing.T) {
			// In parallel, so that the waits for the API server to forget
			// revoked tokens overlap.
			t.Parallel()
			lease, err := env.issuer.Issue(ctx, role, nsTarget, 10*time.Minute)
			if err != nil {
				env.logs.assertNoSecret(t, err.Error())
				t.Fatalf("Issue: %v", err)
			}
			env.logs.remember(lease.Token.Reveal())
			t.Cleanup(func() { env.logs.assertNoSecret(t) })
			checkLease(t, lease, role.Name, tt.wantAccount)
			if tt.wantAccount == "" {
				checkGeneratedLabels(t, env, lease, role.Name)
			}

			client, err := env.stack.ClientForToken(lease.Token.Reveal())
			if err != nil {
				t.Fatal(err)
			}
			for _, call := range tt.allowed {
				if err := call.do(ctx, client); err != nil {
					t.Errorf("%s: %v, want allowed", call.name, apiStatus(err))
				}
			}
			for _, call := range tt.forbidden {
				if err := call.do(ctx, client); !apierrors.IsForbidden(err) {
					t.Errorf("%s: %v, want 403", call.name, apiStatus(err))
				}
			}

			if err := env.issuer.Revoke(ctx, lease.ID); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			if err := env.issuer.Revoke(ctx, lease.ID); err != nil {
				t.Fatalf("Revoke of a revoked lease: %v, want success", err)
			}
			if tt.revokeKills {
				waitUnauthorized(t, client, tt.allowed[0])
			}
		})
	}
}

func checkLease(t *testing.T, lease *Lease, catalogRole, wantAccount string) {
	t.Helper()
	if lease.Namespace != nsTarget || lease.ID == "" {
		t.Fatalf("lease namespace %q, id %q", lease.Namespace, lease.ID)
	}
	if wantAccount != "" && lease.ServiceAccount != wantAccount {
		t.Fatalf("account = %q, want %q", lease.ServiceAccount, wantAccount)
	}
	if wantAccount == "" && !strings.HasPrefix(lease.ServiceAccount, RoleName(catalogRole)+"-") {
		t.Fatalf("generated account %q is not named after its role", lease.ServiceAccount)
	}
	if life := lease.ExpiresAt.Sub(lease.IssuedAt); life < 9*time.Minute || life > 10*time.Minute {
		t.Fatalf("lease lives %v, want about 10m", life)
	}
}

// checkGeneratedLabels finds the generated account by the labels RoleParams
// asks Vault to set.
func checkGeneratedLabels(t *testing.T, env *brokerEnv, lease *Lease, catalogRole string) {
	t.Helper()
	list, err := env.stack.Admin.CoreV1().ServiceAccounts(lease.Namespace).List(context.Background(),
		metav1.ListOptions{LabelSelector: "app.kubernetes.io/part-of=lanyard,lanyard.dev/role=" + catalogRole})
	must(t, err)
	for _, sa := range list.Items {
		if sa.Name == lease.ServiceAccount {
			return
		}
	}
	t.Fatalf("generated account %s does not carry lanyard's labels", lease.ServiceAccount)
}

// waitUnauthorized polls until the API server refuses the token; it caches
// a successful authentication for ~10 s, so refusal is not instant.
func waitUnauthorized(t *testing.T, client kubernetes.Interface, call apiCall) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := call.do(context.Background(), client)
		if apierrors.IsUnauthorized(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after revoke, %s: %v, want 401", call.name, apiStatus(err))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// apiStatus shortens an API error to its reason, which names no token.
func apiStatus(err error) string {
	if err == nil {
		return "allowed"
	}
	return string(apierrors.ReasonForError(err)) + ": " + err.Error()
}

// setUpIssueFixtures creates the namespaces, a pod to (not) delete, the Role
// of the role grant and the existing account of the serviceAccount grant.
func setUpIssueFixtures(t *testing.T, env *brokerEnv) {
	t.Helper()
	ctx := context.Background()
	s := env.stack
	for _, ns := range []string{nsTarget, nsOther} {
		must(t, s.CreateNamespace(ctx, ns, nil))
		if _, err := s.CreatePod(ctx, ns, "victim", "app", nil); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	rbac := s.Admin.RbacV1()
	_, err := rbac.Roles(nsTarget).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "config-reader"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"},
		}},
	}, metav1.CreateOptions{})
	ignoreExists(t, err)
	must(t, s.CreateServiceAccount(ctx, nsTarget, "reporter"))
	_, err = rbac.RoleBindings(nsTarget).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "reporter-pod-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: nsTarget, Name: "reporter"}},
	}, metav1.CreateOptions{})
	ignoreExists(t, err)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ignoreExists(t *testing.T, err error) {
	t.Helper()
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func TestVaultRefusesNamespacesOutsideTheRolesAllowList(t *testing.T) {
	env := sharedBroker(t)
	ctx := context.Background()
	s := env.stack
	must(t, s.CreateNamespace(ctx, "issuer-prod", map[string]string{"env": "prod"}))
	must(t, s.CreateNamespace(ctx, "issuer-dev", map[string]string{"env": "dev"}))
	exact := testRole("exact-ns", catalog.Grant{Namespace: catalog.CallerNamespace, Rules: podReadRules},
		catalog.Subject{Namespace: nsTarget, ServiceAccounts: []string{"app"}})
	selected := testRole("selected-ns", catalog.Grant{Namespace: catalog.CallerNamespace, Rules: podReadRules},
		catalog.Subject{NamespaceSelector: mustSelector(t, "env=prod"), ServiceAccounts: []string{"app"}})
	if _, err := env.issuer.Sync(ctx, syncCatalog(exact, selected), false); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	tests := []struct {
		name      string
		role      *catalog.Role
		namespace string
		allowed   bool
	}{
		{"a subject's exact namespace", exact, nsTarget, true},
		{"another namespace of an exact role", exact, nsOther, false},
		{"a namespace matching the subjects' selector", selected, "issuer-prod", true},
		{"a namespace the selector does not match", selected, "issuer-dev", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lease, err := env.issuer.Issue(ctx, tt.role, tt.namespace, 10*time.Minute)
			if tt.allowed {
				if err != nil {
					t.Fatalf("Issue: %v", err)
				}
				env.logs.remember(lease.Token.Reveal())
				must(t, env.issuer.Revoke(ctx, lease.ID))
				return
			}
			if err == nil {
				env.logs.remember(lease.Token.Reveal())
				_ = env.issuer.Revoke(ctx, lease.ID)
				t.Fatal("Vault minted a credential outside the allow-list")
			}
			if errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "status 400") {
				t.Fatalf("Issue = %v, want Vault's refusal as an internal error", err)
			}
		})
	}
	env.logs.assertNoSecret(t)
}

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
	rbacv1 "k8s.io/api/rbac/v1"
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

func getPod(ns, name string) func(context.Context, kubernetes.Interface) error {
	return func(ctx context.Context, c kubernetes.Interface) error {
		_, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return err
	}
}

func getNamespace(name string) func(context.Context, kubernetes.Interface) error {
	return func(ctx context.Context, c kubernetes.Interface) error {
		_, err := c.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		return err
	}
}

// createAndGetConfigMap creates a config map, then reads it back by name.
func createAndGetConfigMap(ns string) func(context.Context, kubernetes.Interface) error {
	return func(ctx context.Context, c kubernetes.Interface) error {
		cm, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "lanyard-test-"}}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		_, err = c.CoreV1().ConfigMaps(ns).Get(ctx, cm.Name, metav1.GetOptions{})
		return err
	}
}

func deleteConfigMaps(ns string) func(context.Context, kubernetes.Interface) error {
	return func(ctx context.Context, c kubernetes.Interface) error {
		return c.CoreV1().ConfigMaps(ns).DeleteCollection(ctx, metav1.DeleteOptions{},
			metav1.ListOptions{})
	}
}

// TestAllowedCallerGetsTheGrantExactly issues a credential for each grant
// kind and checks its real permissions against the API server: the rules a
// SelfSubjectRulesReview reports in the target namespace equal the grant,
// another namespace holds none of them (all of them for a clusterWide
// grant), granted verbs succeed and others are refused.
func TestAllowedCallerGetsTheGrantExactly(t *testing.T) {
	lb := sharedBroker(t)
	pod, tok := newPod(t, lb, "team-a", "app", map[string]string{"app": "web"})
	view := clusterRoleRules(t, lb, "view")
	baseline := baselinePermissions(t, lb, "team-a", "team-b")
	cases := []struct {
		role        string
		rules       []rbacv1.PolicyRule // what the grant gives in team-a
		clusterWide bool                // the rules hold in every namespace
		calls       []apiCall
	}{
		{"pod-reader", []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"},
			Verbs: []string{"get", "list"}}}, false, []apiCall{
			{"get its own pod in team-a", getPod("team-a", pod.Name), true},
			{"list pods in team-a", listPods("team-a"), true},
			{"delete pods in team-a", deletePods("team-a"), false},
			{"list configmaps in team-a", listConfigMaps("team-a"), false},
			{"list pods in team-b", listPods("team-b"), false},
		}},
		{"viewer", view, false, []apiCall{
			{"list configmaps in team-a", listConfigMaps("team-a"), true},
			{"list pods in team-a", listPods("team-a"), true},
			{"create a configmap in team-a", createConfigMap("team-a"), false},
			{"list pods in team-b", listPods("team-b"), false},
		}},
		{"config-editor", roleRules(t, lb, "team-a", "config-editor"), false, []apiCall{
			{"create and get a configmap in team-a", createAndGetConfigMap("team-a"), true},
			{"list configmaps in team-a", listConfigMaps("team-a"), true},
			{"delete configmaps in team-a", deleteConfigMaps("team-a"), false},
			{"list pods in team-a", listPods("team-a"), false},
			{"list configmaps in team-b", listConfigMaps("team-b"), false},
		}},
		{"reporter", view, false, []apiCall{
			{"list pods in team-a", listPods("team-a"), true},
			{"list configmaps in team-a", listConfigMaps("team-a"), true},
			{"create a configmap in team-a", createConfigMap("team-a"), false},
			{"list pods in team-b", listPods("team-b"), false},
		}},
		{"ns-lister", []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"},
			Verbs: []string{"list"}}}, true, []apiCall{
			{"list namespaces", listNamespaces, true},
			{"get namespace team-a", getNamespace("team-a"), false},
			{"list pods in team-a", listPods("team-a"), false},
		}},
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
			checkRules(t, client, "team-a", c.rules, baseline["team-a"])
			var elsewhere []rbacv1.PolicyRule
			if c.clusterWide {
				elsewhere = c.rules
			}
			checkRules(t, client, "team-b", elsewhere, baseline["team-b"])
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

// checkRules asks the API server what the credential may do in namespace
// and compares it, verb by verb and resource by resource, with want. What
// the API server gives every authenticated user (reviewing its own access,
// reading cluster trust bundles, ...) is measured as baseline and left out;
// non-resource rules (discovery) are not compared.
func checkRules(
	t *testing.T,
	client kubernetes.Interface,
	namespace string,
	want []rbacv1.PolicyRule,
	baseline []string,
) {
	t.Helper()
	got := slices.DeleteFunc(reviewPermissions(t, client, namespace),
		func(p string) bool { return slices.Contains(baseline, p) })
	var wanted []string
	for _, r := range want {
		wanted = append(wanted, permissions(r.APIGroups, r.Resources, r.Verbs, r.ResourceNames)...)
	}
	wanted = slices.DeleteFunc(wanted, func(p string) bool { return slices.Contains(baseline, p) })
	slices.Sort(wanted)
	if wanted = slices.Compact(wanted); !slices.Equal(got, wanted) {
		t.Errorf("permissions in %s:\n  got  %v\n  want %v", namespace, got, wanted)
	}
}

// reviewPermissions is the SelfSubjectRulesReview of client in namespace,
// as sorted permissions.
func reviewPermissions(t *testing.T, client kubernetes.Interface, namespace string) []string {
	t.Helper()
	review, err := client.AuthorizationV1().SelfSubjectRulesReviews().Create(context.Background(),
		&authzv1.SelfSubjectRulesReview{Spec: authzv1.SelfSubjectRulesReviewSpec{Namespace: namespace}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectRulesReview in %s: %v", namespace, err)
	}
	if review.Status.Incomplete {
		t.Errorf("rules review in %s is incomplete: %s", namespace, review.Status.EvaluationError)
	}
	var out []string
	for _, r := range review.Status.ResourceRules {
		out = append(out, permissions(r.APIGroups, r.Resources, r.Verbs, r.ResourceNames)...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// permissions expands rules into one "group/resource:verb[name]" each.
func permissions(groups, resources, verbs, names []string) []string {
	if len(names) == 0 {
		names = []string{""}
	}
	var out []string
	for _, g := range groups {
		for _, r := range resources {
			for _, v := range verbs {
				for _, n := range names {
					out = append(out, g+"/"+r+":"+v+"["+n+"]")
				}
			}
		}
	}
	return out
}

// baselinePermissions reviews, in each namespace, a service account that
// nothing is bound to: what it may do, every credential may do.
func baselinePermissions(t *testing.T, lb *liveBroker, namespaces ...string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	if err := lb.stack.CreateServiceAccount(ctx, "team-b", "unbound"); err != nil {
		t.Fatal(err)
	}
	tok, err := lb.stack.ServiceAccountToken(ctx, "team-b", "unbound", nil, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	rememberSecret(tok)
	client, err := lb.stack.ClientForToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, ns := range namespaces {
		out[ns] = reviewPermissions(t, client, ns)
		if !slices.Contains(out[ns], "authorization.k8s.io/selfsubjectrulesreviews:create[]") {
			t.Fatalf("the baseline in %s lacks reviewing one's own rules: %v", ns, out[ns])
		}
	}
	return out
}

func clusterRoleRules(t *testing.T, lb *liveBroker, name string) []rbacv1.PolicyRule {
	t.Helper()
	cr, err := lb.stack.Admin.RbacV1().ClusterRoles().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cr.Rules) == 0 {
		t.Fatalf("cluster role %s has no rules (not aggregated yet?)", name)
	}
	return cr.Rules
}

func roleRules(t *testing.T, lb *liveBroker, ns, name string) []rbacv1.PolicyRule {
	t.Helper()
	r, err := lb.stack.Admin.RbacV1().Roles(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Rules
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

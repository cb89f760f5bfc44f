package brokertest

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/broker/issuer"
	"github.com/lanyard-dev/lanyard/test/harness"
)

// Names of the broker's identity in the cluster and in Vault, as the chart
// names them.
const (
	Namespace      = "lanyard-system"
	ServiceAccount = "lanyard-broker"
	ClusterRole    = "lanyard-broker"
	VaultPolicy    = "lanyard-broker"
	VaultAuthRole  = "lanyard-broker"
)

// grantIdentity creates the broker's service account with what the chart
// gives it and nothing more: create TokenReviews, get, list and watch pods,
// and get namespaces (its own ClusterRole), and system:auth-delegator, which
// Vault's Kubernetes auth method needs to review the broker's token at login.
// Existing objects are kept, so every broker of a stack shares them.
func grantIdentity(ctx context.Context, s *harness.Stack) error {
	if err := s.CreateNamespace(ctx, Namespace, nil); err != nil {
		return err
	}
	if err := s.CreateServiceAccount(ctx, Namespace, ServiceAccount); err != nil {
		return err
	}
	_, err := s.Admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: ClusterRole},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"},
				Verbs: []string{"create"}},
			{APIGroups: []string{""}, Resources: []string{"pods"},
				Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get"}},
		},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create cluster role %s: %w", ClusterRole, err)
	}
	if err := bind(ctx, s, ClusterRole, ClusterRole); err != nil {
		return err
	}
	return bind(ctx, s, ClusterRole+"-auth-delegator", "system:auth-delegator")
}

// bind binds the broker's service account to a ClusterRole.
func bind(ctx context.Context, s *harness.Stack, name, clusterRole string) error {
	_, err := s.Admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole",
			Name: clusterRole},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: Namespace,
			Name: ServiceAccount}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("bind %s: %w", clusterRole, err)
	}
	return nil
}

// configureVault writes, with the root token, the policy that `lanyard-broker
// vault policy` prints and a Kubernetes auth role that gives that policy
// alone to the broker's service account.
func configureVault(ctx context.Context, s *harness.Stack) error {
	root, err := s.VaultClient(s.VaultRootToken)
	if err != nil {
		return err
	}
	policy := issuer.Policy(s.VaultMount, s.VaultAuthMount)
	if err := root.Sys().PutPolicyWithContext(ctx, VaultPolicy, policy); err != nil {
		return fmt.Errorf("write policy %s: %w", VaultPolicy, err)
	}
	path := "auth/" + s.VaultAuthMount + "/role/" + VaultAuthRole
	_, err = root.Logical().WriteWithContext(ctx, path, map[string]any{
		"bound_service_account_names":      []string{ServiceAccount},
		"bound_service_account_namespaces": []string{Namespace},
		"token_policies":                   []string{VaultPolicy},
		"token_no_default_policy":          true,
		"token_ttl":                        "1h",
	})
	if err != nil {
		return fmt.Errorf("write auth role %s: %w", VaultAuthRole, err)
	}
	return nil
}

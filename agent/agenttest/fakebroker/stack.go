package fakebroker

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
	"github.com/lanyard-dev/lanyard/test/harness"
)

// StackMinter mints real tokens from a test API server, standing in for Vault:
// each credential is a TokenRequest token for a service account that may
// list pods in its namespace, bound to a Secret created for it. Deleting that
// Secret is the revocation: the API server refuses a token whose bound object
// is gone (after its authentication cache of about ten seconds).
type StackMinter struct {
	Stack *harness.Stack
	// Namespace returns the namespace of credential n; tests that want a
	// generation marker return a new one each time.
	Namespace func(n int) string
	// Now is the time source of issued_at and expires_at; time.Now if nil.
	Now func() time.Time
}

const mintedAccount = "lanyard-minted"

// Mint is a MintFunc.
func (m *StackMinter) Mint(
	ctx context.Context,
	n int,
	req *lanyardv1.IssueCredentialRequest,
) (*lanyardv1.Credential, error) {
	ns := m.Namespace(n)
	if err := m.grant(ctx, ns); err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	name := fmt.Sprintf("lanyard-cred-%d", n)
	secret, err := m.Stack.Admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	ttl := 10 * time.Minute
	if req.GetTtl() != nil {
		ttl = req.GetTtl().AsDuration()
	}
	ref := &authnv1.BoundObjectReference{Kind: "Secret", APIVersion: "v1", Name: name, UID: secret.UID}
	token, err := m.Stack.ServiceAccountToken(ctx, ns, mintedAccount, nil, ttl, ref)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	issued := now()
	return &lanyardv1.Credential{
		Id: ns + "/" + name, Token: token, Namespace: ns, ServiceAccount: mintedAccount,
		Role: req.GetRole(), ApiServer: m.Stack.APIServerURL, CaCert: m.Stack.CA.CertPEM,
		IssuedAt: timestamppb.New(issued), ExpiresAt: timestamppb.New(issued.Add(ttl)),
	}, nil
}

// Revoke is a RevokeFunc: it deletes the Secret the token is bound to.
func (m *StackMinter) Revoke(ctx context.Context, id string) error {
	ns, name, ok := strings.Cut(id, "/")
	if !ok {
		return status.Error(codes.InvalidArgument, "malformed credential id")
	}
	err := m.Stack.Admin.CoreV1().Secrets(ns).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return status.Error(codes.Unavailable, err.Error())
	}
	return nil
}

// grant makes sure ns has the minted service account and may list pods.
func (m *StackMinter) grant(ctx context.Context, ns string) error {
	if err := m.Stack.CreateNamespace(ctx, ns, nil); err != nil {
		return err
	}
	if err := m.Stack.CreateServiceAccount(ctx, ns, mintedAccount); err != nil {
		return err
	}
	rbac := m.Stack.Admin.RbacV1()
	_, err := rbac.Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "list-pods"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"},
		}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create role: %w", err)
	}
	_, err = rbac.RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "list-pods"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "list-pods"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: mintedAccount, Namespace: ns}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create role binding: %w", err)
	}
	return nil
}

package harness

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	vault "github.com/hashicorp/vault/api"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Names of the objects that give Vault's secrets engine its Kubernetes access.
const (
	VaultNamespace      = "vault-system"
	VaultServiceAccount = "vault-secrets-engine"
)

// VaultEngineRules are the only permissions Vault's Kubernetes secrets engine
// needs: manage the service accounts, roles and bindings it generates, mint
// their tokens, and read namespaces for namespace selectors.
var VaultEngineRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"serviceaccounts/token"}, Verbs: []string{"create"}},
	{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"create", "delete"}},
	{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get"}},
	{
		APIGroups: []string{"rbac.authorization.k8s.io"},
		Resources: []string{"rolebindings", "clusterrolebindings"},
		Verbs:     []string{"create", "delete"},
	},
	{
		APIGroups: []string{"rbac.authorization.k8s.io"},
		Resources: []string{"roles", "clusterroles"},
		Verbs:     []string{"bind", "escalate", "create", "delete"},
	},
}

// startVault runs a dev-mode Vault and configures the Kubernetes secrets
// engine and auth method against the stack's API server.
//
// Dev mode keeps everything in memory. A persistent Vault would replace only
// this function's process start (file storage, init, unseal); the
// configuration steps after it are the same.
func (s *Stack) startVault(ctx context.Context, timeout time.Duration, configure bool) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	root, err := randomHex(16)
	if err != nil {
		return err
	}
	s.VaultAddr = "http://127.0.0.1:" + strconv.Itoa(port)
	s.VaultRootToken = root
	s.VaultMount = "kubernetes"
	s.VaultAuthMount = "kubernetes"
	p, err := startProcess(s.Dir, "vault", filepath.Join(s.BinDir, "vault"), []string{
		"server", "-dev",
		"-dev-listen-address=127.0.0.1:" + strconv.Itoa(port),
		"-dev-root-token-id=" + root,
		"-dev-no-store-token",
		"-log-level=warn",
	}, []string{"HOME=" + s.Dir, "VAULT_DISABLE_MLOCK=true", "SKIP_SETCAP=1"})
	if err != nil {
		return err
	}
	s.procs = append(s.procs, p)
	if err := waitFor(ctx, p, timeout, func(ctx context.Context) error {
		return httpOK(ctx, http.DefaultClient, s.VaultAddr+"/v1/sys/health", "")
	}); err != nil {
		return err
	}
	if !configure {
		return nil
	}
	admin, err := s.VaultClient(root)
	if err != nil {
		return err
	}
	if err := s.configureSecretsEngine(ctx, admin); err != nil {
		return p.failure(err)
	}
	if err := s.configureAuthMethod(ctx, admin); err != nil {
		return p.failure(err)
	}
	return nil
}

func (s *Stack) configureSecretsEngine(ctx context.Context, admin *vault.Client) error {
	jwt, err := s.vaultEngineToken(ctx)
	if err != nil {
		return err
	}
	if err := admin.Sys().MountWithContext(ctx, s.VaultMount, &vault.MountInput{Type: "kubernetes"}); err != nil {
		return fmt.Errorf("mount kubernetes secrets engine: %w", err)
	}
	_, err = admin.Logical().WriteWithContext(ctx, s.VaultMount+"/config", map[string]any{
		"kubernetes_host":     s.APIServerURL,
		"kubernetes_ca_cert":  string(s.CA.CertPEM),
		"service_account_jwt": jwt,
		// Not in a pod: do not look for a local service account token.
		"disable_local_ca_jwt": true,
	})
	if err != nil {
		return fmt.Errorf("configure kubernetes secrets engine: %w", err)
	}
	return nil
}

func (s *Stack) configureAuthMethod(ctx context.Context, admin *vault.Client) error {
	err := admin.Sys().EnableAuthWithOptionsWithContext(ctx, s.VaultAuthMount,
		&vault.EnableAuthOptions{Type: "kubernetes"})
	if err != nil {
		return fmt.Errorf("enable kubernetes auth: %w", err)
	}
	_, err = admin.Logical().WriteWithContext(ctx, "auth/"+s.VaultAuthMount+"/config", map[string]any{
		"kubernetes_host":                   s.APIServerURL,
		"kubernetes_ca_cert":                string(s.CA.CertPEM),
		"disable_local_ca_jwt":              true,
		"use_annotations_as_alias_metadata": false,
	})
	if err != nil {
		return fmt.Errorf("configure kubernetes auth: %w", err)
	}
	return nil
}

// vaultEngineToken creates the secrets engine's own service account with
// only VaultEngineRules and returns a day-long token for it.
func (s *Stack) vaultEngineToken(ctx context.Context) (string, error) {
	if err := s.CreateNamespace(ctx, VaultNamespace, nil); err != nil {
		return "", err
	}
	if err := s.CreateServiceAccount(ctx, VaultNamespace, VaultServiceAccount); err != nil {
		return "", err
	}
	rbac := s.Admin.RbacV1()
	_, err := rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: VaultServiceAccount},
		Rules:      VaultEngineRules,
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("create clusterrole for vault: %w", err)
	}
	_, err = rbac.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: VaultServiceAccount},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: VaultServiceAccount},
		Subjects: []rbacv1.Subject{{
			Kind: rbacv1.ServiceAccountKind, Namespace: VaultNamespace, Name: VaultServiceAccount,
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("create clusterrolebinding for vault: %w", err)
	}
	return s.ServiceAccountToken(ctx, VaultNamespace, VaultServiceAccount, nil, 24*time.Hour)
}

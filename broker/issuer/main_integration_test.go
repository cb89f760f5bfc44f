//go:build integration

package issuer

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/test/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m, harness.Options{})) }

// Names of the broker's identity in the test cluster and in Vault.
const (
	brokerNamespace = "lanyard-system"
	brokerAccount   = "lanyard-broker"
	brokerPolicy    = "lanyard-broker"
	brokerAuthRole  = "lanyard-broker"
)

// brokerEnv is the broker as a real installation has it: an issuer logged
// in with the Kubernetes auth method, holding only the lanyard policy.
type brokerEnv struct {
	stack  *harness.Stack
	issuer *Issuer
	logs   *syncBuffer
}

var (
	brokerOnce sync.Once
	broker     *brokerEnv
	brokerErr  error
)

// sharedBroker sets the broker up once for the package's tests.
func sharedBroker(t *testing.T) *brokerEnv {
	t.Helper()
	s := harness.Shared(t)
	brokerOnce.Do(func() { broker, brokerErr = setUpBroker(s) })
	if brokerErr != nil {
		t.Fatalf("set up the broker: %v", brokerErr)
	}
	return broker
}

func setUpBroker(s *harness.Stack) (*brokerEnv, error) {
	ctx := context.Background()
	if err := grantBrokerIdentity(ctx, s); err != nil {
		return nil, err
	}
	if err := configureVaultForBroker(ctx, s); err != nil {
		return nil, err
	}
	jwt, err := s.ServiceAccountToken(ctx, brokerNamespace, brokerAccount, nil, time.Hour)
	if err != nil {
		return nil, err
	}
	jwtFile := filepath.Join(s.Dir, "lanyard-broker-jwt")
	if err := os.WriteFile(jwtFile, []byte(jwt), 0o600); err != nil {
		return nil, err
	}
	logs := &syncBuffer{}
	i, err := New(Config{
		Addr: s.VaultAddr, Mount: s.VaultMount, Auth: AuthKubernetes, AuthMount: s.VaultAuthMount,
		Role: brokerAuthRole, JWTFile: jwtFile,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		return nil, err
	}
	// Run lives as long as the test binary; the stack stops after it.
	go func() { _ = i.Run(context.Background()) }()
	logs.remember(jwt)
	if err := waitReady(i); err != nil {
		return nil, err
	}
	logs.remember(i.client.Token())
	return &brokerEnv{stack: s, issuer: i, logs: logs}, nil
}

// grantBrokerIdentity creates the broker's service account and lets it
// review tokens, which Vault's Kubernetes auth method does with the
// logging-in token itself.
func grantBrokerIdentity(ctx context.Context, s *harness.Stack) error {
	if err := s.CreateNamespace(ctx, brokerNamespace, nil); err != nil {
		return err
	}
	if err := s.CreateServiceAccount(ctx, brokerNamespace, brokerAccount); err != nil {
		return err
	}
	_, err := s.Admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "lanyard-broker-auth-delegator"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects: []rbacv1.Subject{{
			Kind: rbacv1.ServiceAccountKind, Namespace: brokerNamespace, Name: brokerAccount,
		}},
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// configureVaultForBroker writes the policy of `lanyard-broker vault policy`
// and an auth role bound to the broker's service account: the only use of
// the root token besides test fixtures.
func configureVaultForBroker(ctx context.Context, s *harness.Stack) error {
	root, err := s.VaultClient(s.VaultRootToken)
	if err != nil {
		return err
	}
	if err := root.Sys().PutPolicyWithContext(ctx, brokerPolicy, Policy(s.VaultMount, s.VaultAuthMount)); err != nil {
		return err
	}
	_, err = root.Logical().WriteWithContext(ctx, "auth/"+s.VaultAuthMount+"/role/"+brokerAuthRole, map[string]any{
		"bound_service_account_names":      []string{brokerAccount},
		"bound_service_account_namespaces": []string{brokerNamespace},
		"token_policies":                   []string{brokerPolicy},
		// Without Vault's default policy the tests prove that the lanyard
		// policy alone is enough.
		"token_no_default_policy": true,
		"token_ttl":               "1h",
	})
	return err
}

func waitReady(i *Issuer) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := i.Ready()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// syncBuffer collects the broker's log lines and the secrets that must not
// appear in them.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	secrets []string
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) remember(secret string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.secrets = append(b.secrets, secret)
}

// count tells how many log lines carry msg.
func (b *syncBuffer) count(msg string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), `"msg":"`+msg+`"`)
}

// assertNoSecret fails when a remembered secret appears in the logs or in
// any of texts (error strings the test might print).
func (b *syncBuffer) assertNoSecret(t *testing.T, texts ...string) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	all := b.buf.String() + strings.Join(texts, "\n")
	for _, s := range b.secrets {
		if s != "" && strings.Contains(all, s) {
			t.Fatal("a token appears in the broker's logs or errors")
		}
	}
}

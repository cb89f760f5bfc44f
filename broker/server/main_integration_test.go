//go:build integration

package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/lanyard-dev/lanyard/broker/audit"
	"github.com/lanyard-dev/lanyard/broker/authn"
	"github.com/lanyard-dev/lanyard/broker/catalog"
	"github.com/lanyard-dev/lanyard/broker/credid"
	"github.com/lanyard-dev/lanyard/broker/issuer"
	"github.com/lanyard-dev/lanyard/broker/metrics"
	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
	"github.com/lanyard-dev/lanyard/test/harness"
)

// TestMain runs the package's tests against one real stack, then checks
// that no token the tests saw appears in any log or audit line the broker
// wrote.
func TestMain(m *testing.M) {
	code := harness.Main(m, harness.Options{})
	if leaked := leakedSecrets(); leaked != "" {
		fmt.Fprintln(os.Stderr, "a token appeared in the broker's logs or audit:", leaked)
		code = 1
	}
	os.Exit(code)
}

// Names of the broker's identity in the test cluster and in Vault.
const (
	brokerNamespace = "lanyard-system"
	brokerAccount   = "lanyard-broker"
	brokerPolicy    = "lanyard-broker"
	brokerAuthRole  = "lanyard-broker"
)

// liveBroker is the real broker service served in-process over gRPC/TLS on
// loopback, with real TokenReview and a real issuer that holds only the
// lanyard Vault policy.
type liveBroker struct {
	stack   *harness.Stack
	client  lanyardv1.BrokerClient
	minter  *countingMinter
	issuer  *issuer.Issuer
	catalog string // path of the watched catalog file
	sync    *CatalogSync
	audit   *syncBuffer
	logs    *syncBuffer
}

// countingMinter counts the Vault calls the broker makes.
type countingMinter struct {
	Minter
	issues, revokes atomic.Int64
}

func (c *countingMinter) Issue(
	ctx context.Context,
	r *catalog.Role,
	ns string,
	ttl time.Duration,
) (*issuer.Lease, error) {
	c.issues.Add(1)
	lease, err := c.Minter.Issue(ctx, r, ns, ttl)
	if err == nil {
		rememberSecret(lease.Token.Reveal())
	}
	return lease, err
}

func (c *countingMinter) Revoke(ctx context.Context, leaseID string) error {
	c.revokes.Add(1)
	return c.Minter.Revoke(ctx, leaseID)
}

func (c *countingMinter) calls() int64 { return c.issues.Load() + c.revokes.Load() }

var (
	liveOnce sync.Once
	live     *liveBroker
	liveErr  error
)

// sharedBroker starts the broker once for the package's tests.
func sharedBroker(t *testing.T) *liveBroker {
	t.Helper()
	s := harness.Shared(t)
	liveOnce.Do(func() { live, liveErr = startBroker(s) })
	if liveErr != nil {
		t.Fatalf("start the broker: %v", liveErr)
	}
	return live
}

func startBroker(s *harness.Stack) (*liveBroker, error) {
	ctx := context.Background()
	if err := grantBrokerIdentity(ctx, s); err != nil {
		return nil, err
	}
	if err := configureVaultForBroker(ctx, s); err != nil {
		return nil, err
	}
	if err := createFixtures(ctx, s); err != nil {
		return nil, err
	}
	jwt, err := s.ServiceAccountToken(ctx, brokerNamespace, brokerAccount, nil, 2*time.Hour)
	if err != nil {
		return nil, err
	}
	rememberSecret(jwt)
	lb := &liveBroker{stack: s, audit: &syncBuffer{}, logs: &syncBuffer{}}
	logsMu.Lock()
	allLogs = append(allLogs, lb.audit, lb.logs)
	logsMu.Unlock()
	logger := slog.New(slog.NewJSONHandler(lb.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	client, err := brokerKubeClient(s, jwt)
	if err != nil {
		return nil, err
	}
	if err := lb.startIssuer(ctx, jwt, logger); err != nil {
		return nil, err
	}
	return lb, lb.serve(ctx, client, logger)
}

// brokerKubeClient is the broker's own Kubernetes client, authenticated as
// its service account through a kubeconfig file as in a real deployment.
func brokerKubeClient(s *harness.Stack, jwt string) (kubernetes.Interface, error) {
	path := filepath.Join(s.Dir, "lanyard-broker.kubeconfig")
	if err := os.WriteFile(path, harness.Kubeconfig(s.APIServerURL, s.CAPath(), "", jwt), 0o600); err != nil {
		return nil, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = kubeQPS, kubeBurst
	return kubernetes.NewForConfig(cfg)
}

func (lb *liveBroker) startIssuer(ctx context.Context, jwt string, logger *slog.Logger) error {
	s := lb.stack
	jwtFile := filepath.Join(s.Dir, "lanyard-broker-vault-jwt")
	if err := os.WriteFile(jwtFile, []byte(jwt), 0o600); err != nil {
		return err
	}
	iss, err := issuer.New(issuer.Config{
		Addr: s.VaultAddr, Mount: s.VaultMount, Auth: issuer.AuthKubernetes,
		AuthMount: s.VaultAuthMount, Role: brokerAuthRole, JWTFile: jwtFile, Logger: logger,
	})
	if err != nil {
		return err
	}
	go func() { _ = iss.Run(ctx) }()
	lb.issuer = iss
	return poll(30*time.Second, iss.Ready)
}

func (lb *liveBroker) serve(ctx context.Context, client kubernetes.Interface, logger *slog.Logger) error {
	s := lb.stack
	lb.catalog = filepath.Join(s.Dir, "catalog", "catalog.yaml")
	if err := os.MkdirAll(filepath.Dir(lb.catalog), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(lb.catalog, []byte(integrationCatalog), 0o600); err != nil {
		return err
	}
	m := metrics.New(DenialReasons())
	auditLog := audit.New(lb.audit, nil)
	lb.sync = NewCatalogSync(lb.issuer, auditLog, m, logger, time.Second)
	watcher, err := catalog.NewWatcher(lb.catalog, logger, lb.sync.Loaded, lb.sync.Rejected)
	if err != nil {
		return err
	}
	lb.sync.Loaded(watcher.Current())
	go func() { _ = watcher.Run(ctx) }()
	go func() { _ = lb.sync.Run(ctx) }()
	if err := poll(60*time.Second, func() error { return readiness(watcher, lb.issuer, lb.sync) }); err != nil {
		return err
	}
	sealer, err := credid.RandomSealer()
	if err != nil {
		return err
	}
	lb.minter = &countingMinter{Minter: lb.issuer}
	pods, err := lb.startPodWatch(ctx, logger, auditLog)
	if err != nil {
		return err
	}
	svc, err := New(Config{
		Authenticator: authn.NewTokenReviewer(client.AuthenticationV1().TokenReviews(), "lanyard"),
		Catalog:       watcher, Issuer: lb.minter, Sealer: sealer, Facts: KubeFacts(client),
		Audit: auditLog, Metrics: m, Logger: logger, APIServer: s.APIServerURL, CACert: s.CA.CertPEM,
		Pods: pods,
	})
	if err != nil {
		return err
	}
	return lb.listen(ctx, svc, m, logger)
}

// listen serves svc over TLS on loopback and connects the test client.
func (lb *liveBroker) listen(ctx context.Context, svc *Server, m *metrics.Metrics, logger *slog.Logger) error {
	s := lb.stack
	certFile, keyFile := filepath.Join(s.Dir, "broker.crt"), filepath.Join(s.Dir, "broker.key")
	if err := s.CA.IssueFiles(certFile, keyFile, "lanyard-broker", []string{"localhost"},
		[]net.IP{net.IPv4(127, 0, 0, 1)}); err != nil {
		return err
	}
	certs, err := NewCertReloader(certFile, keyFile)
	if err != nil {
		return err
	}
	cfg, err := TLSConfig(certs, "")
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	g := NewGRPCServer(svc, credentials.NewTLS(cfg), health.NewServer(), Interceptors(logger, m, nil))
	go func() { _ = ServeGRPC(ctx, g, lis, 5*time.Second) }()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CA.CertPEM)
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		return err
	}
	lb.client = lanyardv1.NewBrokerClient(conn)
	return nil
}

// grantBrokerIdentity creates the broker's service account with exactly
// what the chart gives it: create TokenReviews, get, list and watch pods,
// get namespaces, and system:auth-delegator for Vault's Kubernetes auth login.
func grantBrokerIdentity(ctx context.Context, s *harness.Stack) error {
	if err := s.CreateNamespace(ctx, brokerNamespace, nil); err != nil {
		return err
	}
	if err := s.CreateServiceAccount(ctx, brokerNamespace, brokerAccount); err != nil {
		return err
	}
	_, err := s.Admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: brokerAccount},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"},
				Verbs: []string{"create"}},
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get"}},
		},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	for name, role := range map[string]string{
		brokerAccount:                     brokerAccount,
		brokerAccount + "-auth-delegator": "system:auth-delegator",
	} {
		if err := bindClusterRole(ctx, s, name, role); err != nil {
			return err
		}
	}
	return nil
}

func bindClusterRole(ctx context.Context, s *harness.Stack, name, role string) error {
	_, err := s.Admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects: []rbacv1.Subject{{
			Kind: rbacv1.ServiceAccountKind, Namespace: brokerNamespace, Name: brokerAccount,
		}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("bind %s: %w", role, err)
	}
	return nil
}

// configureVaultForBroker writes the policy of `lanyard-broker vault policy`
// and an auth role bound to the broker's service account: the only use of
// the root token besides fixtures and assertions.
func configureVaultForBroker(ctx context.Context, s *harness.Stack) error {
	root, err := s.VaultClient(s.VaultRootToken)
	if err != nil {
		return err
	}
	if err := root.Sys().PutPolicyWithContext(ctx, brokerPolicy,
		issuer.Policy(s.VaultMount, s.VaultAuthMount)); err != nil {
		return err
	}
	_, err = root.Logical().WriteWithContext(ctx, "auth/"+s.VaultAuthMount+"/role/"+brokerAuthRole,
		map[string]any{
			"bound_service_account_names":      []string{brokerAccount},
			"bound_service_account_namespaces": []string{brokerNamespace},
			"token_policies":                   []string{brokerPolicy},
			// Without Vault's default policy the tests prove that the
			// lanyard policy alone is enough.
			"token_no_default_policy": true,
			"token_ttl":               "1h",
		})
	return err
}

// poll calls f until it returns nil or timeout passes.
func poll(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var (
	secretsMu sync.Mutex
	secrets   []string
	logsMu    sync.Mutex
	allLogs   []*syncBuffer
)

// rememberSecret records a token that must never appear in logs or audit.
func rememberSecret(s string) {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	secrets = append(secrets, s)
	if parts := strings.Split(s, "."); len(parts) == 3 {
		secrets = append(secrets, parts[2])
	}
}

// leakedSecrets names where a remembered token appears in any broker output.
func leakedSecrets() string {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	logsMu.Lock()
	defer logsMu.Unlock()
	for _, b := range allLogs {
		out := b.String()
		for i, s := range secrets {
			if len(s) > 16 && strings.Contains(out, s) {
				return fmt.Sprintf("secret #%d", i)
			}
		}
	}
	return ""
}

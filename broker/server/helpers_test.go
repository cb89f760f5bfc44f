package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"

	"github.com/lanyard-dev/lanyard/broker/audit"
	"github.com/lanyard-dev/lanyard/broker/authn"
	"github.com/lanyard-dev/lanyard/broker/catalog"
	"github.com/lanyard-dev/lanyard/broker/credid"
	"github.com/lanyard-dev/lanyard/broker/issuer"
	"github.com/lanyard-dev/lanyard/broker/metrics"
	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

const testCatalog = `apiVersion: lanyard.dev/v1alpha1
kind: RoleCatalog
roles:
  - name: pod-reader
    description: Read pods in the caller's namespace
    subjects:
      - namespace: team-a
        serviceAccounts: [app]
    grant:
      namespace: caller
      rules:
        - apiGroups: [""]
          resources: [pods]
          verbs: [get]
    ttl: 10m
    maxTTL: 1h
  - name: web-only
    subjects:
      - namespace: team-a
        serviceAccounts: ["*"]
        podSelector: {matchLabels: {app: web}}
    grant: {namespace: caller, clusterRole: view}
  - name: prod-viewer
    subjects:
      - namespaceSelector: {matchLabels: {tier: prod}}
        serviceAccounts: ["*"]
    grant: {namespace: shared, clusterRole: view}
`

// A caller known to the fake authenticator, with the labels its facts hold.
type testCaller struct {
	caller    authn.Caller
	podLabels map[string]string
	nsLabels  map[string]string
}

// Tokens of the fake authenticator. Each is secret-looking so that tests can
// assert it never shows up in a log or audit line.
const (
	tokApp      = "tok-app-SECRET"
	tokOtherPod = "tok-other-pod-SECRET"
	tokBatch    = "tok-batch-SECRET"
	tokProd     = "tok-prod-SECRET"
	tokUnbound  = "tok-unbound-SECRET"
	tokDown     = "tok-api-down-SECRET"
)

var testCallers = map[string]testCaller{
	tokApp: {caller: authn.Caller{Namespace: "team-a", ServiceAccount: "app", Pod: "web-1",
		PodUID: "uid-1", TokenID: "jti-1"}, podLabels: map[string]string{"app": "web"}},
	tokOtherPod: {caller: authn.Caller{Namespace: "team-a", ServiceAccount: "app", Pod: "web-2",
		PodUID: "uid-2", TokenID: "jti-2"}, podLabels: map[string]string{"app": "web"}},
	tokBatch: {caller: authn.Caller{Namespace: "team-a", ServiceAccount: "batch", Pod: "batch-1",
		PodUID: "uid-3", TokenID: "jti-3"}, podLabels: map[string]string{"app": "batch"}},
	tokProd: {caller: authn.Caller{Namespace: "team-p", ServiceAccount: "x", Pod: "p-1",
		PodUID: "uid-4", TokenID: "jti-4"}, nsLabels: map[string]string{"tier": "prod"}},
}

// fakeAuth authenticates the tokens of testCallers.
type fakeAuth struct{}

func (fakeAuth) Authenticate(_ context.Context, t authn.Token) (*authn.Caller, error) {
	switch t.Reveal() {
	case tokUnbound:
		return nil, authn.Fail(authn.ReasonNotPodBound, "token of team-a/app is not bound to a pod")
	case tokDown:
		return nil, errors.Join(authn.ErrUnavailable, errors.New("dial tcp: refused"))
	}
	if err := authn.Precheck(t); err != nil && !strings.HasPrefix(t.Reveal(), "tok-") {
		return nil, err
	}
	c, ok := testCallers[t.Reveal()]
	if !ok {
		return nil, authn.Fail(authn.ReasonTokenRejected, "token has expired")
	}
	caller := c.caller
	return &caller, nil
}

func testFacts(c *authn.Caller) catalog.Facts {
	for _, tc := range testCallers {
		if tc.caller.PodUID == c.PodUID {
			return catalog.StaticFacts{Namespace: tc.nsLabels, Pod: tc.podLabels}
		}
	}
	return catalog.StaticFacts{}
}

// fakeMinter stands in for Vault and counts every call.
type fakeMinter struct {
	mu      sync.Mutex
	issued  []string // role/namespace/ttl
	revoked []string
	err     error
	now     time.Time
}

func (f *fakeMinter) Issue(_ context.Context, role *catalog.Role, ns string, ttl time.Duration) (*issuer.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.issued = append(f.issued, role.Name+"/"+ns+"/"+ttl.String())
	if f.err != nil {
		return nil, f.err
	}
	return &issuer.Lease{
		ID: "kubernetes/creds/lanyard-" + role.Name + "/lease-" + ns, Token: "minted-SECRET-token",
		ServiceAccount: "v-lanyard-x", Namespace: ns, IssuedAt: f.now, ExpiresAt: f.now.Add(ttl),
	}, nil
}

func (f *fakeMinter) Revoke(_ context.Context, leaseID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked = append(f.revoked, leaseID)
	return f.err
}

func (f *fakeMinter) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.issued) + len(f.revoked)
}

type staticCatalog struct{ c *catalog.Catalog }

func (s staticCatalog) Current() *catalog.Catalog { return s.c }

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var testNow = time.Date(2026, 12, 3, 19, 0, 0, 0, time.UTC)

// testBroker is a broker served over a real gRPC connection (bufconn) with
// the real interceptors, and fakes behind it.
type testBroker struct {
	client  lanyardv1.BrokerClient
	conn    *grpc.ClientConn
	minter  *fakeMinter
	sealer  *credid.Sealer
	metrics *metrics.Metrics
	audit   *syncBuffer
	logs    *syncBuffer
}

type brokerOption func(*Config)

func newTestBroker(t *testing.T, opts ...brokerOption) *testBroker {
	t.Helper()
	cat, err := catalog.Parse("test.yaml", []byte(testCatalog))
	if err != nil {
		t.Fatalf("parse test catalog: %v", err)
	}
	sealer, err := credid.RandomSealer()
	if err != nil {
		t.Fatal(err)
	}
	tb := &testBroker{minter: &fakeMinter{now: testNow}, sealer: sealer,
		metrics: metrics.New(DenialReasons()), audit: &syncBuffer{}, logs: &syncBuffer{}}
	logger := slog.New(slog.NewJSONHandler(tb.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	now := func() time.Time { return testNow }
	cfg := Config{
		Authenticator: fakeAuth{}, Catalog: staticCatalog{cat}, Issuer: tb.minter, Sealer: sealer,
		Facts: testFacts, Audit: audit.New(tb.audit, now), Metrics: tb.metrics, Logger: logger,
		APIServer: "https://kube.example:6443", CACert: []byte("CA PEM"), Now: now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	g := NewGRPCServer(svc, nil, health.NewServer(), Interceptors(logger, tb.metrics, now))
	lis := bufconn.Listen(1 << 20)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	tb.conn, err = grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return lis.DialContext(ctx)
		}),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = tb.conn.Close() })
	tb.client = lanyardv1.NewBrokerClient(tb.conn)
	return tb
}

// as returns a context that carries token as the caller's bearer token;
// an empty token sends no authorization at all.
func as(token string) context.Context {
	ctx := context.Background()
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// auditEvents decodes every audit line written so far.
func (tb *testBroker) auditEvents(t *testing.T) []audit.Event {
	t.Helper()
	var events []audit.Event
	for _, line := range strings.Split(strings.TrimSpace(tb.audit.String()), "\n") {
		if line == "" {
			continue
		}
		var ev audit.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		events = append(events, ev)
	}
	return events
}

// assertNoSecrets fails when any token appears in the logs or audit lines.
func (tb *testBroker) assertNoSecrets(t *testing.T) {
	t.Helper()
	out := tb.logs.String() + tb.audit.String()
	if strings.Contains(out, "SECRET") {
		t.Errorf("a token leaked into the logs or audit:\n%s", out)
	}
}

func tbCatalog(t *testing.T) CatalogSource {
	t.Helper()
	cat, err := catalog.Parse("test.yaml", []byte(testCatalog))
	if err != nil {
		t.Fatal(err)
	}
	return staticCatalog{cat}
}

func newDiscardAudit() *audit.Log { return audit.New(&syncBuffer{}, nil) }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

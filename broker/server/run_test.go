package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/lanyard-dev/lanyard/broker/catalog"
	"github.com/lanyard-dev/lanyard/broker/issuer"
	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

func TestHealthHandler(t *testing.T) {
	var ready atomic.Bool
	h := HealthHandler(func() error {
		if !ready.Load() {
			return errors.New("catalog not loaded")
		}
		return nil
	})
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d, want 200", code)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || body != "not ready: catalog not loaded\n" {
		t.Errorf("/readyz before ready = %d %q", code, body)
	}
	ready.Store(true)
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz when ready = %d, want 200", code)
	}
}

func TestWatchReadinessFollowsReady(t *testing.T) {
	hs := health.NewServer()
	ctx, cancel := context.WithCancel(context.Background())
	var ready atomic.Bool
	done := make(chan error)
	go func() {
		done <- WatchReadiness(ctx, hs, func() error {
			if ready.Load() {
				return nil
			}
			return errors.New("no")
		}, time.Millisecond)
	}()
	waitStatus(t, hs, healthpb.HealthCheckResponse_NOT_SERVING)
	ready.Store(true)
	waitStatus(t, hs, healthpb.HealthCheckResponse_SERVING)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("WatchReadiness: %v", err)
	}
	waitStatus(t, hs, healthpb.HealthCheckResponse_NOT_SERVING)
}

func waitStatus(t *testing.T, hs *health.Server, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	for range 5000 {
		resp, err := hs.Check(context.Background(), &healthpb.HealthCheckRequest{
			Service: lanyardv1.Broker_ServiceDesc.ServiceName})
		if err == nil && resp.GetStatus() == want {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("health never became %v", want)
}

// blockingMinter holds every Issue until release is closed.
type blockingMinter struct {
	fakeMinter
	started chan struct{}
	release chan struct{}
}

func (b *blockingMinter) Issue(ctx context.Context, r *catalog.Role, ns string, ttl time.Duration) (*issuer.Lease, error) {
	close(b.started)
	select {
	case <-b.release:
		return b.fakeMinter.Issue(ctx, r, ns, ttl)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func TestServeGRPCFinishesInFlightCallsOnShutdown(t *testing.T) {
	tb := newTestBroker(t)
	minter := &blockingMinter{fakeMinter: fakeMinter{now: testNow},
		started: make(chan struct{}), release: make(chan struct{})}
	svc, err := New(Config{Authenticator: fakeAuth{}, Catalog: tbCatalog(t), Issuer: minter,
		Sealer: tb.sealer, Facts: testFacts, Audit: newDiscardAudit(), Metrics: tb.metrics,
		Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	g := NewGRPCServer(svc, nil, health.NewServer(), Interceptors(discardLogger(), tb.metrics, nil))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error)
	go func() { served <- ServeGRPC(ctx, g, lis, time.Minute) }()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	callErr := make(chan error)
	go func() {
		callCtx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tokApp)
		_, err := lanyardv1.NewBrokerClient(conn).IssueCredential(callCtx,
			&lanyardv1.IssueCredentialRequest{Role: "pod-reader"})
		callErr <- err
	}()
	<-minter.started
	cancel()
	close(minter.release)
	if err := <-callErr; err != nil {
		t.Errorf("in-flight call failed on shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("ServeGRPC: %v", err)
	}
}

func TestServeGRPCStopsAfterTheGracePeriod(t *testing.T) {
	tb := newTestBroker(t)
	minter := &blockingMinter{fakeMinter: fakeMinter{now: testNow},
		started: make(chan struct{}), release: make(chan struct{})}
	defer close(minter.release)
	svc, err := New(Config{Authenticator: fakeAuth{}, Catalog: tbCatalog(t), Issuer: minter,
		Sealer: tb.sealer, Facts: testFacts, Audit: newDiscardAudit(), Metrics: tb.metrics,
		Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	g := NewGRPCServer(svc, nil, health.NewServer(), nil)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error)
	go func() { served <- ServeGRPC(ctx, g, lis, 10*time.Millisecond) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		callCtx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tokApp)
		_, _ = lanyardv1.NewBrokerClient(conn).IssueCredential(callCtx,
			&lanyardv1.IssueCredentialRequest{Role: "pod-reader"})
	}()
	<-minter.started
	cancel()
	if err := <-served; err != nil {
		t.Errorf("ServeGRPC: %v", err)
	}
}

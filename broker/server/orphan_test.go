package server

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/lanyard-dev/lanyard/broker/catalog"
	"github.com/lanyard-dev/lanyard/broker/credid"
	"github.com/lanyard-dev/lanyard/broker/issuer"
	"github.com/lanyard-dev/lanyard/broker/metrics"
	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

// leavingMinter mints, but only after the caller has gone away: it cancels
// the caller's context while Vault is still working and, as the issuer
// does, returns the lease anyway.
type leavingMinter struct {
	*fakeMinter
	leave func()
}

func (m *leavingMinter) Issue(ctx context.Context, r *catalog.Role, ns string, ttl time.Duration) (*issuer.Lease, error) {
	m.leave()
	if ctx.Err() == nil {
		return nil, errors.New("the minter was not given the caller's context")
	}
	return m.fakeMinter.Issue(ctx, r, ns, ttl)
}

func TestACredentialMintedForACallerThatLeftIsRevoked(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+tokApp))
	minter := &leavingMinter{fakeMinter: &fakeMinter{now: testNow}, leave: cancel}
	logs := &syncBuffer{}
	sealer, err := credid.RandomSealer()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{
		Authenticator: fakeAuth{}, Catalog: tbCatalog(t), Issuer: minter, Sealer: sealer,
		Facts: testFacts, Audit: newDiscardAudit(), Metrics: metrics.New(DenialReasons()),
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		Now:    func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}

	_, err = svc.IssueCredential(ctx, &lanyardv1.IssueCredentialRequest{Role: "pod-reader"})

	if status.Code(err) != codes.Canceled {
		t.Fatalf("IssueCredential error = %v, want Canceled", err)
	}
	minter.mu.Lock()
	issued, revoked := minter.issued, minter.revoked
	minter.mu.Unlock()
	if len(issued) != 1 || len(revoked) != 1 {
		t.Fatalf("issued %v and revoked %v, want the one minted credential revoked", issued, revoked)
	}
	if !strings.Contains(logs.String(), "Orphaned credential revoked") {
		t.Errorf("no log line about the orphaned credential:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "SECRET") {
		t.Errorf("a token leaked into the logs:\n%s", logs.String())
	}
}

// slotWaitingMinter waits for Vault capacity that never frees, as long as its
// context allows, as the issuer does while every slot is taken.
type slotWaitingMinter struct {
	*fakeMinter
	waiting chan struct{}
	gaveUp  chan error
}

func (m *slotWaitingMinter) Issue(ctx context.Context, _ *catalog.Role, _ string, _ time.Duration) (*issuer.Lease, error) {
	close(m.waiting)
	<-ctx.Done()
	m.gaveUp <- ctx.Err()
	return nil, ctx.Err()
}

func TestACallerThatLeavesWhileWaitingForVaultStopsWaiting(t *testing.T) {
	minter := &slotWaitingMinter{fakeMinter: &fakeMinter{now: testNow},
		waiting: make(chan struct{}), gaveUp: make(chan error, 1)}
	tb := newTestBroker(t, func(c *Config) { c.Issuer = minter })
	ctx, cancel := context.WithCancel(as(tokApp))
	done := make(chan error, 1)
	go func() {
		_, err := tb.client.IssueCredential(ctx, &lanyardv1.IssueCredentialRequest{Role: "pod-reader"})
		done <- err
	}()
	<-minter.waiting
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Errorf("IssueCredential = %v, want Canceled", err)
	}
	select {
	case err := <-minter.gaveUp:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the wait for Vault ended with %v, want the caller's cancellation", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the broker still waits for Vault for a caller that left")
	}
	if n := minter.calls(); n != 0 {
		t.Errorf("vault calls = %d, want none", n)
	}
}

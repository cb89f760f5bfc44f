package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/lanyard-dev/lanyard/broker/audit"
	"github.com/lanyard-dev/lanyard/broker/catalog"
	"github.com/lanyard-dev/lanyard/broker/credid"
	"github.com/lanyard-dev/lanyard/broker/issuer"
	"github.com/lanyard-dev/lanyard/broker/metrics"
	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

// leavingMinter mints, but only after the caller has gone away: it cancels
// the caller's context while Vault is still working and, as the issuer
// does, returns the lease anyway. Its revocations fail with revokeErr.
type leavingMinter struct {
	*fakeMinter
	leave     func()
	revokeErr error
}

func (m *leavingMinter) Issue(
	ctx context.Context,
	r *catalog.Role,
	ns string,
	ttl time.Duration,
) (*issuer.Lease, error) {
	m.leave()
	if ctx.Err() == nil {
		return nil, errors.New("the minter was not given the caller's context")
	}
	return m.fakeMinter.Issue(ctx, r, ns, ttl)
}

func (m *leavingMinter) Revoke(ctx context.Context, leaseID string) error {
	_ = m.fakeMinter.Revoke(ctx, leaseID)
	return m.revokeErr
}

func TestACredentialMintedForACallerThatLeftIsRevokedAndAccountedFor(t *testing.T) {
	cases := []struct {
		name        string
		revokeErr   error
		wantLog     string
		wantReason  string
		wantWatched int // leases handed to the pod watch
	}{
		{name: "revoked at once", wantLog: "Orphaned credential revoked",
			wantReason: "caller left before the credential was delivered; revoked"},
		{name: "left to the pod watch when revoking fails", revokeErr: errors.New("vault down"),
			wantLog:     "Orphaned credential not revoked",
			wantReason:  "revoking it failed (vault down), so it lives until it expires or its pod goes",
			wantWatched: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+tokApp))
			minter := &leavingMinter{fakeMinter: &fakeMinter{now: testNow}, leave: cancel,
				revokeErr: tc.revokeErr}
			logs, auditLines, pods := &syncBuffer{}, &syncBuffer{}, &fakePods{}
			sealer, err := credid.RandomSealer()
			if err != nil {
				t.Fatal(err)
			}
			svc, err := New(Config{
				Authenticator: fakeAuth{}, Catalog: tbCatalog(t), Issuer: minter, Sealer: sealer,
				Facts: testFacts, Audit: audit.New(auditLines, nil), Metrics: metrics.New(DenialReasons()),
				Logger: slog.New(slog.NewJSONHandler(logs, nil)), Pods: pods,
				Now: func() time.Time { return testNow },
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
			if !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("no log line %q:\n%s", tc.wantLog, logs.String())
			}
			var ev audit.Event
			if err := json.Unmarshal([]byte(auditLines.String()), &ev); err != nil {
				t.Fatalf("audit line %q: %v", auditLines.String(), err)
			}
			if ev.Event != audit.CredentialDenied || ev.CredentialID == "" || ev.ExpiresAt == nil ||
				!strings.Contains(ev.Reason, tc.wantReason) {
				t.Errorf("audit event %+v, want credential.denied with the credential's id, expiry "+
					"and reason %q", ev, tc.wantReason)
			}
			pods.mu.Lock()
			watched := len(pods.ids)
			pods.mu.Unlock()
			if watched != tc.wantWatched {
				t.Errorf("leases handed to the pod watch = %d, want %d", watched, tc.wantWatched)
			}
			for _, out := range []string{logs.String(), auditLines.String()} {
				if strings.Contains(out, "SECRET") {
					t.Errorf("a token leaked:\n%s", out)
				}
			}
		})
	}
}

// slotWaitingMinter waits for Vault capacity that never frees, as long as its
// context allows, as the issuer does while every slot is taken.
type slotWaitingMinter struct {
	*fakeMinter
	waiting chan struct{}
	gaveUp  chan error
}

func (m *slotWaitingMinter) Issue(
	ctx context.Context,
	_ *catalog.Role,
	_ string,
	_ time.Duration,
) (*issuer.Lease, error) {
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

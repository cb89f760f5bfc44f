package podwatch

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/lanyard-dev/lanyard/broker/audit"
)

var (
	web   = podMeta("team-a", "web", "uid-web")
	batch = podMeta("team-a", "batch", "uid-batch")
)

func TestDeletedPodHasItsLeasesRevoked(t *testing.T) {
	e := newTestEnv(t, Config{}, web, batch)
	e.w.Register(context.Background(), podOf(web), leaseOf("l1", t0.Add(time.Hour)))
	e.w.Register(context.Background(), podOf(web), leaseOf("l2", t0.Add(time.Hour)))
	e.w.Register(context.Background(), podOf(batch), leaseOf("l3", t0.Add(time.Hour)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.w.Run(ctx) }()
	<-e.watching
	e.deletePod(t, ctx, web)
	got := waitRevoked(t, e.rev, 2)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if slices.Sort(got); !slices.Equal(got, []string{"l1", "l2"}) {
		t.Errorf("revoked = %v, want the deleted pod's two leases", got)
	}
	lines := e.logLines(t, "Credentials of a deleted pod revoked")
	if len(lines) != 1 || lines[0][keyPodUID] != "uid-web" || lines[0][keyLeases] != 2.0 ||
		lines[0][keyCause] != causeDeleted || lines[0]["level"] != "INFO" {
		t.Errorf("log lines = %v, want one at Info for uid-web with 2 leases", lines)
	}
	if n := e.counter(t, resultRevoked); n != 2 {
		t.Errorf("revoked counter = %v, want 2", n)
	}
	if e.w.reg.leases() != 1 {
		t.Errorf("registry holds %d leases, want only the live pod's", e.w.reg.leases())
	}
}

func TestTombstoneRevokesLikeADelete(t *testing.T) {
	e := newTestEnv(t, Config{})
	e.w.Register(context.Background(), podOf(web), leaseOf("l1", t0.Add(time.Hour)))
	e.w.onDelete(cache.DeletedFinalStateUnknown{Key: "team-a/web", Obj: web})
	e.w.revokePending(context.Background())
	if got := e.rev.leases(); !slices.Equal(got, []string{"l1"}) {
		t.Errorf("revoked = %v, want l1", got)
	}
}

func TestDeleteOfAPodWithoutLeasesRevokesNothing(t *testing.T) {
	e := newTestEnv(t, Config{})
	e.w.Register(context.Background(), podOf(web), leaseOf("l1", t0.Add(time.Hour)))
	e.w.Unregister(string(web.UID), "l1")
	e.w.onDelete(web)
	e.w.onDelete(batch)
	e.w.onDelete("not a pod")
	e.w.revokePending(context.Background())
	if got := e.rev.leases(); len(got) != 0 {
		t.Errorf("revoked = %v, want nothing", got)
	}
}

func TestExpiredLeasesAreNotRevoked(t *testing.T) {
	now := t0
	e := newTestEnv(t, Config{Now: func() time.Time { return now }})
	e.w.Register(context.Background(), podOf(web), leaseOf("short", t0.Add(10*time.Minute)))
	e.w.Register(context.Background(), podOf(web), leaseOf("long", t0.Add(time.Hour)))
	now = t0.Add(20 * time.Minute)
	e.w.onDelete(web)
	e.w.revokePending(context.Background())
	if got := e.rev.leases(); !slices.Equal(got, []string{"long"}) {
		t.Errorf("revoked = %v, want only the lease still alive", got)
	}
}

// TestRegisterChecksThePodStillExists covers a pod deleted between its
// authentication and the registration of its lease.
func TestRegisterChecksThePodStillExists(t *testing.T) {
	recreated := podMeta("team-a", "web", "uid-web-2")
	cases := []struct {
		name    string
		pods    []runtime.Object
		fromAPI bool // drop the pod from the store, so that only a GET finds it
		getErr  error
		revoked bool
	}{
		{"a pod the informer holds keeps its lease", []runtime.Object{web}, false, nil, false},
		{"a pod gone before registration is revoked at once", nil, false, nil, true},
		{"a pod recreated under the same name is another pod", []runtime.Object{recreated},
			false, nil, true},
		{"a pod the store has not seen yet but the API server has is kept",
			[]runtime.Object{web}, true, nil, false},
		{"a pod that cannot be looked up is kept", nil, false, errors.New("api down"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newTestEnv(t, Config{}, c.pods...)
			if c.getErr != nil {
				e.client.PrependReactor("get", "pods", func(clienttesting.Action) (bool, runtime.Object, error) {
					return true, nil, c.getErr
				})
			}
			ctx := e.startInformer(t)
			if c.fromAPI {
				_ = e.w.informer.GetStore().Delete(web)
			}
			e.w.Register(ctx, podOf(web), leaseOf("l1", t0.Add(time.Hour)))
			e.w.revokePending(ctx)
			if got := len(e.rev.leases()) == 1; got != c.revoked {
				t.Errorf("revoked = %v, want %v", got, c.revoked)
			}
			if kept := e.w.reg.leases() == 1; kept == c.revoked {
				t.Errorf("registry holds the lease = %v, want %v", kept, !c.revoked)
			}
		})
	}
}

func TestSweepFindsPodsDeletedBeforeTheFirstList(t *testing.T) {
	e := newTestEnv(t, Config{}, batch)
	e.w.Register(context.Background(), podOf(web), leaseOf("l1", t0.Add(time.Hour)))
	e.w.Register(context.Background(), podOf(batch), leaseOf("l2", t0.Add(time.Hour)))
	ctx := e.startInformer(t)
	e.w.sweep(ctx)
	e.w.revokePending(ctx)
	if got := e.rev.leases(); !slices.Equal(got, []string{"l1"}) {
		t.Errorf("revoked = %v, want the lease of the pod that no longer exists", got)
	}
	lines := e.logLines(t, "Credentials of a deleted pod revoked")
	if len(lines) != 1 || lines[0][keyCause] != causeMissing {
		t.Errorf("log lines = %v, want one with cause %q", lines, causeMissing)
	}
}

func TestRevocationsAreBoundedAndTimed(t *testing.T) {
	e := newTestEnv(t, Config{Concurrency: 2, Timeout: 7 * time.Second})
	for i := range 8 {
		e.w.Register(context.Background(), podOf(web), leaseOf(string(rune('a'+i)), t0.Add(time.Hour)))
	}
	e.w.onDelete(web)
	e.w.revokePending(context.Background())
	if n := len(e.rev.leases()); n != 8 {
		t.Fatalf("revoked %d leases, want 8", n)
	}
	if e.rev.most > 2 {
		t.Errorf("%d revocations ran at once, want at most 2", e.rev.most)
	}
	for _, d := range e.rev.deadlines {
		if d > 7*time.Second {
			t.Errorf("revocation deadline %v away, want at most the 7s timeout", d)
		}
	}
	if len(e.rev.deadlines) != 8 {
		t.Errorf("%d revocations had a deadline, want all 8", len(e.rev.deadlines))
	}
}

func TestFailedRevocationIsLoggedAndCounted(t *testing.T) {
	e := newTestEnv(t, Config{})
	e.rev.fail = map[string]error{"l2": errors.New("vault: permission denied")}
	e.w.Register(context.Background(), podOf(web), leaseOf("l1", t0.Add(time.Hour)))
	e.w.Register(context.Background(), podOf(web), leaseOf("l2", t0.Add(time.Hour)))
	e.w.onDelete(web)
	e.w.revokePending(context.Background())
	lines := e.logLines(t, "Credentials of a deleted pod not all revoked")
	if len(lines) != 1 || lines[0][keyFailed] != 1.0 || lines[0][keyLeases] != 2.0 ||
		lines[0]["level"] != "WARN" || lines[0][keyError] != "vault: permission denied" {
		t.Errorf("log lines = %v, want one Warn with 1 of 2 failed", lines)
	}
	if ok, failed := e.counter(t, resultRevoked), e.counter(t, resultFailed); ok != 1 || failed != 1 {
		t.Errorf("counters revoked=%v failed=%v, want 1 and 1", ok, failed)
	}
}

func TestEachLeaseOfADeletedPodIsAudited(t *testing.T) {
	e := newTestEnv(t, Config{})
	e.rev.fail = map[string]error{"l2": errors.New("vault: permission denied")}
	e.w.Register(context.Background(), podOf(web), leaseOf("l1", t0.Add(time.Hour)))
	e.w.Register(context.Background(), podOf(web), leaseOf("l2", t0.Add(2*time.Hour)))
	e.w.onDelete(web)
	e.w.revokePending(context.Background())

	caller := func(jti string) audit.Caller {
		return audit.Caller{Namespace: "team-a", ServiceAccount: "app", Pod: "web", PodUID: "uid-web",
			TokenID: jti}
	}
	exp1, exp2 := t0.Add(time.Hour), t0.Add(2*time.Hour)
	want := map[string]audit.Event{
		"cred-l1": {Time: t0, Event: audit.CredentialRevoked, Caller: caller("jti-l1"),
			Role: "reader", TargetNamespace: "team-a", CredentialID: "cred-l1", ExpiresAt: &exp1,
			Reason: "pod deleted"},
		"cred-l2": {Time: t0, Event: audit.CredentialDenied, Caller: caller("jti-l2"),
			Role: "reader", TargetNamespace: "team-a", CredentialID: "cred-l2", ExpiresAt: &exp2,
			Reason: "pod deleted: revocation failed: vault: permission denied"},
	}
	events := e.auditEvents(t)
	if len(events) != len(want) {
		t.Fatalf("audit lines = %+v, want one per lease", events)
	}
	for _, got := range events {
		w, ok := want[got.CredentialID]
		if !ok || !got.Time.Equal(w.Time) || got.ExpiresAt == nil || !got.ExpiresAt.Equal(*w.ExpiresAt) {
			t.Errorf("audit line %+v, want %+v", got, w)
			continue
		}
		got.Time, got.ExpiresAt, w.Time, w.ExpiresAt = time.Time{}, nil, time.Time{}, nil
		if got != w {
			t.Errorf("audit line\n%+v\nwant\n%+v", got, w)
		}
	}
}

func TestAPodFoundGoneBySweepIsAuditedWithItsCause(t *testing.T) {
	e := newTestEnv(t, Config{})
	e.w.Register(context.Background(), podOf(web), leaseOf("l1", t0.Add(time.Hour)))
	ctx := e.startInformer(t)
	e.w.sweep(ctx)
	e.w.revokePending(ctx)
	events := e.auditEvents(t)
	if len(events) != 1 || events[0].Event != audit.CredentialRevoked ||
		events[0].Reason != causeMissing || events[0].CredentialID != "cred-l1" {
		t.Errorf("audit lines = %+v, want one credential.revoked with reason %q", events, causeMissing)
	}
}

func TestNewRequiresItsDependencies(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New with nothing succeeded, want an error")
	}
}

// waitRevoked waits until rev has revoked n leases; the test's own timeout
// bounds it.
func waitRevoked(t *testing.T, rev *fakeRevoker, n int) []string {
	t.Helper()
	for {
		if got := rev.leases(); len(got) >= n {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

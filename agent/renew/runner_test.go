package renew

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lanyard-dev/lanyard/agent/agenttest"
	"github.com/lanyard-dev/lanyard/agent/credential"
	"github.com/lanyard-dev/lanyard/agent/writer"
)

const lifetime = 10 * time.Minute

// fakeIssuer mints credentials valid for lifetime from the clock's now and
// records every call as an event.
type fakeIssuer struct {
	clock *agenttest.Clock
	mu    sync.Mutex
	n     int
	fail  error // returned by Issue while set
	calls int
	log   *[]string
}

func (f *fakeIssuer) Issue(context.Context) (credential.Credential, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		return credential.Credential{}, f.fail
	}
	f.n++
	now := f.clock.Now()
	*f.log = append(*f.log, fmt.Sprintf("issue c%d", f.n))
	return credential.Credential{ID: fmt.Sprintf("c%d", f.n), IssuedAt: now,
		ExpiresAt: now.Add(lifetime), Token: credential.Token(fmt.Sprintf("secret-c%d", f.n))}, nil
}

func (f *fakeIssuer) Revoke(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	*f.log = append(*f.log, "revoke "+id)
	return nil
}

func (f *fakeIssuer) setFail(err error) (calls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
	return f.calls
}

type fakePublisher struct {
	mu      sync.Mutex
	log     *[]string
	cleared bool
	fail    error // returned by Publish while set
}

func (p *fakePublisher) Publish(c credential.Credential) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var cleanup *writer.CleanupError
	if p.fail != nil && !errors.As(p.fail, &cleanup) {
		*p.log = append(*p.log, "fail to publish "+c.ID)
		return p.fail
	}
	*p.log = append(*p.log, "publish "+c.ID)
	return p.fail
}

func (p *fakePublisher) Clear() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cleared = true
	return nil
}

type harness struct {
	clock  *agenttest.Clock
	issuer *fakeIssuer
	pub    *fakePublisher
	runner *Runner
	mu     sync.Mutex
	events []string
}

func newHarness() *harness {
	h := &harness{clock: agenttest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	h.issuer = &fakeIssuer{clock: h.clock, log: &h.events}
	h.pub = &fakePublisher{log: &h.events}
	h.runner = &Runner{Issuer: lockedIssuer{h}, Publisher: lockedPublisher{h}, Clock: h.clock,
		Rand: func() float64 { return 0.5 }}
	return h
}

// lockedIssuer and lockedPublisher serialise the shared event log.
type lockedIssuer struct{ h *harness }

func (l lockedIssuer) Issue(ctx context.Context) (credential.Credential, error) {
	l.h.mu.Lock()
	defer l.h.mu.Unlock()
	return l.h.issuer.Issue(ctx)
}

func (l lockedIssuer) Revoke(ctx context.Context, id string) error {
	l.h.mu.Lock()
	defer l.h.mu.Unlock()
	return l.h.issuer.Revoke(ctx, id)
}

type lockedPublisher struct{ h *harness }

func (l lockedPublisher) Publish(c credential.Credential) error {
	l.h.mu.Lock()
	defer l.h.mu.Unlock()
	return l.h.pub.Publish(c)
}

func (l lockedPublisher) Clear() error { return l.h.pub.Clear() }

func (h *harness) eventLog() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.events, ", ")
}

// start runs the runner until the test ends and returns a stop function that
// cancels it and waits for Run to return.
func (h *harness) start(t *testing.T) func() error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var err error
	go func() { err = h.runner.Run(ctx); close(done) }()
	stop := func() error { cancel(); <-done; return err }
	t.Cleanup(func() { _ = stop() })
	return stop
}

func TestRunRotatesBeforeExpiryAndRevokesAfterPublishing(t *testing.T) {
	h := newHarness()
	h.runner.ClearOnExit = true
	stop := h.start(t)
	for i := 0; i < 4; i++ {
		wait, ok := h.clock.FireNext(10 * time.Second)
		if !ok {
			t.Fatalf("rotation %d: runner never waited", i)
		}
		if wait < 6*time.Minute || wait > 7*time.Minute+30*time.Second {
			t.Errorf("rotation %d waited %v, want 60%%..75%% of %v", i, wait, lifetime)
		}
	}
	if _, ok := h.clock.NextTimer(10 * time.Second); !ok {
		t.Fatal("runner did not wait after the last rotation")
	}
	if err := stop(); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	want := "issue c1, publish c1, issue c2, publish c2, revoke c1, issue c3, publish c3, " +
		"revoke c2, issue c4, publish c4, revoke c3, issue c5, publish c5, revoke c4, revoke c5"
	if got := h.eventLog(); got != want {
		t.Errorf("events:\n got %s\nwant %s", got, want)
	}
	if !h.pub.cleared {
		t.Error("files not cleared on exit with ClearOnExit")
	}
}

func TestRunKeepsTheCredentialAndBacksOffWhileTheBrokerIsDown(t *testing.T) {
	h := newHarness()
	h.runner.Rand = func() float64 { return 0 } // the shortest waits: the most attempts
	h.start(t)
	h.clock.NextTimer(10 * time.Second) // c1 published
	before := h.issuer.setFail(status.Error(codes.Unavailable, "broker down"))

	const outage = 2 * time.Hour
	var waited time.Duration
	for waited < outage {
		wait, ok := h.clock.FireNext(10 * time.Second)
		if !ok {
			t.Fatal("runner stopped waiting")
		}
		if wait <= 0 {
			t.Fatalf("runner retried without waiting after %v", waited)
		}
		waited += wait
	}
	attempts := h.issuer.setFail(nil) - before

	// Retry n waits at least half of min(2^n s, 60 s); the lowest jitter
	// gives 0.5+1+2+4+8+16 s for the first six, then 30 s each. One more
	// try is allowed where a wait is cut short at the credential's expiry.
	bound := 6 + int((outage-31500*time.Millisecond)/(30*time.Second)) + 2
	if attempts > bound || attempts < bound/2 {
		t.Errorf("%d attempts in a %v outage, want at most %d and no fewer than %d",
			attempts, outage, bound, bound/2)
	}
	h.clock.FireNext(10 * time.Second)
	if got := h.eventLog(); !strings.HasSuffix(got, "issue c2, publish c2, revoke c1") {
		t.Errorf("after the outage: %s", got)
	}
}

func TestRunRetriesRefusalsSlowly(t *testing.T) {
	h := newHarness()
	h.issuer.setFail(status.Error(codes.PermissionDenied, "not a subject of role db-admin"))
	h.start(t)
	for i := 0; i < 3; i++ {
		if wait, _ := h.clock.FireNext(10 * time.Second); wait != DefaultSlowRetry {
			t.Fatalf("refusal %d: waited %v, want %v", i, wait, DefaultSlowRetry)
		}
	}
}

func TestRunHonoursTheBrokersRetryDelay(t *testing.T) {
	h := newHarness()
	limited, _ := status.New(codes.ResourceExhausted, "slow down").WithDetails(
		retryInfo(45 * time.Second))
	h.issuer.setFail(limited.Err())
	h.start(t)
	if wait, _ := h.clock.FireNext(10 * time.Second); wait != 45*time.Second {
		t.Fatalf("waited %v after a rate limit asking for 45s", wait)
	}
}

func TestRunDoesNotWaitPastTheExpiryOfTheCurrentCredential(t *testing.T) {
	h := newHarness()
	h.runner.SlowRetry = time.Hour
	h.start(t)
	h.clock.NextTimer(10 * time.Second) // c1 published
	h.issuer.setFail(status.Error(codes.PermissionDenied, "denied"))
	h.clock.FireNext(10 * time.Second) // +6m45s: the refresh is refused
	want := lifetime - 6*time.Minute - 45*time.Second
	if wait, _ := h.clock.FireNext(10 * time.Second); (wait - want).Abs() > time.Millisecond {
		t.Fatalf("waited %v; want the rest of c1's lifetime", wait)
	}
}

func TestACredentialThatCannotBePublishedIsRevoked(t *testing.T) {
	cases := []struct {
		name       string
		publishErr error
		wantErr    bool
		wantEvents string
	}{
		{name: "published", wantEvents: "issue c1, publish c1"},
		{name: "published, old sets left behind",
			publishErr: &writer.CleanupError{Err: errors.New("remove old sets: busy")},
			wantEvents: "issue c1, publish c1"},
		{name: "not published", publishErr: errors.New("disk full"), wantErr: true,
			wantEvents: "issue c1, fail to publish c1, revoke c1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness()
			h.pub.fail = tc.publishErr

			c, err := h.runner.Once(context.Background())

			if (err != nil) != tc.wantErr {
				t.Fatalf("Once() error = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && c.ID != "c1" {
				t.Errorf("Once() = %q, want c1 as the current credential", c.ID)
			}
			if got := h.eventLog(); got != tc.wantEvents {
				t.Errorf("events = %q, want %q", got, tc.wantEvents)
			}
		})
	}
}

func TestOnceStopsAtARefusalWithTheBrokersReason(t *testing.T) {
	h := newHarness()
	h.issuer.setFail(status.Error(codes.PermissionDenied, "not a subject of role db-admin"))
	_, err := h.runner.Once(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not a subject of role db-admin") {
		t.Fatalf("Once() = %v, want the broker's reason", err)
	}
	if h.issuer.calls != 1 {
		t.Errorf("Once() tried %d times on a refusal, want 1", h.issuer.calls)
	}
}

func TestOnceRetriesTransientFailuresAFewTimes(t *testing.T) {
	h := newHarness()
	h.issuer.setFail(status.Error(codes.Unavailable, "down"))
	done := make(chan error, 1)
	go func() { _, err := h.runner.Once(context.Background()); done <- err }()
	for i := 0; i < DefaultOnceAttempts-1; i++ {
		if _, ok := h.clock.FireNext(10 * time.Second); !ok {
			t.Fatalf("Once() did not wait before retry %d", i+1)
		}
	}
	if err := <-done; status.Code(err) != codes.Unavailable {
		t.Fatalf("Once() = %v, want the last failure", err)
	}
	if h.issuer.calls != DefaultOnceAttempts {
		t.Errorf("Once() tried %d times, want %d", h.issuer.calls, DefaultOnceAttempts)
	}
}

// cancellingIssuer cancels the run's context while its second issue
// succeeds, as a SIGTERM arriving mid-rotation does.
type cancellingIssuer struct {
	lockedIssuer
	cancel context.CancelFunc
	n      int
}

func (c *cancellingIssuer) Issue(ctx context.Context) (credential.Credential, error) {
	cred, err := c.lockedIssuer.Issue(ctx)
	if c.n++; c.n == 2 {
		c.cancel()
	}
	return cred, err
}

func TestAShutdownDuringARotationRevokesBothCredentials(t *testing.T) {
	h := newHarness()
	ctx, cancel := context.WithCancel(context.Background())
	h.runner.Issuer = &cancellingIssuer{lockedIssuer: lockedIssuer{h}, cancel: cancel}
	done := make(chan error, 1)
	go func() { done <- h.runner.Run(ctx) }()
	h.clock.FireNext(10 * time.Second)
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
	want := "issue c1, publish c1, issue c2, publish c2, revoke c1, revoke c2"
	if got := h.eventLog(); got != want {
		t.Errorf("events:\n got %s\nwant %s", got, want)
	}
}

func TestRunLogsTheRefusalReasonAndNeverAToken(t *testing.T) {
	h := newHarness()
	var logs syncBuffer
	h.runner.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	h.issuer.setFail(status.Error(codes.PermissionDenied, "not a subject of role db-admin"))
	stop := h.start(t)
	h.clock.NextTimer(10 * time.Second)
	h.issuer.setFail(nil)
	h.clock.FireNext(10 * time.Second)
	h.clock.NextTimer(10 * time.Second)
	_ = stop()

	var refusal, published bool
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		switch rec["msg"] {
		case "Credential refused by the broker":
			refusal = strings.Contains(fmt.Sprint(rec["error"]), "not a subject of role db-admin") &&
				rec["retry_in"] != nil
		case "Credential published":
			published = rec["credential_id"] == "c1" && rec["refresh_at"] != nil
		}
	}
	if strings.Contains(logs.String(), "secret-c") {
		t.Errorf("a token reached the log:\n%s", logs.String())
	}
	if !refusal || !published {
		t.Errorf("refusal logged: %v, publication logged: %v\n%s", refusal, published, logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the runner's goroutine and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

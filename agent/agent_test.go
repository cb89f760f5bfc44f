package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lanyard-dev/lanyard/agent/agenttest"
	"github.com/lanyard-dev/lanyard/agent/agenttest/fakebroker"
	"github.com/lanyard-dev/lanyard/agent/brokerclient"
	"github.com/lanyard-dev/lanyard/agent/writer"
)

const callerToken = "projected-caller-token"

// rig is an agent wired to a fake broker over gRPC/TLS and a fake clock.
type rig struct {
	clock  *agenttest.Clock
	broker *fakebroker.Broker
	cfg    Config
	deps   Deps
	health string // base URL of the health server
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{clock: agenttest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	r.broker = &fakebroker.Broker{Mint: fakebroker.DefaultMint(r.clock.Now, "https://127.0.0.1:6443", []byte("ca"))}
	r.broker.SetCallerToken(callerToken)
	ep := fakebroker.Start(t, r.broker)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "caller-token")
	if err := os.WriteFile(tokenFile, []byte(callerToken), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.health = "http://" + l.Addr().String()
	r.cfg = Config{
		Broker: brokerclient.Options{Addr: ep.Addr, CAFile: ep.CAFile, ServerName: ep.ServerName,
			TokenFile: tokenFile, Role: "pod-reader"},
		OutputDir: filepath.Join(dir, "out"),
	}
	r.deps = Deps{Clock: r.clock, Rand: func() float64 { return 0 }, HealthListener: l}
	return r
}

// run starts Run and returns a function that stops it and returns its error.
func (r *rig) run(t *testing.T) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var err error
	go func() { err = Run(ctx, r.cfg, r.deps); close(done) }()
	stop := func() error { cancel(); <-done; return err }
	t.Cleanup(func() { _ = stop() })
	return stop
}

func (r *rig) get(t *testing.T, path string) int {
	t.Helper()
	resp, err := http.Get(r.health + path)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (r *rig) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(r.health + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// generationOf reads the generation number of the published token.
func generationOf(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, writer.TokenFile))
	if err != nil {
		return 0, err
	}
	var n int
	_, err = fmt.Sscanf(string(b), "token-%d", &n)
	return n, err
}

// hammer reads the output directory until stop is closed and reports any
// partial or mixed set. It resolves ..data once per read, as a reader that
// needs several files consistent does.
func hammer(dir string, stop <-chan struct{}, reads *atomic.Int64) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		set, err := os.Readlink(filepath.Join(dir, "..data"))
		if err != nil {
			continue // nothing published yet
		}
		tok, err1 := os.ReadFile(filepath.Join(dir, set, writer.TokenFile))
		ns, err2 := os.ReadFile(filepath.Join(dir, set, writer.NamespaceFile))
		kc, err3 := os.ReadFile(filepath.Join(dir, set, writer.KubeconfigFile))
		if err1 != nil || err2 != nil || err3 != nil {
			continue // the set was replaced and removed while we read; never partial
		}
		var n int
		if _, err := fmt.Sscanf(string(tok), "token-%d", &n); err != nil {
			return fmt.Errorf("partial token %q", tok)
		}
		want := fmt.Sprintf("ns-%d", n)
		if string(ns) != want || !strings.Contains(string(kc), `namespace: "`+want+`"`) {
			return fmt.Errorf("mixed set: token-%d with namespace %q", n, ns)
		}
		reads.Add(1)
	}
}

func TestRunRotatesAndRevokesOnlyAfterPublishing(t *testing.T) {
	r := newRig(t)
	var revokeErrs []string
	var mu sync.Mutex
	r.broker.Revoke = func(_ context.Context, id string) error {
		var n int
		_, _ = fmt.Sscanf(id, "cred-%d", &n)
		published, err := generationOf(r.cfg.OutputDir)
		if err != nil || published <= n && id != fmt.Sprintf("cred-%d", published) {
			mu.Lock()
			revokeErrs = append(revokeErrs, fmt.Sprintf("%s revoked while token-%d published (%v)", id, published, err))
			mu.Unlock()
		}
		return nil
	}
	stopReader := make(chan struct{})
	readerErr := make(chan error, 1)
	var reads atomic.Int64
	go func() { readerErr <- hammer(r.cfg.OutputDir, stopReader, &reads) }()

	stop := r.run(t)
	const rotations = 4
	for i := 0; i < rotations; i++ {
		wait, ok := r.clock.FireNext(20 * time.Second)
		if !ok {
			t.Fatalf("rotation %d: the agent never waited", i)
		}
		if wait != 6*time.Minute { // Rand 0: 60% of the ten-minute lifetime
			t.Errorf("rotation %d after %v, want 6m", i, wait)
		}
		if code := r.get(t, "/readyz"); code != http.StatusOK {
			t.Errorf("rotation %d: /readyz = %d", i, code)
		}
	}
	r.clock.NextTimer(20 * time.Second)
	if err := stop(); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	close(stopReader)
	if err := <-readerErr; err != nil {
		t.Error(err)
	}
	t.Logf("%d consistent reads", reads.Load())
	for _, e := range revokeErrs {
		t.Error(e)
	}
	var got []string
	for _, c := range r.broker.Calls() {
		got = append(got, strings.TrimSuffix(c.Method, "Credential")+" "+c.ID)
	}
	want := "Issue cred-1, Issue cred-2, Revoke cred-1, Issue cred-3, Revoke cred-2, " +
		"Issue cred-4, Revoke cred-3, Issue cred-5, Revoke cred-4, Revoke cred-5"
	if strings.Join(got, ", ") != want {
		t.Errorf("broker calls:\n got %s\nwant %s", strings.Join(got, ", "), want)
	}
	if n, _ := generationOf(r.cfg.OutputDir); n != rotations+1 {
		t.Errorf("published generation %d, want %d", n, rotations+1)
	}
}

func TestRunOutlastsABrokerOutageWithoutSpinning(t *testing.T) {
	r := newRig(t)
	stop := r.run(t)
	if _, ok := r.clock.NextTimer(20 * time.Second); !ok { // cred-1 is published
		t.Fatal("the agent never waited")
	}
	r.broker.Stop()
	before := r.broker.Count("IssueCredential")
	r.clock.FireNext(20 * time.Second) // +6m: the refresh fails, the outage begins

	// Until +9m30s, while cred-1 is still valid, the agent stays ready and
	// retries with backoff. Rand 0 gives the shortest waits, 0.5, 1, 2, 4,
	// 8, 16 s and then 30 s: at most 1 + 6 + (210-31.5)/30 = 13 attempts.
	attempts := 1
	for r.clock.Now().Before(time.Date(2026, 1, 1, 0, 9, 30, 0, time.UTC)) {
		wait, ok := r.clock.FireNext(20 * time.Second)
		if !ok || wait <= 0 {
			t.Fatalf("the agent stopped waiting (%v, %v)", wait, ok)
		}
		attempts++
		if code := r.get(t, "/readyz"); code != http.StatusOK {
			t.Fatalf("/readyz = %d at %v with an unexpired credential", code, r.clock.Now())
		}
	}
	r.clock.NextTimer(20 * time.Second) // the last attempt is over
	if attempts > 13 || attempts < 8 {
		t.Errorf("%d attempts in a 3m30s outage; the backoff allows 8 to 13", attempts)
	}
	if m := r.metrics(t); !strings.Contains(m, fmt.Sprintf("\nlanyard_agent_refresh_failures_total %d\n", attempts)) {
		t.Errorf("metrics do not count %d failures:\n%s", attempts, m)
	}
	if r.broker.Count("IssueCredential") != before {
		t.Error("calls reached a stopped broker")
	}

	// Past expiry the agent is not ready but keeps trying.
	for r.clock.Now().Before(time.Date(2026, 1, 1, 0, 10, 1, 0, time.UTC)) {
		r.clock.FireNext(20 * time.Second)
	}
	if code := r.get(t, "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d after expiry, want 503", code)
	}

	if err := r.broker.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for r.broker.Count("IssueCredential") == before && time.Now().Before(deadline) {
		r.clock.FireNext(20 * time.Second)
		time.Sleep(50 * time.Millisecond) // let gRPC reconnect in real time
	}
	r.clock.NextTimer(20 * time.Second) // the agent is done publishing and waits again
	if n, _ := generationOf(r.cfg.OutputDir); n != 2 {
		t.Fatalf("after the outage generation %d is published, want 2", n)
	}
	if code := r.get(t, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d after recovery", code)
	}
	_ = stop()
}

func TestOnceReportsTheBrokersReason(t *testing.T) {
	r := newRig(t)
	r.broker.SetIssueError(status.Error(codes.PermissionDenied,
		"service account team-a/app is not a subject of role db-admin"))
	_, err := Once(context.Background(), r.cfg, r.deps)
	if err == nil || !strings.Contains(err.Error(), "not a subject of role db-admin") {
		t.Fatalf("Once() = %v", err)
	}
	if _, err := os.Stat(filepath.Join(r.cfg.OutputDir, writer.TokenFile)); err == nil {
		t.Error("a refused once wrote a token")
	}
}

func TestOnceWritesTheFilesAndDoesNotRevoke(t *testing.T) {
	r := newRig(t)
	if _, err := Once(context.Background(), r.cfg, r.deps); err != nil {
		t.Fatalf("Once() = %v", err)
	}
	for _, name := range writer.Files {
		if _, err := os.Stat(filepath.Join(r.cfg.OutputDir, name)); err != nil {
			t.Error(err)
		}
	}
	if n := r.broker.Count("RevokeCredential"); n != 0 {
		t.Errorf("once revoked %d credentials", n)
	}
}

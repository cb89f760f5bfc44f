//go:build integration

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/agent"
	"github.com/lanyard-dev/lanyard/agent/agenttest"
	"github.com/lanyard-dev/lanyard/agent/brokerclient"
	"github.com/lanyard-dev/lanyard/test/harness"
)

// TestRotationPublishesCompleteSetsAndRevokesTheOldCredential drives the
// in-process agent with a fake clock through several rotations. Each
// credential is minted in a namespace of its own, so the namespace claim of
// the token is a generation marker that a concurrent reader checks against
// the namespace file.
func TestRotationPublishesCompleteSetsAndRevokesTheOldCredential(t *testing.T) {
	s := harness.Shared(t)
	clock := agenttest.NewClock(time.Now())
	run := time.Now().UnixNano() % 100000
	nsOf := func(n int) string { return fmt.Sprintf("rot-%d-%d", run, n) }
	tg := startBroker(t, s, nsOf, clock.Now)
	out := filepath.Join(t.TempDir(), "creds")
	var stopping atomic.Bool
	revokeErrs := make(chan error, 1)
	revokeOnlyReplaced(tg, out, &stopping, revokeErrs)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := agent.Config{OutputDir: out, Broker: brokerclient.Options{
		Addr: tg.endpoint.Addr, CAFile: tg.endpoint.CAFile, ServerName: tg.endpoint.ServerName,
		TokenFile: tg.tokenFile, Role: "pod-reader"}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() {
		runErr = agent.Run(ctx, cfg, agent.Deps{Clock: clock, HealthListener: l})
		close(done)
	}()
	defer func() { cancel(); <-done }()

	stopReader := make(chan struct{})
	readerErr := make(chan error, 1)
	var reads atomic.Int64
	go func() { readerErr <- hammer(out, stopReader, &reads) }()

	var previous string
	const rotations = 3
	for gen := 1; gen <= rotations+1; gen++ {
		if _, ok := clock.NextTimer(time.Minute); !ok {
			t.Fatalf("generation %d: the agent never settled", gen)
		}
		token, err := os.ReadFile(filepath.Join(out, "token"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kubeconfigClient(t, out).CoreV1().Pods(nsOf(gen)).List(ctx,
			metav1.ListOptions{}); err != nil {
			t.Fatalf("generation %d does not work: %v", gen, err)
		}
		if previous != "" {
			waitRefused(t, s, previous, nsOf(gen-1))
		}
		previous = string(token)
		if gen <= rotations {
			clock.FireNext(time.Minute)
		}
	}
	stopping.Store(true)
	cancel()
	<-done
	if runErr != nil {
		t.Fatalf("Run() = %v", runErr)
	}
	select {
	case err := <-revokeErrs:
		t.Error(err)
	default:
	}
	close(stopReader)
	if err := <-readerErr; err != nil {
		t.Error(err)
	}
	if reads.Load() == 0 {
		t.Error("the reader never read a set")
	}
	t.Logf("%d consistent reads", reads.Load())
	waitRefused(t, s, previous, nsOf(rotations+1)) // revoked at shutdown
	if tg.fake != nil {
		assertRevokedAfterPublished(t, tg)
	}
}

// assertRevokedAfterPublished checks the order of the broker's calls: each
// credential is revoked only after its successor was issued, except the last,
// revoked at shutdown.
func assertRevokedAfterPublished(t *testing.T, tg target) {
	t.Helper()
	calls := tg.fake.Calls()
	var order []string
	for i, c := range calls {
		switch c.Method {
		case "IssueCredential":
			order = append(order, c.ID)
		case "RevokeCredential":
			last := i == len(calls)-1 && c.ID == order[len(order)-1]
			if !last && slices.Index(order, c.ID) >= len(order)-1 {
				t.Errorf("call %d revokes %s before a successor was issued (%v)", i, c.ID, calls)
			}
		}
	}
	if len(order) != 4 {
		t.Errorf("%d credentials issued, want 4", len(order))
	}
}

// revokeOnlyReplaced wraps the fake broker's Revoke: a revocation must find
// another credential's set already published, unless it is the shutdown's.
func revokeOnlyReplaced(tg target, dir string, stopping *atomic.Bool, errs chan<- error) {
	inner := tg.fake.Revoke
	tg.fake.Revoke = func(ctx context.Context, id string) error {
		ns, _ := os.ReadFile(filepath.Join(dir, "namespace"))
		if !stopping.Load() && strings.HasPrefix(id, string(ns)+"/") {
			select {
			case errs <- fmt.Errorf("%s revoked while still published", id):
			default:
			}
		}
		return inner(ctx, id)
	}
}

// hammer reads the credential directory until stop is closed. Each read
// resolves ..data once and checks that the token's namespace claim matches
// the namespace file of the same set.
func hammer(dir string, stop <-chan struct{}, reads *atomic.Int64) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		set, err := os.Readlink(filepath.Join(dir, "..data"))
		if err != nil {
			continue
		}
		token, err1 := os.ReadFile(filepath.Join(dir, set, "token"))
		ns, err2 := os.ReadFile(filepath.Join(dir, set, "namespace"))
		_, err3 := os.ReadFile(filepath.Join(dir, set, "ca.crt"))
		if err1 != nil || err2 != nil || err3 != nil {
			continue // replaced and removed while read
		}
		claim, err := tokenNamespace(string(token))
		if err != nil {
			return fmt.Errorf("partial token: %w", err)
		}
		if claim != string(ns) {
			return fmt.Errorf("mixed set: token for %s with namespace %s", claim, ns)
		}
		reads.Add(1)
	}
}

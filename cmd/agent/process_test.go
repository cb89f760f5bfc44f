package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	buildOnce sync.Once
	agentBin  string
	buildErr  error
)

// The version and commit the test binary is built with.
const (
	testVersion = "v0.0.0-test"
	testCommit  = "c0ffee0"
)

// binary builds lanyard-agent once per test binary.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lanyard-agent-bin-")
		if err != nil {
			buildErr = err
			return
		}
		agentBin = filepath.Join(dir, "lanyard-agent")
		// The same -X flags as make build, so that a renamed variable breaks
		// this test rather than the release.
		ldflags := "-X github.com/lanyard-dev/lanyard/internal/cli.Version=" + testVersion +
			" -X github.com/lanyard-dev/lanyard/internal/cli.Commit=" + testCommit
		out, err := exec.Command("go", "build", "-ldflags", ldflags, "-o", agentBin, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build lanyard-agent: %v", buildErr)
	}
	return agentBin
}

func (f *fixture) command(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	base := []string{"--broker-addr", f.ep.Addr, "--broker-ca-file", f.ep.CAFile,
		"--token-file", f.tokenFile, "--role", "pod-reader", "--output-dir", filepath.Join(f.dir, "out")}
	cmd := exec.Command(binary(t), append(args, base...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	return cmd, &out
}

func TestOnceExitsZeroWithTheFiles(t *testing.T) {
	f := newFixture(t)
	cmd, out := f.command(t, "once")
	if err := cmd.Run(); err != nil {
		t.Fatalf("once: %v\n%s", err, out)
	}
	for _, name := range []string{"token", "ca.crt", "namespace", "kubeconfig"} {
		if _, err := os.Stat(filepath.Join(f.dir, "out", name)); err != nil {
			t.Error(err)
		}
	}
}

func TestOnceExitsOneWithTheBrokersReasonWhenDenied(t *testing.T) {
	f := newFixture(t)
	f.broker.SetIssueError(status.Error(codes.PermissionDenied,
		"service account team-a/app is not a subject of role pod-reader"))
	cmd, out := f.command(t, "once")
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("once = %v, want exit 1\n%s", err, out)
	}
	if !strings.Contains(out.String(), "not a subject of role pod-reader") {
		t.Errorf("output lacks the broker's reason:\n%s", out)
	}
}

func TestRunRevokesAndExitsZeroOnSIGTERMOrSIGINT(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) { testRunStopsOn(t, sig) })
	}
}

func testRunStopsOn(t *testing.T, sig syscall.Signal) {
	f := newFixture(t)
	cmd, out := f.command(t, "run", "--health-addr", "127.0.0.1:0", "--clear-on-exit")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for f.broker.Count("IssueCredential") == 0 || !exists(filepath.Join(f.dir, "out", "token")) {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("no credential published in 30s:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run exited with %v after %v\n%s", err, sig, out)
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("run did not exit 20s after %v\n%s", sig, out)
	}
	calls := f.broker.Calls()
	if last := calls[len(calls)-1]; last.Method != "RevokeCredential" || last.ID != "cred-1" {
		t.Errorf("last broker call %+v, want the revocation of cred-1", last)
	}
	if exists(filepath.Join(f.dir, "out", "token")) {
		t.Error("--clear-on-exit left the token")
	}
	if strings.Contains(out.String(), "token-1") || strings.Contains(out.String(), callerToken) {
		t.Errorf("a token reached the log:\n%s", out)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestVersionReportsWhatTheBuildStamped(t *testing.T) {
	out, err := exec.Command(binary(t), "version").CombinedOutput()
	if err != nil {
		t.Fatalf("lanyard-agent version: %v\n%s", err, out)
	}
	for _, want := range []string{"lanyard-agent " + testVersion, "commit " + testCommit, "go1."} {
		if !strings.Contains(string(out), want) {
			t.Errorf("lanyard-agent version printed %q, want %q in it", out, want)
		}
	}
}

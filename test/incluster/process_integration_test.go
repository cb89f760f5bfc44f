//go:build integration

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/broker/audit"
	"github.com/lanyard-dev/lanyard/test/brokertest"
)

// grace is well inside a pod's default termination grace period of 30 s.
const grace = 15 * time.Second

func TestSIGTERMRevokesTheCredentialAndExitsZero(t *testing.T) {
	sc := newScene(t, "sigterm")
	out := filepath.Join(t.TempDir(), "creds")
	args := append(sc.agentArgs("run", brokertest.RolePodReader, out), "--health-addr", "127.0.0.1:0")
	cmd := exec.Command(agentBinary(t), args...)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill() }()

	waitForFile(t, filepath.Join(out, "token"), done, logs)
	token := sc.publishedToken(t, out)
	listPods(t, sc.stack, token, sc.ns)
	if _, err := kubeconfigClient(t, out).CoreV1().Pods(sc.ns).List(t.Context(),
		metav1.ListOptions{}); err != nil {
		t.Fatalf("the published kubeconfig does not work: %v", err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(grace):
		t.Fatalf("still running %s after SIGTERM\n%s", grace, logs.String())
	}
	events := sc.broker.Audit(t)
	issued, revoked := eventsOf(events, audit.CredentialIssued), eventsOf(events, audit.CredentialRevoked)
	if len(issued) != 1 || len(revoked) != 1 || revoked[0].CredentialID != issued[0].CredentialID {
		t.Errorf("audit: issued %+v, revoked %+v; want the one credential issued, then revoked",
			issued, revoked)
	}
	waitRefused(t, sc.stack, token, sc.ns)
}

// syncBuffer collects a process's output while the test reads it.
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

// waitForFile waits up to 30 s for path, failing early if the process ends.
func waitForFile(t *testing.T, path string, exited <-chan error, logs *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			t.Fatalf("the agent exited (%v) before writing %s\n%s", err, path, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 30s\n%s", path, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

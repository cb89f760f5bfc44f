//go:build integration

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/test/harness"
)

func TestSIGTERMRevokesTheCredentialAndExitsZero(t *testing.T) {
	s := harness.Shared(t)
	const ns = "sigterm-team"
	tg := startBroker(t, s, func(int) string { return ns }, nil)
	out := filepath.Join(t.TempDir(), "creds")
	args := append(agentArgs(tg, "run", out), "--health-addr", "127.0.0.1:0")
	cmd := exec.Command(build(t, "github.com/lanyard-dev/lanyard/cmd/agent"), args...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()

	var token []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		if token, err = os.ReadFile(filepath.Join(out, "token")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no token after 30s:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := kubeconfigClient(t, out).CoreV1().Pods(ns).List(context.Background(),
		metav1.ListOptions{}); err != nil {
		t.Fatalf("the published credential does not work: %v", err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second): // well inside a pod's default 30 s grace period
		t.Fatalf("still running 15s after SIGTERM\n%s", logs.String())
	}
	if tg.fake != nil && tg.fake.Count("RevokeCredential") != 1 {
		t.Errorf("broker saw %+v, want one revocation", tg.fake.Calls())
	}
	waitRefused(t, s, string(token), ns)
}

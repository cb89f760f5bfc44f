//go:build integration

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/broker/audit"
	"github.com/lanyard-dev/lanyard/test/brokertest"
)

func TestOnceWritesFilesThatInClusterAndKubeconfigClientsUse(t *testing.T) {
	sc := newScene(t, "once")
	ctx := context.Background()
	for _, name := range []string{"web-1", "web-2", "web-3"} {
		if _, err := sc.stack.CreatePod(ctx, sc.ns, name, "web", nil); err != nil {
			t.Fatal(err)
		}
	}
	want := sc.podCount(t)
	out := filepath.Join(t.TempDir(), "creds")
	cmd := exec.Command(agentBinary(t), sc.agentArgs("once", brokertest.RolePodReader, out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("lanyard-agent once: %v\n%s", err, b)
	}
	for _, name := range []string{"token", "ca.crt", "namespace", "kubeconfig"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("once left no %s: %v", name, err)
		}
	}
	token := sc.publishedToken(t, out)

	pods, err := kubeconfigClient(t, out).CoreV1().Pods(sc.ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) != want {
		t.Fatalf("the kubeconfig client listed %d pods, want %d: %v", len(pods.Items), want, err)
	}
	got := runInCluster(t, sc.stack, out)
	if line := fmt.Sprintf("pods in %s: %d", sc.ns, want); !strings.Contains(got, line) {
		t.Fatalf("the in-cluster program printed %q, want %q", got, line)
	}

	issued := eventsOf(sc.broker.Audit(t), audit.CredentialIssued)
	if len(issued) != 1 || issued[0].Caller.Pod != sc.caller.Pod.Name ||
		issued[0].Role != brokertest.RolePodReader || issued[0].TargetNamespace != sc.ns {
		t.Errorf("audit credential.issued events = %+v, want one for pod %s, role %s, namespace %s",
			issued, sc.caller.Pod.Name, brokertest.RolePodReader, sc.ns)
	}
	if n := len(eventsOf(sc.broker.Audit(t), audit.CredentialRevoked)); n != 0 {
		t.Errorf("once revoked %d credentials; its credential must outlive it", n)
	}
	listPods(t, sc.stack, token, sc.ns)
}

func TestOnceExitsOneWithTheBrokersReasonWhenDenied(t *testing.T) {
	sc := newScene(t, "denied")
	out := filepath.Join(t.TempDir(), "creds")
	cmd := exec.Command(agentBinary(t), sc.agentArgs("once", brokertest.RoleDenied, out)...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("lanyard-agent once for a denied role: %v, want exit status 1\n%s", err, stderr.String())
	}
	reason := fmt.Sprintf("service account %s/app is not a subject of role %s", sc.ns,
		brokertest.RoleDenied)
	for _, want := range []string{"PermissionDenied", reason} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stderr.String())
		}
	}
	if _, err := os.Stat(filepath.Join(out, "token")); err == nil {
		t.Error("a denied once left a token behind")
	}
	denied := eventsOf(sc.broker.Audit(t), audit.CredentialDenied)
	if len(denied) != 1 || denied[0].Role != brokertest.RoleDenied || denied[0].Reason == "" {
		t.Errorf("audit credential.denied events = %+v, want one for role %s with a reason",
			denied, brokertest.RoleDenied)
	}
}

// eventsOf returns the events of one kind.
func eventsOf(events []audit.Event, kind string) []audit.Event {
	var out []audit.Event
	for _, e := range events {
		if e.Event == kind {
			out = append(out, e)
		}
	}
	return out
}

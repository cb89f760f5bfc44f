//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/lanyard-dev/lanyard/agent/agenttest/fakebroker"
	"github.com/lanyard-dev/lanyard/test/harness"
)

// TestMain starts the control plane; the fake broker stands in for Vault.
func TestMain(m *testing.M) { os.Exit(harness.Main(m, harness.Options{SkipVault: true})) }

// target is a broker for the agent to use and the caller token it accepts.
// Today it is the fake broker minting real tokens from the test API server;
// a real broker fits the same shape (its Endpoint and a pod token for it),
// and then the checks on fake (recorded calls) are skipped.
type target struct {
	endpoint  fakebroker.Endpoint
	tokenFile string
	fake      *fakebroker.Broker // nil for a real broker
}

// startBroker starts the fake broker; namespace names the namespace of
// credential n.
func startBroker(t *testing.T, s *harness.Stack, namespace func(int) string, now func() time.Time) target {
	t.Helper()
	ctx := context.Background()
	if err := s.CreateNamespace(ctx, "lanyard-callers", nil); err != nil {
		t.Fatal(err)
	}
	podName := fmt.Sprintf("agent-%d", time.Now().UnixNano())
	pod, err := s.CreatePod(ctx, "lanyard-callers", podName, "app", nil)
	if err != nil {
		t.Fatal(err)
	}
	caller, err := s.PodToken(ctx, pod, "lanyard", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "caller-token")
	if err := os.WriteFile(tokenFile, []byte(caller), 0o600); err != nil {
		t.Fatal(err)
	}
	minter := &fakebroker.StackMinter{Stack: s, Namespace: namespace, Now: now}
	b := &fakebroker.Broker{Mint: minter.Mint, Revoke: minter.Revoke}
	b.SetCallerToken(caller)
	return target{endpoint: fakebroker.Start(t, b), tokenFile: tokenFile, fake: b}
}

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// build compiles a package of the module into a temporary directory once.
func build(t *testing.T, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[pkg]; ok {
		return bin
	}
	dir, err := os.MkdirTemp("", "lanyard-it-bin-")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	built[pkg] = bin
	return bin
}

func agentArgs(tg target, mode, outDir string) []string {
	return []string{mode, "--broker-addr", tg.endpoint.Addr, "--broker-ca-file", tg.endpoint.CAFile,
		"--server-name", tg.endpoint.ServerName, "--token-file", tg.tokenFile,
		"--role", "pod-reader", "--output-dir", outDir}
}

// kubeconfigClient loads dir/kubeconfig with client-go's loader.
func kubeconfigClient(t *testing.T, dir string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig"))
	if err != nil {
		t.Fatalf("load kubeconfig: %v", err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOnceWritesFilesThatInClusterAndKubeconfigClientsUse(t *testing.T) {
	s := harness.Shared(t)
	ctx := context.Background()
	const ns = "once-team"
	tg := startBroker(t, s, func(int) string { return ns }, nil)
	if err := s.CreateNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web-1", "web-2", "web-3"} {
		if _, err := s.CreatePod(ctx, ns, name, "web", nil); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "creds")
	cmd := exec.Command(build(t, "github.com/lanyard-dev/lanyard/cmd/agent"), agentArgs(tg, "once", out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("lanyard-agent once: %v\n%s", err, b)
	}

	pods, err := kubeconfigClient(t, out).CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) != 3 {
		t.Fatalf("kubeconfig client listed %d pods: %v", len(pods.Items), err)
	}

	got := runInCluster(t, s, out)
	if want := "pods in " + ns + ": 3"; !strings.Contains(got, want) {
		t.Fatalf("in-cluster program printed %q, want %q", got, want)
	}
}

// runInCluster runs the in-cluster program with dir mounted where Kubernetes
// mounts service account tokens, in a private mount namespace. A tmpfs over
// /run keeps the host's /var/run untouched.
func runInCluster(t *testing.T, s *harness.Stack, dir string) string {
	t.Helper()
	if err := exec.Command("unshare", "-m", "true").Run(); err != nil {
		t.Skipf("unshare -m is not permitted here (%v): cannot mount the credential directory", err)
	}
	u, err := url.Parse(s.APIServerURL)
	if err != nil {
		t.Fatal(err)
	}
	const script = `set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/secrets/kubernetes.io/serviceaccount
mount --bind "$1" /run/secrets/kubernetes.io/serviceaccount
exec "$2"`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
		dir, build(t, "github.com/lanyard-dev/lanyard/test/incluster"))
	cmd.Env = append(os.Environ(), "KUBERNETES_SERVICE_HOST="+u.Hostname(),
		"KUBERNETES_SERVICE_PORT="+u.Port())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("in-cluster program: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// waitRefused polls until the API server refuses token, up to a minute: it
// caches successful authentications for about ten seconds.
func waitRefused(t *testing.T, s *harness.Stack, token, ns string) {
	t.Helper()
	c, err := s.ClientForToken(token)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		if apierrors.IsUnauthorized(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API server still accepts a revoked token a minute later (last: %v)", err)
		}
		time.Sleep(time.Second)
	}
}

// tokenNamespace reads the namespace claim of a service account token.
func tokenNamespace(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", err
	}
	var claims struct {
		K8s struct {
			Namespace string `json:"namespace"`
		} `json:"kubernetes.io"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", err
	}
	return claims.K8s.Namespace, nil
}

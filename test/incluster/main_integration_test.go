//go:build integration

package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/lanyard-dev/lanyard/test/brokertest"
	"github.com/lanyard-dev/lanyard/test/harness"
)

// TestMain starts the control plane and Vault; each test starts the real
// broker against them with brokertest.
func TestMain(m *testing.M) { os.Exit(harness.Main(m, harness.Options{})) }

// scene is what one test runs in: a namespace of its own, a real broker
// whose catalog lets the account "app" of that namespace request
// brokertest.RolePodReader, and a pod running as "app" for the agent to
// authenticate as.
type scene struct {
	stack  *harness.Stack
	ns     string
	broker *brokertest.Broker
	caller brokertest.Caller
}

func newScene(t *testing.T, prefix string) *scene {
	t.Helper()
	s := harness.Shared(t)
	ns := prefix + "-" + rand.String(5)
	b := brokertest.Start(t, s, brokertest.Options{Catalog: brokertest.Catalog(ns, "app")})
	return &scene{stack: s, ns: ns, broker: b, caller: b.NewCaller(t, ns, "agent", "app", nil)}
}

// agentArgs are the arguments of `lanyard-agent mode` against the scene's
// broker.
func (sc *scene) agentArgs(mode, role, outDir string) []string {
	return []string{mode, "--broker-addr", sc.broker.Addr, "--broker-ca-file", sc.broker.CAFile,
		"--token-file", sc.caller.TokenFile, "--role", role, "--output-dir", outDir}
}

// publishedToken reads the token file of dir and remembers it as a secret
// the broker must not log.
func (sc *scene) publishedToken(t *testing.T, dir string) string {
	t.Helper()
	token, err := os.ReadFile(filepath.Join(dir, "token"))
	if err != nil {
		t.Fatalf("read the published token: %v", err)
	}
	sc.broker.Remember(string(token))
	return string(token)
}

// podCount is how many pods the admin sees in the scene's namespace.
func (sc *scene) podCount(t *testing.T) int {
	t.Helper()
	pods, err := sc.stack.Admin.CoreV1().Pods(sc.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(pods.Items)
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

func agentBinary(t *testing.T) string {
	return build(t, "github.com/lanyard-dev/lanyard/cmd/agent")
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

// runInCluster runs the in-cluster program with dir mounted where Kubernetes
// mounts service account tokens, in a private mount namespace. A tmpfs over
// /run keeps the host's /var/run untouched.
func runInCluster(t *testing.T, s *harness.Stack, dir string) string {
	t.Helper()
	if err := exec.Command("unshare", "-m", "true").Run(); err != nil {
		// A skip would pass the suite without its central proof, so this fails:
		// run the integration tests as root (or with CAP_SYS_ADMIN), as CI does.
		t.Fatalf("unshare -m is not permitted here (%v): the in-cluster client test needs "+
			"a private mount namespace to mount the credential directory", err)
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

// listPods lists the pods of ns with token and fails the test if it cannot.
func listPods(t *testing.T, s *harness.Stack, token, ns string) int {
	t.Helper()
	c, err := s.ClientForToken(token)
	if err != nil {
		t.Fatal(err)
	}
	pods, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("the credential cannot list pods in %s: %v", ns, err)
	}
	return len(pods.Items)
}

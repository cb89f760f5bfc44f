//go:build integration

package chart

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/lanyard-dev/lanyard/broker/catalog"
	"github.com/lanyard-dev/lanyard/broker/webhook"
	"github.com/lanyard-dev/lanyard/test/harness"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const testCatalog = `apiVersion: lanyard.dev/v1alpha1
kind: RoleCatalog
roles:
  - name: pod-reader
    subjects:
      - namespace: team-a
        serviceAccounts: [app]
    grant:
      namespace: caller
      rules:
        - apiGroups: [""]
          resources: [pods]
          verbs: [get, list]
    ttl: 10m
    maxTTL: 1h
`

// testAgentImage is the agent image the test injector writes.
const testAgentImage = "ghcr.io/lanyard-dev/lanyard-agent:test"

// catalogRoles adapts the catalog watcher to the injector, as the webhook command does.
type catalogRoles struct{ w *catalog.Watcher }

func (c catalogRoles) MaxTTL(name string) (time.Duration, bool) {
	r, ok := c.w.Current().Role(name)
	if !ok {
		return 0, false
	}
	return r.MaxTTL, true
}

// injectorEnv is a running webhook registered in the shared API server.
type injectorEnv struct {
	stack    *harness.Stack
	injector *webhook.Injector
	brokerCA string
	url      string // of the webhook server, without a path
}

// startInjector serves the webhook on loopback with a certificate of the harness CA and
// registers it for namespaces labelled lanyard.dev/inject=enabled.
func startInjector(t *testing.T) *injectorEnv {
	t.Helper()
	s := harness.Shared(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := s.CA.IssueFiles(certFile, keyFile, "webhook", nil,
		[]net.IP{net.ParseIP("127.0.0.1")}); err != nil {
		t.Fatal(err)
	}
	caFile, catalogFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "catalog.yaml")
	writeFile(t, caFile, string(s.CA.CertPEM))
	writeFile(t, catalogFile, testCatalog)
	watcher, err := catalog.NewWatcher(catalogFile, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := webhook.DefaultConfig()
	cfg.AgentImage = testAgentImage
	cfg.BrokerAddr = "lanyard-broker.lanyard.svc:8443"
	cfg.BrokerCA = webhook.FileCA(caFile)
	injector, err := webhook.NewInjector(cfg, catalogRoles{watcher})
	if err != nil {
		t.Fatal(err)
	}
	certs, err := webhook.NewCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	srv := webhook.NewServer(webhook.NewHandler(injector, logger), certs, logger)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("webhook server: %v", err)
		}
	})
	register(t, s, "https://"+ln.Addr().String()+"/mutate")
	return &injectorEnv{stack: s, injector: injector, brokerCA: string(s.CA.CertPEM),
		url: "https://" + ln.Addr().String()}
}

func register(t *testing.T, s *harness.Stack, url string) {
	t.Helper()
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	ifNeeded := admissionregistrationv1.IfNeededReinvocationPolicy
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "lanyard-e2e"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "inject.lanyard.dev",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: s.CA.CertPEM},
			Rules:                   []admissionregistrationv1.RuleWithOperations{podCreate()},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			ReinvocationPolicy:      &ifNeeded,
			AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"lanyard.dev/inject": "enabled"}},
			MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "lanyard-annotated",
				Expression: "has(object.metadata.annotations) && " +
					"object.metadata.annotations.exists(k, k.startsWith('lanyard.dev/'))"}},
		}},
	}
	ctx := context.Background()
	hooks := s.Admin.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if _, err := hooks.Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hooks.Delete(context.Background(), cfg.Name, metav1.DeleteOptions{}) })
}

func podCreate() admissionregistrationv1.RuleWithOperations {
	return admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"},
			Resources: []string{"pods"}},
	}
}

// prepareNamespace creates a namespace with labels and the service account app, and waits
// until the API server sends its pods to the webhook (its configuration cache lags).
func (e *injectorEnv) prepareNamespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	if err := e.stack.CreateNamespace(ctx, name, labels); err != nil {
		t.Fatal(err)
	}
	if err := e.stack.CreateServiceAccount(ctx, name, "app"); err != nil {
		t.Fatal(err)
	}
	probe := annotatedPod("probe")
	eventually(t, 30*time.Second, func() error {
		p, err := e.stack.Admin.CoreV1().Pods(name).Create(ctx, probe,
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return err
		}
		if p.Annotations[webhook.AnnotationInjected] != "true" {
			return errors.New("pod not mutated yet")
		}
		return nil
	})
}

// annotatedPod is the fixture: two containers asking for pod-reader.
func annotatedPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name,
			Annotations: map[string]string{webhook.AnnotationRole: "pod-reader"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "app",
			SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr(int64(1000)),
				RunAsGroup: ptr(int64(1000)), FSGroup: ptr(int64(2000))},
			Containers: []corev1.Container{
				{Name: "app", Image: "example.invalid/app:1"},
				{Name: "metrics", Image: "example.invalid/metrics:1"},
			},
		},
	}
}

func eventually(t *testing.T, limit time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", limit, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

// testWriter sends the webhook's log lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		writeFile(t, path, string(got))
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs (run with -update after checking the change):\n%s", path, got)
	}
}

// goldenView keeps what the injector decides, without what changes from run to run.
func goldenView(t *testing.T, p *corev1.Pod, brokerCA string) []byte {
	t.Helper()
	ann := map[string]string{}
	for k, v := range p.Annotations {
		if v == brokerCA {
			v = "<broker CA PEM>"
		}
		ann[k] = v
	}
	out, err := yaml.Marshal(map[string]any{"annotations": ann, "spec": p.Spec})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

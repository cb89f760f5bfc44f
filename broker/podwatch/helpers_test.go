package podwatch

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/metadata/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/lanyard-dev/lanyard/broker/audit"
)

// fakeRevoker records the leases it is asked to revoke and fails those in
// fail.
type fakeRevoker struct {
	mu        sync.Mutex
	revoked   []string
	fail      map[string]error
	inFlight  int
	most      int
	deadlines []time.Duration
}

func (f *fakeRevoker) Revoke(ctx context.Context, leaseID string) error {
	f.mu.Lock()
	f.inFlight++
	f.most = max(f.most, f.inFlight)
	if d, ok := ctx.Deadline(); ok {
		f.deadlines = append(f.deadlines, time.Until(d))
	}
	f.mu.Unlock()
	time.Sleep(time.Millisecond) // lets concurrent calls overlap
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inFlight--
	f.revoked = append(f.revoked, leaseID)
	return f.fail[leaseID]
}

func (f *fakeRevoker) leases() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.revoked...)
}

// syncBuffer is a bytes.Buffer safe for the watcher's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testEnv is a Watcher over a fake metadata client.
type testEnv struct {
	w        *Watcher
	client   *fake.FakeMetadataClient
	rev      *fakeRevoker
	logs     *syncBuffer
	audit    *syncBuffer
	metrics  *prometheus.Registry
	watching chan struct{}
}

func newTestEnv(t *testing.T, cfg Config, pods ...runtime.Object) *testEnv {
	t.Helper()
	scheme := fake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	e := &testEnv{client: fake.NewSimpleMetadataClient(scheme, pods...),
		rev: &fakeRevoker{}, logs: &syncBuffer{}, audit: &syncBuffer{},
		metrics:  prometheus.NewRegistry(),
		watching: make(chan struct{})}
	var once sync.Once
	e.client.PrependWatchReactor("pods", func(a clienttesting.Action) (bool, watch.Interface, error) {
		w, err := e.client.Tracker().Watch(a.GetResource(), a.GetNamespace())
		once.Do(func() { close(e.watching) })
		return true, w, err
	})
	cfg.Client, cfg.Revoker, cfg.Registerer = e.client, e.rev, e.metrics
	cfg.Logger = slog.New(slog.NewJSONHandler(e.logs, nil))
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return t0 }
	}
	cfg.Audit = audit.New(e.audit, cfg.Now)
	w, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.w = w
	return e
}

// startInformer runs only the informer, and returns once it has listed and
// watches; revocations then wait for revokePending.
func (e *testEnv) startInformer(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go e.w.informer.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), e.w.informer.HasSynced) {
		t.Fatal("informer never synced")
	}
	<-e.watching
	return ctx
}

// deletePod deletes a pod through the fake API server and waits until the
// informer's store has let it go.
func (e *testEnv) deletePod(t *testing.T, ctx context.Context, p *metav1.PartialObjectMetadata) {
	t.Helper()
	err := e.client.Resource(podsResource).Namespace(p.Namespace).Delete(ctx, p.Name,
		metav1.DeleteOptions{})
	if err != nil {
		t.Fatalf("delete pod: %v", err)
	}
	for e.w.known(string(p.UID)) {
		time.Sleep(5 * time.Millisecond)
	}
}

// counter reads lanyard_broker_pod_revocations_total{result}.
func (e *testEnv) counter(t *testing.T, result string) float64 {
	t.Helper()
	families, err := e.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if f.GetName() == "lanyard_broker_pod_revocations_total" &&
				m.GetLabel()[0].GetValue() == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no revocation counter for result %s", result)
	return 0
}

// logLines decodes the log lines with msg.
func (e *testEnv) logLines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func podMeta(ns, name, uid string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)},
	}
}

func podOf(p *metav1.PartialObjectMetadata) Pod {
	return Pod{UID: string(p.UID), Namespace: p.Namespace, Name: p.Name, ServiceAccount: "app"}
}

// leaseOf is a lease of role reader that acts in team-a; its credential id
// and token id are derived from id.
func leaseOf(id string, expires time.Time) Lease {
	return Lease{ID: id, CredentialID: "cred-" + id, Role: "reader", Namespace: "team-a",
		TokenID: "jti-" + id, ExpiresAt: expires}
}

// leaseIDs returns the ids of leases, sorted.
func leaseIDs(leases []Lease) []string {
	ids := make([]string, 0, len(leases))
	for _, l := range leases {
		ids = append(ids, l.ID)
	}
	slices.Sort(ids)
	if len(ids) == 0 {
		return nil
	}
	return ids
}

// auditEvents decodes the audit lines written so far.
func (e *testEnv) auditEvents(t *testing.T) []audit.Event {
	t.Helper()
	var out []audit.Event
	for _, line := range strings.Split(strings.TrimSpace(e.audit.String()), "\n") {
		if line == "" {
			continue
		}
		var ev audit.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, ev)
	}
	return out
}

// Package podwatch revokes a pod's credentials when the pod is deleted, so
// that a credential dies with its pod even when the agent never got to
// revoke it (node loss, force deletion, the whole pod killed).
//
// It watches the metadata of every pod in the cluster (never the full
// objects) and keeps, in memory, the leases this process issued to each
// pod. Each broker replica therefore knows only the leases it issued itself,
// and a restarted broker knows none: those credentials then live until
// they expire. That is the price of keeping the broker stateless.
package podwatch

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"

	"github.com/lanyard-dev/lanyard/broker/audit"
)

// Defaults of Config.
const (
	DefaultConcurrency = 4
	// DefaultTimeout includes the wait for a free Vault slot, which creds calls
	// may hold for up to a minute each under load: a shorter bound would give
	// up on exactly the revocations a busy broker most needs.
	DefaultTimeout    = 2 * time.Minute
	DefaultSweepEvery = time.Minute
)

// lookupTimeout bounds the GET that tells whether a pod missing from the
// informer's store is really gone.
const lookupTimeout = 5 * time.Second

const uidIndex = "uid"

var podsResource = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// Revoker revokes one Vault lease. *issuer.Issuer implements it.
type Revoker interface {
	Revoke(ctx context.Context, leaseID string) error
}

// Config is what a Watcher needs. Client, Revoker, Logger and Audit are
// required.
type Config struct {
	Client  metadata.Interface
	Revoker Revoker
	Logger  *slog.Logger
	// Audit receives one line per lease the watch revokes or fails to.
	Audit *audit.Log
	// Registerer receives lanyard_broker_pod_revocations_total; nil: none.
	Registerer prometheus.Registerer
	// Concurrency caps the revocations in flight; 0: DefaultConcurrency.
	// The issuer caps all its Vault calls too, creds and revocations
	// together; a Concurrency below that cap keeps a burst of deleted pods
	// from taking every slot away from callers waiting for a credential.
	Concurrency int
	// Timeout bounds each revocation; 0: DefaultTimeout.
	Timeout time.Duration
	// SweepEvery is how often expired leases are dropped and registered
	// pods missing from the informer's store are looked up; 0:
	// DefaultSweepEvery.
	SweepEvery time.Duration
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Watcher revokes the leases of pods that are deleted. Register and
// Unregister may be called before and while Run runs.
type Watcher struct {
	cfg         Config
	log         *slog.Logger
	reg         *registry
	informer    cache.SharedIndexInformer
	revocations *prometheus.CounterVec

	mu      sync.Mutex
	pending []gone
	wake    chan struct{}
}

// gone is a pod found deleted with the leases to revoke.
type gone struct {
	pod    Pod
	leases []Lease
	cause  string
}

// Causes of a revocation, as logged.
const (
	causeDeleted = "pod deleted"
	causeMissing = "pod not found"
)

// New builds a Watcher; it watches nothing until Run.
func New(cfg Config) (*Watcher, error) {
	if cfg.Client == nil || cfg.Revoker == nil || cfg.Logger == nil || cfg.Audit == nil {
		return nil, errors.New("podwatch config: client, revoker, logger and audit are required")
	}
	cfg = withDefaults(cfg)
	w := &Watcher{cfg: cfg, log: cfg.Logger, reg: newRegistry(), wake: make(chan struct{}, 1)}
	w.revocations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lanyard_broker_pod_revocations_total",
		Help: "Leases revoked because their pod was deleted, by result (revoked, failed).",
	}, []string{"result"})
	for _, r := range []string{resultRevoked, resultFailed} {
		w.revocations.WithLabelValues(r)
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(w.revocations); err != nil {
			return nil, err
		}
	}
	w.informer = metadatainformer.NewFilteredMetadataInformer(cfg.Client, podsResource,
		metav1.NamespaceAll, 0, cache.Indexers{uidIndex: byUID}, nil).Informer()
	if err := w.informer.SetTransform(slim); err != nil {
		return nil, err
	}
	_, err := w.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: w.onDelete})
	return w, err
}

func withDefaults(cfg Config) Config {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = DefaultSweepEvery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg
}

// Run watches pods and revokes the leases of deleted ones until ctx ends.
// Revocations still queued then are dropped: their credentials die at
// expiry.
func (w *Watcher) Run(ctx context.Context) error {
	go w.informer.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), w.informer.HasSynced) {
		return nil
	}
	w.log.LogAttrs(ctx, slog.LevelInfo, "Pod watch synced",
		slog.Int(keyPods, len(w.informer.GetStore().ListKeys())))
	ticker := time.NewTicker(w.cfg.SweepEvery)
	defer ticker.Stop()
	w.sweep(ctx)
	for {
		w.revokePending(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
		case <-ticker.C:
			w.sweep(ctx)
		}
	}
}

// Register remembers that pod holds lease until it expires. Should the pod
// already be gone (deleted between its authentication and now), its leases
// are revoked at once.
func (w *Watcher) Register(ctx context.Context, pod Pod, lease Lease) {
	w.reg.add(pod, lease)
	if !w.informer.HasSynced() {
		return // the sweep that follows the sync looks at it
	}
	if !w.known(pod.UID) && !w.exists(ctx, pod) {
		w.gone(pod.UID, causeMissing)
	}
}

// Unregister forgets a lease revoked by other means.
func (w *Watcher) Unregister(podUID, leaseID string) {
	w.reg.remove(podUID, leaseID)
}

// onDelete handles the informer's delete events, including the tombstones
// of pods whose deletion the watch missed and a later list revealed.
func (w *Watcher) onDelete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	w.gone(string(m.GetUID()), causeDeleted)
}

// gone queues the revocation of every live lease of the pod with uid.
func (w *Watcher) gone(uid, cause string) {
	pod, leases, ok := w.reg.take(uid, w.cfg.Now())
	if !ok {
		return
	}
	w.mu.Lock()
	w.pending = append(w.pending, gone{pod: pod, leases: leases, cause: cause})
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// sweep drops expired leases and looks up each registered pod that the
// informer's store does not hold: a pod deleted while no watch ran, or
// before the first list.
func (w *Watcher) sweep(ctx context.Context) {
	w.reg.prune(w.cfg.Now())
	for _, pod := range w.reg.list() {
		if !w.known(pod.UID) && !w.exists(ctx, pod) {
			w.gone(pod.UID, causeMissing)
		}
	}
}

// known tells whether the informer's store holds a pod with uid.
func (w *Watcher) known(uid string) bool {
	objs, err := w.informer.GetIndexer().ByIndex(uidIndex, uid)
	return err == nil && len(objs) > 0
}

// exists asks the API server whether pod still exists. A pod created a
// moment ago may not have reached the store yet, so absence from the store
// alone proves nothing. When the API server cannot answer, the pod is taken
// to exist: revoking a live pod's credential would break it.
func (w *Watcher) exists(ctx context.Context, pod Pod) bool {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	m, err := w.cfg.Client.Resource(podsResource).Namespace(pod.Namespace).
		Get(ctx, pod.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return false
	case err != nil:
		w.log.LogAttrs(ctx, slog.LevelWarn, "Pod lookup failed", podAttrs(pod,
			slog.String(keyError, err.Error()))...)
		return true
	}
	return string(m.GetUID()) == pod.UID
}

// byUID indexes pod metadata by UID.
func byUID(obj any) ([]string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	return []string{string(m.GetUID())}, nil
}

// slim keeps of a pod's metadata only what the watch needs, so that the
// store holds a few strings per pod.
func slim(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{
		TypeMeta: m.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		},
	}, nil
}

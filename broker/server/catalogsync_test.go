package server

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lanyard-dev/lanyard/broker/audit"
	"github.com/lanyard-dev/lanyard/broker/catalog"
	"github.com/lanyard-dev/lanyard/broker/issuer"
	"github.com/lanyard-dev/lanyard/broker/metrics"
)

// fakeSyncer fails the first fails syncs, then records the synced catalogs.
type fakeSyncer struct {
	mu     sync.Mutex
	fails  int
	synced []*catalog.Catalog
	done   chan struct{}
}

func (f *fakeSyncer) Sync(_ context.Context, cat *catalog.Catalog, _ bool) ([]issuer.Change, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return nil, errors.New("vault sealed")
	}
	f.synced = append(f.synced, cat)
	close(f.done)
	return []issuer.Change{{Op: "create", Role: "lanyard-pod-reader"}}, nil
}

func TestCatalogSyncAuditsAndRetriesUntilSynced(t *testing.T) {
	buf := &syncBuffer{}
	syncer := &fakeSyncer{fails: 2, done: make(chan struct{})}
	m := metrics.New(DenialReasons())
	cs := NewCatalogSync(syncer, audit.New(buf, func() time.Time { return testNow }), m,
		discardLogger(), time.Millisecond)
	cat := tbCatalog(t).Current()
	cs.Rejected(errors.New("catalog.yaml: roles[0].name: invalid"))
	cs.Loaded(cat)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- cs.Run(ctx) }()
	<-syncer.done
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if !cs.Synced() || len(syncer.synced) != 1 || syncer.synced[0] != cat {
		t.Errorf("synced = %v, %v", cs.Synced(), syncer.synced)
	}
	tb := &testBroker{audit: buf}
	events := tb.auditEvents(t)
	if len(events) != 2 || events[0].Event != audit.CatalogRejected ||
		events[0].Reason != "catalog.yaml: roles[0].name: invalid" ||
		events[1].Event != audit.CatalogLoaded || events[1].Reason != "loaded 3 roles from test.yaml" {
		t.Errorf("audit = %+v", events)
	}
	body := gatherText(t, &testBroker{metrics: m})
	for _, line := range []string{"lanyard_broker_catalog_roles 3",
		"lanyard_broker_catalog_reload_failures_total 1"} {
		if !contains(body, line) {
			t.Errorf("metrics lack %s", line)
		}
	}
}

func TestCatalogSyncKeepsOnlyTheNewestQueuedCatalog(t *testing.T) {
	syncer := &fakeSyncer{done: make(chan struct{})}
	cs := NewCatalogSync(syncer, newDiscardAudit(), metrics.New(nil), discardLogger(), time.Millisecond)
	older, newer := tbCatalog(t).Current(), tbCatalog(t).Current()
	cs.Loaded(older)
	cs.Loaded(newer)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = cs.Run(ctx) }()
	<-syncer.done
	if syncer.synced[0] != newer {
		t.Error("synced the older catalog")
	}
}

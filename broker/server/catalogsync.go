package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/lanyard-dev/lanyard/broker/audit"
	"github.com/lanyard-dev/lanyard/broker/catalog"
	"github.com/lanyard-dev/lanyard/broker/issuer"
	"github.com/lanyard-dev/lanyard/broker/metrics"
)

// RoleSyncer makes Vault's roles match a catalog. *issuer.Issuer implements it.
type RoleSyncer interface {
	Sync(ctx context.Context, cat *catalog.Catalog, dryRun bool) ([]issuer.Change, error)
}

// CatalogSync reacts to catalog loads: it audits and counts each load or
// rejection and makes the Vault roles match the newest good catalog,
// retrying until Vault accepts.
type CatalogSync struct {
	syncer  RoleSyncer
	audit   *audit.Log
	metrics *metrics.Metrics
	log     *slog.Logger
	retry   time.Duration

	latest chan *catalog.Catalog
	synced atomic.Bool
}

// NewCatalogSync returns a CatalogSync; retry is the wait after a failed sync.
func NewCatalogSync(
	syncer RoleSyncer,
	a *audit.Log,
	m *metrics.Metrics,
	logger *slog.Logger,
	retry time.Duration,
) *CatalogSync {
	return &CatalogSync{syncer: syncer, audit: a, metrics: m, log: logger, retry: retry,
		latest: make(chan *catalog.Catalog, 1)}
}

// Loaded records a newly loaded catalog and queues it for syncing; only the
// newest queued catalog is synced.
func (c *CatalogSync) Loaded(cat *catalog.Catalog) {
	c.metrics.CatalogLoaded(len(cat.Roles))
	c.write(audit.Event{Event: audit.CatalogLoaded,
		Reason: fmt.Sprintf("loaded %d roles from %s", len(cat.Roles), cat.Source)})
	c.log.Info("Catalog loaded", slog.String("source", cat.Source), slog.Int("roles", len(cat.Roles)))
	for {
		select {
		case c.latest <- cat:
			return
		default:
		}
		select {
		case <-c.latest:
		default:
		}
	}
}

// Rejected records a catalog reload refused as invalid; the previous catalog
// stays in use.
func (c *CatalogSync) Rejected(err error) {
	c.metrics.CatalogRejected()
	c.write(audit.Event{Event: audit.CatalogRejected, Reason: err.Error()})
	c.log.Warn("Catalog rejected, keeping the previous one", slog.String(keyError, err.Error()))
}

// Synced reports whether a catalog has been synced to Vault since start.
func (c *CatalogSync) Synced() bool { return c.synced.Load() }

// Run syncs queued catalogs until ctx ends.
func (c *CatalogSync) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case cat := <-c.latest:
			c.syncUntilDone(ctx, cat)
		}
	}
}

// syncUntilDone retries a failed sync until it succeeds, ctx ends or a newer
// catalog arrives, which replaces it.
func (c *CatalogSync) syncUntilDone(ctx context.Context, cat *catalog.Catalog) {
	for {
		if c.syncOnce(ctx, cat) {
			return
		}
		timer := time.NewTimer(c.retry)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case newer := <-c.latest:
			timer.Stop()
			cat = newer
		case <-timer.C:
		}
	}
}

func (c *CatalogSync) syncOnce(ctx context.Context, cat *catalog.Catalog) bool {
	start := time.Now()
	changes, err := c.syncer.Sync(ctx, cat, false)
	c.metrics.Vault("sync", time.Since(start))
	for _, ch := range changes {
		c.log.Info("Vault role changed", slog.String("change", ch.String()))
	}
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("Vault role sync failed, retrying", slog.String(keyError, err.Error()))
		}
		return false
	}
	c.synced.Store(true)
	return true
}

func (c *CatalogSync) write(ev audit.Event) {
	if err := c.audit.Write(ev); err != nil {
		c.log.Error("Audit write failed", slog.String(keyError, err.Error()))
	}
}

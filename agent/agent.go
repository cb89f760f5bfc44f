// Package agent wires the lanyard agent together: the broker client, the
// writer of the output directory, the renewal loop and the health server.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/lanyard-dev/lanyard/agent/brokerclient"
	"github.com/lanyard-dev/lanyard/agent/credential"
	"github.com/lanyard-dev/lanyard/agent/health"
	"github.com/lanyard-dev/lanyard/agent/renew"
	"github.com/lanyard-dev/lanyard/agent/writer"
)

// Log field names.
const (
	logCredentialID = "credential_id" //nolint:gosec // G101: a log field name, not a secret
	logExpiresAt    = "expires_at"
	logOutputDir    = "output_dir"
	logRole         = "role"
	logBrokerAddr   = "broker_addr"
	logHealthAddr   = "health_addr"
)

// Config is everything the agent is told by its flags.
type Config struct {
	// Broker says how to reach the broker and what to ask it for.
	Broker brokerclient.Options
	// OutputDir receives the credential files.
	OutputDir string
	// HealthAddr is where Run serves /healthz, /readyz and /metrics; empty
	// disables the server.
	HealthAddr string
	// ClearOnExit removes the files when Run stops.
	ClearOnExit bool
}

// Deps are what tests replace; the zero value uses the real clock.
type Deps struct {
	Clock renew.Clock
	Log   *slog.Logger
	// Rand returns jitter in [0, 1); nil means math/rand.
	Rand func() float64
	// Backoff overrides renew.DefaultBackoff when not zero.
	Backoff renew.Backoff
	// HealthListener, when set, replaces listening on Config.HealthAddr.
	HealthListener net.Listener
}

func (d Deps) withDefaults() Deps {
	if d.Clock == nil {
		d.Clock = renew.SystemClock{}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return d
}

func newRunner(cfg Config, d Deps, client *brokerclient.Client, obs renew.Observer) *renew.Runner {
	return &renew.Runner{
		Issuer:      client,
		Publisher:   &writer.Writer{Dir: cfg.OutputDir},
		Clock:       d.Clock,
		Observer:    obs,
		Log:         d.Log,
		Rand:        d.Rand,
		Backoff:     d.Backoff,
		ClearOnExit: cfg.ClearOnExit,
	}
}

// Once issues one credential, writes it and returns it.
func Once(ctx context.Context, cfg Config, d Deps) (credential.Credential, error) {
	d = d.withDefaults()
	client, err := brokerclient.New(cfg.Broker)
	if err != nil {
		return credential.Credential{}, err
	}
	defer client.Close()
	c, err := newRunner(cfg, d, client, nil).Once(ctx)
	if err != nil {
		return credential.Credential{}, err
	}
	d.Log.Info("Credential published", logCredentialID, c.ID, logExpiresAt, c.ExpiresAt,
		logOutputDir, cfg.OutputDir)
	return c, nil
}

// Run keeps a credential published until ctx is cancelled, then revokes it.
func Run(ctx context.Context, cfg Config, d Deps) error {
	d = d.withDefaults()
	client, err := brokerclient.New(cfg.Broker)
	if err != nil {
		return err
	}
	defer client.Close()
	state := health.NewState(d.Clock.Now)
	l, err := healthListener(cfg, d)
	if err != nil {
		return err
	}
	healthCtx, stopHealth := context.WithCancel(ctx)
	healthDone := make(chan error, 1)
	go func() {
		if l == nil {
			healthDone <- nil
			return
		}
		healthDone <- health.Serve(healthCtx, l, state.Handler(), d.Log)
	}()
	d.Log.Info("Agent starting", logRole, cfg.Broker.Role, logBrokerAddr, cfg.Broker.Addr,
		logOutputDir, cfg.OutputDir, logHealthAddr, cfg.HealthAddr)
	runErr := newRunner(cfg, d, client, state).Run(ctx)
	stopHealth()
	return errors.Join(runErr, <-healthDone)
}

func healthListener(cfg Config, d Deps) (net.Listener, error) {
	if d.HealthListener != nil {
		return d.HealthListener, nil
	}
	if cfg.HealthAddr == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", cfg.HealthAddr)
	if err != nil {
		return nil, fmt.Errorf("health address %s: %w", cfg.HealthAddr, err)
	}
	return l, nil
}

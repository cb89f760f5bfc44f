// Package health serves the agent's /healthz, /readyz and /metrics.
//
// The metrics are written by hand in the Prometheus text format: two numbers
// do not justify a metrics library in a binary that runs in every pod.
package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/lanyard-dev/lanyard/agent/credential"
)

const logError = "error"

// State is what the agent has published. It is safe for concurrent use and
// implements renew.Observer.
type State struct {
	now func() time.Time

	mu       sync.Mutex
	expires  time.Time
	failures uint64
}

// NewState returns an empty state that reads the time from now.
func NewState(now func() time.Time) *State { return &State{now: now} }

// Published records a newly published credential.
func (s *State) Published(c credential.Credential) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expires = c.ExpiresAt
}

// RefreshFailed counts a failed issue.
func (s *State) RefreshFailed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures++
}

// Ready reports whether an unexpired credential is published.
func (s *State) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.expires.IsZero() && s.now().Before(s.expires)
}

func (s *State) snapshot() (time.Time, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expires, s.failures
}

// Handler serves /healthz (the process answers), /readyz (an unexpired
// credential is published) and /metrics.
func (s *State) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.Ready() {
			http.Error(w, "no unexpired credential published", http.StatusServiceUnavailable)
			return
		}
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /metrics", s.serveMetrics)
	return mux
}

func (s *State) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	expires, failures := s.snapshot()
	var expiry float64
	if !expires.IsZero() {
		expiry = float64(expires.UnixMilli()) / 1000
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = fmt.Fprintf(w, `# HELP lanyard_agent_credential_expiry_timestamp_seconds `+
		`Expiry of the published credential in seconds since the epoch; 0 before the first.
# TYPE lanyard_agent_credential_expiry_timestamp_seconds gauge
lanyard_agent_credential_expiry_timestamp_seconds %g
# HELP lanyard_agent_refresh_failures_total Failed attempts to issue a credential.
# TYPE lanyard_agent_refresh_failures_total counter
lanyard_agent_refresh_failures_total %d
`, expiry, failures)
}

// Serve serves h on l until ctx is cancelled.
func Serve(ctx context.Context, l net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return fmt.Errorf("health server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("Health server shutdown failed", logError, err.Error())
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("health server: %w", err)
	}
	return nil
}

// Package audit writes the broker's audit trail: one JSON line per decision,
// with a fixed set of fields that log pipelines can rely on.
//
// An audit line never contains a token. Every field is always present, empty
// when it does not apply, so that every line has the same shape.
package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// The events of the audit trail.
const (
	CredentialIssued  = "credential.issued"  //nolint:gosec // G101: an event name
	CredentialDenied  = "credential.denied"  //nolint:gosec // G101: an event name
	CredentialRevoked = "credential.revoked" //nolint:gosec // G101: an event name
	CatalogLoaded     = "catalog.loaded"
	CatalogRejected   = "catalog.rejected"
)

// Caller identifies the pod behind a request.
type Caller struct {
	Namespace      string `json:"namespace"`
	ServiceAccount string `json:"service_account"`
	Pod            string `json:"pod"`
	PodUID         string `json:"pod_uid"`
	// TokenID is the JTI of the caller's token, never the token.
	TokenID string `json:"token_id"`
}

// Event is one audit line.
type Event struct {
	Time            time.Time  `json:"time"`
	Event           string     `json:"event"`
	RequestID       string     `json:"request_id"`
	Caller          Caller     `json:"caller"`
	Role            string     `json:"role"`
	TargetNamespace string     `json:"target_namespace"`
	CredentialID    string     `json:"credential_id"`
	ExpiresAt       *time.Time `json:"expires_at"`
	Reason          string     `json:"reason"`
	DurationMS      int64      `json:"duration_ms"`
}

// Log writes events to a writer, one line each, never interleaved.
type Log struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// New returns a log writing to w. now stamps events that carry no time;
// nil means time.Now.
func New(w io.Writer, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{w: w, now: now}
}

// Write appends one event. A zero Time is set to now, in UTC.
func (l *Log) Write(e Event) error {
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e.Time = e.Time.UTC()
	if e.ExpiresAt != nil {
		t := e.ExpiresAt.UTC()
		e.ExpiresAt = &t
	}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode audit event: %w", err)
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.w.Write(line); err != nil {
		return fmt.Errorf("write audit event: %w", err)
	}
	return nil
}

// Open returns the writer for --audit-log: standard output for "-", or the
// file at path opened for appending (created 0600 when missing). Close the
// returned closer when done; it is a no-op for standard output.
func Open(path string) (io.Writer, io.Closer, error) {
	if path == "-" || path == "" {
		return os.Stdout, nopCloser{}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600) //nolint:gosec // G304: the operator's --audit-log
	if err != nil {
		return nil, nil, fmt.Errorf("open audit log: %w", err)
	}
	return f, f, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

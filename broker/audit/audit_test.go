package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var fixed = time.Date(2026, 12, 3, 19, 0, 0, 0, time.UTC)

func decode(t *testing.T, line string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("line %q is not JSON: %v", line, err)
	}
	return m
}

func TestWriteEmitsExactlyTheSpecFields(t *testing.T) {
	var buf bytes.Buffer
	exp := fixed.Add(10 * time.Minute)
	err := New(&buf, func() time.Time { return fixed }).Write(Event{
		Event:     CredentialIssued,
		RequestID: "r1",
		Caller: Caller{Namespace: "team-a", ServiceAccount: "app", Pod: "web-1",
			PodUID: "uid-1", TokenID: "jti-1"},
		Role: "pod-reader", TargetNamespace: "team-a", CredentialID: "c1",
		ExpiresAt: &exp, DurationMS: 12,
	})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	got := decode(t, buf.String())
	want := map[string]any{
		"time": "2026-12-03T19:00:00Z", "event": "credential.issued", "request_id": "r1",
		"caller": map[string]any{"namespace": "team-a", "service_account": "app", "pod": "web-1",
			"pod_uid": "uid-1", "token_id": "jti-1"},
		"role": "pod-reader", "target_namespace": "team-a", "credential_id": "c1",
		"expires_at": "2026-12-03T19:10:00Z", "reason": "", "duration_ms": float64(12),
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("event =\n%s\nwant\n%s", gotJSON, wantJSON)
	}
}

func TestWriteKeepsEveryFieldWhenEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := New(&buf, func() time.Time { return fixed }).Write(Event{Event: CatalogLoaded}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	got := decode(t, buf.String())
	for _, k := range []string{"time", "event", "request_id", "caller", "role", "target_namespace",
		"credential_id", "expires_at", "reason", "duration_ms"} {
		if _, ok := got[k]; !ok {
			t.Errorf("field %s missing from %s", k, buf.String())
		}
	}
	if len(got) != 10 {
		t.Errorf("event has %d fields, want 10", len(got))
	}
}

func TestConcurrentWritesStayWholeLines(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, nil)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { _ = l.Write(Event{Event: CredentialDenied, Reason: strings.Repeat("x", 500)}) })
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 50 {
		t.Fatalf("lines = %d, want 50", len(lines))
	}
	for _, line := range lines {
		decode(t, line)
	}
}

func TestOpenAppendsToAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, c, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := New(w, nil).Write(Event{Event: CatalogLoaded}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	data, _ := os.ReadFile(path)
	if lines := strings.Count(string(data), "\n"); lines != 2 {
		t.Errorf("file has %d lines, want 2:\n%s", lines, data)
	}
}

func TestOpenDashIsStandardOutput(t *testing.T) {
	w, _, err := Open("-")
	if err != nil || w != os.Stdout {
		t.Errorf("Open(-) = %v, %v; want stdout", w, err)
	}
}

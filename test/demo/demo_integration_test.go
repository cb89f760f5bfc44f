//go:build integration

package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoRunsEndToEnd runs `make demo`'s program non-interactively against
// freshly built binaries and checks its table.
func TestDemoRunsEndToEnd(t *testing.T) {
	bin := t.TempDir()
	for _, pkg := range []string{"broker", "agent"} {
		out := filepath.Join(bin, "lanyard-"+pkg)
		cmd := exec.Command("go", "build", "-o", out, "../../cmd/"+pkg)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build lanyard-%s: %v\n%s", pkg, err, msg)
		}
	}
	var out bytes.Buffer
	err := run(context.Background(), &out, config{BinDir: bin, RepoRoot: "../.."})
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	wantRows := []struct{ role, what, result string }{
		{"pod-reader", "list pods in team-a", "allowed"},
		{"pod-reader", "delete pod team-a/web", "refused (403)"},
		{"pod-reader", "list pods in team-b", "refused (403)"},
		{"viewer", "list configmaps in team-a", "allowed"},
		{"viewer", "create a configmap in team-a", "refused (403)"},
		{"pod-reader", "request as team-a/intruder", "denied: service account team-a/intruder is not a subject of role pod-reader"},
		{"pod-reader", "list pods after the agent stopped", "refused (401)"},
	}
	lines := strings.Split(out.String(), "\n")
	for _, want := range wantRows {
		if !hasRow(lines, want.role, want.what, want.result) {
			t.Errorf("no table row %q | %q | ... | ok | %q", want.role, want.what, want.result)
		}
	}
	if strings.Contains(out.String(), "UNEXPECTED") {
		t.Error("the table has an unexpected result")
	}
}

func hasRow(lines []string, role, what, result string) bool {
	for _, l := range lines {
		fields := strings.Join(strings.Fields(l), " ")
		if strings.HasPrefix(fields, role+" "+what+" ") && strings.Contains(fields, " ok "+result) {
			return true
		}
	}
	return false
}

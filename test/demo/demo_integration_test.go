//go:build integration

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	err := run(ctx, &out, config{BinDir: bin, RepoRoot: "../.."})
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
		{"pod-reader", "request as team-a/intruder",
			"denied: service account team-a/intruder is not a subject of role pod-reader"},
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

// TestDemoKeepRunsUntilCtrlCThenStopsEverything runs the demo program as
// `DEMO_KEEP=1 make demo` does, uses the copy-paste kubectl line it prints,
// presses Ctrl-C, and checks that no process it started is left.
func TestDemoKeepRunsUntilCtrlCThenStopsEverything(t *testing.T) {
	bin := t.TempDir()
	for _, pkg := range []string{"../../cmd/broker", "../../cmd/agent", "."} {
		name := "demo"
		if pkg != "." {
			name = "lanyard-" + filepath.Base(pkg)
		}
		if msg, err := exec.Command("go", "build", "-o", filepath.Join(bin, name), pkg).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, msg)
		}
	}
	cmd := exec.Command(filepath.Join(bin, "demo"), "--bin", bin, "--repo", "../..")
	cmd.Env = append(os.Environ(), "DEMO_KEEP=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Should the test fail before its Ctrl-C, interrupt the demo all the same,
	// so that it stops its stack and removes its directory.
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			t.Logf("demo exited: %v", err)
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
		}
	})

	dir, kubectl := readKeepBanner(t, stdout)
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	out, err := exec.Command("sh", "-c", kubectl).CombinedOutput()
	if err != nil {
		t.Errorf("the printed line %q failed: %v\n%s", kubectl, err, out)
	}

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Errorf("demo exited with %v after Ctrl-C\n%s", err, stderr.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("demo did not exit 2 minutes after Ctrl-C\n%s", stderr.String())
	}
	stackDir := filepath.Dir(dir)
	if left := processesUsing(stackDir); len(left) > 0 {
		t.Errorf("processes still use %s after the demo exited: %v", stackDir, left)
	}
	if _, err := os.Stat(stackDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the demo left its directory %s behind (%v)", stackDir, err)
	}
}

// readKeepBanner reads the demo's output up to its "press Ctrl-C" banner and
// returns the files directory and the kubectl line it printed.
func readKeepBanner(t *testing.T, r io.Reader) (dir, kubectl string) {
	t.Helper()
	sc := bufio.NewScanner(r)
	var seen []string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		seen = append(seen, line)
		if rest, ok := strings.CutPrefix(line, "files"); ok {
			dir = strings.TrimSpace(rest)
		}
		if strings.Contains(line, "kubectl --kubeconfig") {
			if dir == "" {
				t.Fatalf("the demo printed no files directory before its kubectl line:\n%s",
					strings.Join(seen, "\n"))
			}
			return dir, line
		}
	}
	t.Fatalf("the demo printed no kubectl line:\n%s", strings.Join(seen, "\n"))
	return "", ""
}

// processesUsing lists the processes whose command line or working
// directory names dir.
func processesUsing(dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var found []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if strings.Contains(string(cmdline), dir) || strings.HasPrefix(cwd, dir) {
			// The program alone: Vault's arguments carry its root token.
			prog, _, _ := strings.Cut(string(cmdline), "\x00")
			found = append(found, e.Name()+" "+filepath.Base(prog))
		}
	}
	return found
}

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestTheDefaultTagIsTheChartsAppVersion(t *testing.T) {
	chart := filepath.Join(t.TempDir(), "Chart.yaml")
	if err := os.WriteFile(chart, []byte("apiVersion: v2\nappVersion: \"1.2.3\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ version, want string }{
		{"", "1.2.3"},
		{"v9-dirty", "v9-dirty"},
	} {
		if got, err := imageTag(tc.version, chart); err != nil || got != tc.want {
			t.Errorf("imageTag(%q) = %q, %v; want %q", tc.version, got, err, tc.want)
		}
	}
	if got, err := imageTag("", "../helm/lanyard/Chart.yaml"); err != nil || got == "" {
		t.Errorf("the real chart's appVersion: %q, %v", got, err)
	}
	if _, err := imageTag("", filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("a missing chart gave a tag")
	}
}

// The images are scratch: only the broker, which may verify Vault against
// public roots, carries a root bundle; the agent trusts the broker CA alone.
func TestOnlyTheBrokerLinksFallbackRoots(t *testing.T) {
	const fallback = "golang.org/x/crypto/x509roots/fallback"
	for cmd, want := range map[string]bool{"broker": true, "agent": false} {
		out, err := exec.Command("go", "list", "-deps", "../../cmd/"+cmd).Output()
		if err != nil {
			t.Fatalf("go list -deps cmd/%s: %v", cmd, err)
		}
		if got := slices.Contains(strings.Fields(string(out)), fallback); got != want {
			t.Errorf("cmd/%s links %s: %v, want %v", cmd, fallback, got, want)
		}
	}
}

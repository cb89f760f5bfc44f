package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const syncTestCatalog = `apiVersion: lanyard.dev/v1alpha1
kind: RoleCatalog
roles:
  - name: pod-reader
    subjects:
      - namespace: team-a
        serviceAccounts: [app]
    grant:
      namespace: caller
      rules:
        - apiGroups: [""]
          resources: [pods]
          verbs: [get, list]
    ttl: 10m
    maxTTL: 1h
  - name: viewer
    subjects:
      - namespace: team-a
        serviceAccounts: ["*"]
    grant:
      namespace: caller
      clusterRole: view
    ttl: 10m
    maxTTL: 1h
`

// syncVault answers token lookups and role calls of an empty mount, and
// counts writes.
type syncVault struct {
	mu     sync.Mutex
	writes int
}

func (v *syncVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/v1/auth/token/lookup-self":
		_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"ttl": 0, "renewable": false}})
	case r.URL.Path == "/v1/kubernetes/roles" && r.URL.Query().Get("list") == "true":
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"errors":[]}`))
	case strings.HasPrefix(r.URL.Path, "/v1/kubernetes/roles/") && r.Method == http.MethodPut:
		v.mu.Lock()
		v.writes++
		v.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"errors":[]}`))
	}
}

func TestCatalogSyncPrintsOneLinePerChange(t *testing.T) {
	tests := []struct {
		name       string
		dryRun     bool
		wantOut    string
		wantWrites int
	}{
		{"a sync writes and prints", false, "create lanyard-pod-reader\ncreate lanyard-viewer\n", 2},
		{
			"a dry run only prints", true,
			"create lanyard-pod-reader (dry run)\ncreate lanyard-viewer (dry run)\n", 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vault := &syncVault{}
			srv := httptest.NewServer(vault)
			defer srv.Close()
			dir := t.TempDir()
			catalogFile := filepath.Join(dir, "catalog.yaml")
			tokenFile := filepath.Join(dir, "vault-token")
			writeSyncFile(t, catalogFile, syncTestCatalog)
			writeSyncFile(t, tokenFile, "hvs.clitokenclitokenclitoken\n")
			args := []string{
				"catalog", "sync", "--catalog", catalogFile, "--vault-addr", srv.URL,
				"--vault-auth", "token", "--vault-token-file", tokenFile,
			}
			if tt.dryRun {
				args = append(args, "--dry-run")
			}
			var out, errOut bytes.Buffer
			root := newRootCommand()
			root.SetOut(&out)
			root.SetErr(&errOut)
			root.SetArgs(args)
			if err := root.Execute(); err != nil {
				t.Fatalf("sync: %v\n%s", err, errOut.String())
			}
			if out.String() != tt.wantOut {
				t.Fatalf("printed %q, want %q", out.String(), tt.wantOut)
			}
			if vault.writes != tt.wantWrites {
				t.Fatalf("writes = %d, want %d", vault.writes, tt.wantWrites)
			}
			if strings.Contains(out.String()+errOut.String(), "clitoken") {
				t.Fatal("the Vault token was printed")
			}
		})
	}
}

func writeSyncFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

package issuer

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeVault is an in-memory stand-in for the parts of Vault the issuer
// uses. It stores roles as Vault does (merging writes, lower-casing and
// sorting namespaces, answering TTLs as float seconds) and counts requests.
type fakeVault struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	roles    map[string]map[string]any
	requests map[string]int // "METHOD /v1/path" -> count
	writes   int
	// answer, when set, answers every request instead of the fake.
	answer func(w http.ResponseWriter, r *http.Request)
	// creds answers creds calls.
	creds func(w http.ResponseWriter, r *http.Request, body map[string]any)
	// login answers kubernetes logins; renew answers renew-self.
	login, renew func(w http.ResponseWriter, body map[string]any)
}

func newFakeVault(t testing.TB) *fakeVault {
	f := &fakeVault{t: t, roles: map[string]map[string]any{}, requests: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeVault) serve(w http.ResponseWriter, r *http.Request) {
	method := r.Method
	if r.URL.Query().Get("list") == "true" {
		method = "LIST"
	}
	f.mu.Lock()
	f.requests[method+" "+r.URL.Path]++
	answer := f.answer
	f.mu.Unlock()
	// Reading the body first lets the server notice a client that gives up.
	var body map[string]any
	data, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(data, &body)
	if answer != nil {
		answer(w, r)
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	switch {
	case path == "kubernetes/roles" && method == "LIST":
		f.listRoles(w)
	case strings.HasPrefix(path, "kubernetes/roles/"):
		f.role(w, method, strings.TrimPrefix(path, "kubernetes/roles/"), body)
	case strings.HasPrefix(path, "kubernetes/creds/") && f.creds != nil:
		f.creds(w, r, body)
	case path == "auth/kubernetes/login" && f.login != nil:
		f.login(w, body)
	case path == "auth/token/renew-self" && f.renew != nil:
		f.renew(w, body)
	case strings.HasPrefix(path, "sys/leases/revoke/"):
		w.WriteHeader(http.StatusNoContent)
	default:
		vaultError(w, http.StatusNotFound)
	}
}

func (f *fakeVault) listRoles(w http.ResponseWriter) {
	f.mu.Lock()
	defer f.mu.Unlock()
	keys := make([]string, 0, len(f.roles))
	for k := range f.roles {
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		vaultError(w, http.StatusNotFound)
		return
	}
	slices.Sort(keys)
	writeJSON(w, map[string]any{"data": map[string]any{"keys": keys}})
}

func (f *fakeVault) role(w http.ResponseWriter, method, name string, body map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch method {
	case http.MethodGet:
		role, ok := f.roles[name]
		if !ok {
			vaultError(w, http.StatusNotFound)
			return
		}
		writeJSON(w, map[string]any{"data": role})
	case http.MethodPut, http.MethodPost:
		f.writes++
		role := f.roles[name]
		if role == nil {
			role = vaultRoleDefaults(name)
		}
		for k, v := range body {
			role[k] = v
		}
		role["allowed_kubernetes_namespaces"] = vaultNamespaces(role["allowed_kubernetes_namespaces"])
		f.roles[name] = role
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		f.writes++
		delete(f.roles, name)
		w.WriteHeader(http.StatusNoContent)
	}
}

// vaultRoleDefaults is how Vault answers for a role's unset fields.
func vaultRoleDefaults(name string) map[string]any {
	return map[string]any{
		"name": name, "allowed_kubernetes_namespaces": nil, "allowed_kubernetes_namespace_selector": "",
		"token_default_ttl": 0.0, "token_max_ttl": 0.0, "token_default_audiences": nil,
		"service_account_name": "", "kubernetes_role_name": "", "kubernetes_role_type": "Role",
		"generated_role_rules": "", "name_template": "", "extra_labels": nil, "extra_annotations": nil,
	}
}

// vaultNamespaces stores namespaces as Vault does: lower case, sorted,
// without duplicates.
func vaultNamespaces(v any) any {
	list, ok := v.([]any)
	if !ok {
		return v
	}
	out := []string{}
	for _, s := range list {
		out = append(out, strings.ToLower(s.(string)))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (f *fakeVault) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[key]
}

func (f *fakeVault) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.requests {
		n += c
	}
	return n
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func vaultError(w http.ResponseWriter, status int, errs ...string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if errs == nil {
		errs = []string{}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": errs})
}

// newTestIssuer returns an issuer for addr that holds a token already, as
// if Run had logged in.
func newTestIssuer(t testing.TB, addr string, tweak func(*Config)) *Issuer {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("hvs.testtokentesttokentest\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Addr: addr, Auth: AuthToken, TokenFile: tokenFile, Logger: testLogger(t)}
	if tweak != nil {
		tweak(&cfg)
	}
	i, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	i.client.SetToken("hvs.testtokentesttokentest")
	i.setLoggedIn(time.Time{})
	return i
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// fakeClock is a clock whose waits the test releases one by one.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan time.Duration
	fire  chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{
		now:   time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		waits: make(chan time.Duration, 16),
		fire:  make(chan time.Time),
	}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.waits <- d
	return c.fire
}

// advance releases the pending wait, moving the clock by its length.
func (c *fakeClock) advance(t testing.TB) time.Duration {
	t.Helper()
	select {
	case d := <-c.waits:
		c.mu.Lock()
		c.now = c.now.Add(d)
		now := c.now
		c.mu.Unlock()
		c.fire <- now
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("the issuer never waited")
		return 0
	}
}

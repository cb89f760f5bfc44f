package issuer

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// loginFake answers kubernetes logins with numbered tokens and records the
// JWTs it was sent.
type loginFake struct {
	mu   sync.Mutex
	jwts []string
	fail bool
}

func (l *loginFake) login(w http.ResponseWriter, body map[string]any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail {
		vaultError(w, http.StatusForbidden, "permission denied")
		return
	}
	l.jwts = append(l.jwts, body["jwt"].(string))
	writeJSON(w, map[string]any{"auth": map[string]any{
		"client_token": "hvs.loggedintokenloggedin", "lease_duration": 3600, "renewable": true,
	}})
}

func (l *loginFake) sent() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.jwts...)
}

func startRun(t *testing.T, i *Issuer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- i.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

func kubernetesIssuer(t *testing.T, f *fakeVault) (*Issuer, string, *fakeClock) {
	jwtFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(jwtFile, []byte("jwt-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	i, err := New(Config{
		Addr: f.srv.URL, Auth: AuthKubernetes, Role: "lanyard-broker", JWTFile: jwtFile,
		Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	i.clock = clk
	return i, jwtFile, clk
}

func TestRunLogsInRenewsAndLogsInAgainWithTheRotatedJWT(t *testing.T) {
	f := newFakeVault(t)
	lf := &loginFake{}
	f.login = lf.login
	renewals := 0
	f.renew = func(w http.ResponseWriter, body map[string]any) {
		renewals++
		if renewals > 1 {
			vaultError(w, http.StatusForbidden, "permission denied")
			return
		}
		writeJSON(w, map[string]any{"auth": map[string]any{
			"client_token": "hvs.loggedintokenloggedin", "lease_duration": 3600, "renewable": true,
		}})
	}
	i, jwtFile, clk := kubernetesIssuer(t, f)
	if !errors.Is(i.Ready(), ErrUnavailable) {
		t.Fatal("Ready before login")
	}
	startRun(t, i)

	if d := clk.advance(t); d != 40*time.Minute {
		t.Fatalf("first renewal after %v, want two thirds of the hour", d)
	}
	if err := i.Ready(); err != nil {
		t.Fatalf("Ready after login: %v", err)
	}
	if err := os.WriteFile(jwtFile, []byte("jwt-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clk.advance(t) // second renewal fails: log in again at once
	clk.advance(t) // the next renewal wait proves the new login finished
	if got := lf.sent(); len(got) != 2 || got[0] != "jwt-1" || got[1] != "jwt-2" {
		t.Fatalf("logins sent %q, want jwt-1 then the rotated jwt-2", got)
	}
	if n := f.count("PUT /v1/auth/token/renew-self"); n != 2 {
		t.Fatalf("renewals = %d, want 2", n)
	}
}

func TestRunBacksOffBetweenFailedLogins(t *testing.T) {
	f := newFakeVault(t)
	lf := &loginFake{fail: true}
	f.login = lf.login
	i, _, clk := kubernetesIssuer(t, f)
	startRun(t, i)
	var waits []time.Duration
	for range 7 {
		waits = append(waits, clk.advance(t))
	}
	for n, d := range waits {
		limit := min(backoffMin<<n, backoffMax)
		if d < limit/2 || d > limit {
			t.Fatalf("wait %d = %v, want within [%v, %v]", n, d, limit/2, limit)
		}
	}
	if err := i.Ready(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ready after failed logins = %v", err)
	}
}

func TestRunWithATokenFileLooksItUpAndNoticesRotation(t *testing.T) {
	f := newFakeVault(t)
	var mu sync.Mutex
	var seen []string
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Vault-Token"))
		mu.Unlock()
		writeJSON(w, map[string]any{"data": map[string]any{"ttl": 0, "renewable": false}})
	}
	tokenFile := filepath.Join(t.TempDir(), "vault-token")
	if err := os.WriteFile(tokenFile, []byte("hvs.firsttokenfirsttoken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	i, err := New(Config{Addr: f.srv.URL, Auth: AuthToken, TokenFile: tokenFile, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	i.clock = clk
	startRun(t, i)
	if d := clk.advance(t); d != tokenFilePoll {
		t.Fatalf("token file checked after %v", d)
	}
	if err := os.WriteFile(tokenFile, []byte("hvs.secondtokensecondtoken"), 0o600); err != nil {
		t.Fatal(err)
	}
	clk.advance(t)
	clk.advance(t)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != "hvs.firsttokenfirsttoken" || seen[1] != "hvs.secondtokensecondtoken" {
		t.Fatalf("lookups = %d, want one per token file content", len(seen))
	}
	if err := i.Ready(); err != nil {
		t.Fatalf("Ready = %v", err)
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no address", Config{Auth: AuthToken, TokenFile: "t"}},
		{"kubernetes auth without a role", Config{Addr: "http://v", JWTFile: "j"}},
		{"token auth without a file", Config{Addr: "http://v", Auth: AuthToken}},
		{"an unknown auth", Config{Addr: "http://v", Auth: "approle"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("New accepted the config")
			}
		})
	}
}

func TestRunWithATokenFileRenewsOnlyAtTwoThirdsOfItsLife(t *testing.T) {
	f := newFakeVault(t)
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/auth/token/renew-self" {
			writeJSON(w, map[string]any{"auth": map[string]any{
				"client_token": "hvs.firsttokenfirsttoken", "lease_duration": 3600, "renewable": true,
			}})
			return
		}
		writeJSON(w, map[string]any{"data": map[string]any{"ttl": 3600, "renewable": true}})
	}
	tokenFile := filepath.Join(t.TempDir(), "vault-token")
	if err := os.WriteFile(tokenFile, []byte("hvs.firsttokenfirsttoken"), 0o600); err != nil {
		t.Fatal(err)
	}
	i, err := New(Config{Addr: f.srv.URL, Auth: AuthToken, TokenFile: tokenFile, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	i.clock = clk
	startRun(t, i)
	var waited time.Duration
	for f.count("PUT /v1/auth/token/renew-self") == 0 {
		if waited > time.Hour {
			t.Fatal("no renewal within the token's life")
		}
		// The renewal may be counted one wait late: the issuer asks for the
		// next wait only after renewing.
		waited += clk.advance(t)
	}
	if waited < 40*time.Minute || waited > 41*time.Minute {
		t.Fatalf("renewed after %v, want at two thirds of the hour", waited)
	}
}

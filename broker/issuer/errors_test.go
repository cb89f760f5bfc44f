package issuer

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestIssueIsNeverRetriedAndErrorsAreClassified(t *testing.T) {
	tests := []struct {
		name            string
		status          int
		errs            []string
		wantUnavailable bool
		wantText        string
	}{
		{"a 500 is unavailable", http.StatusInternalServerError, []string{"internal error"}, true, "status 500"},
		{"a 502 is unavailable", http.StatusBadGateway, nil, true, "status 502"},
		{"a sealed vault is unavailable", http.StatusServiceUnavailable, []string{"Vault is sealed"}, true, "sealed"},
		{"a 429 is unavailable", http.StatusTooManyRequests, []string{"rate limit quota exceeded"}, true, "status 429"},
		{"a 403 is internal with vault's text", http.StatusForbidden, []string{"permission denied"}, false, "permission denied"},
		{
			"a 400 is internal with vault's text", http.StatusBadRequest,
			[]string{"role 'lanyard-reader' does not exist"}, false, "does not exist",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVault(t)
			f.answer = func(w http.ResponseWriter, _ *http.Request) { vaultError(w, tt.status, tt.errs...) }
			i := newTestIssuer(t, f.srv.URL, nil)
			_, err := i.Issue(context.Background(), testRole("reader", podReadGrant()), "team-a", 0)
			if err == nil {
				t.Fatal("Issue succeeded")
			}
			if got := errors.Is(err, ErrUnavailable); got != tt.wantUnavailable {
				t.Fatalf("errors.Is(%v, ErrUnavailable) = %v", err, got)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("error %q does not contain %q", err, tt.wantText)
			}
			if n := f.total(); n != 1 {
				t.Fatalf("vault saw %d requests, want exactly 1 (no retries)", n)
			}
		})
	}
}

func TestIssueWhenVaultIsUnreachableIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + ln.Addr().String()
	_ = ln.Close()
	i := newTestIssuer(t, addr, nil)
	_, err = i.Issue(context.Background(), testRole("reader", podReadGrant()), "team-a", 0)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Issue = %v, want ErrUnavailable", err)
	}
}

func TestIssueThatOutlivesItsTimeoutIsUnavailableAndNotRetried(t *testing.T) {
	f := newFakeVault(t)
	f.answer = func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	i := newTestIssuer(t, f.srv.URL, func(c *Config) { c.Timeout = 50 * time.Millisecond })
	_, err := i.Issue(context.Background(), testRole("reader", podReadGrant()), "team-a", 0)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Issue = %v, want ErrUnavailable", err)
	}
	if n := f.total(); n != 1 {
		t.Fatalf("vault saw %d requests, want exactly 1", n)
	}
}

func TestErrorsNeverCarryTokens(t *testing.T) {
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJl"
	vaultToken := "hvs.CAESIJ3q0aXk2Vn8sWbq1l9cY7w"
	f := newFakeVault(t)
	f.answer = func(w http.ResponseWriter, _ *http.Request) {
		vaultError(w, http.StatusBadRequest, "bad token "+jwt, "also "+vaultToken)
	}
	i := newTestIssuer(t, f.srv.URL, nil)
	_, err := i.Issue(context.Background(), testRole("reader", podReadGrant()), "team-a", 0)
	if err == nil || strings.Contains(err.Error(), jwt) || strings.Contains(err.Error(), vaultToken) {
		t.Fatalf("error leaks a token: %v", err)
	}
	if strings.Contains(err.Error(), "testtoken") {
		t.Fatalf("error leaks the broker's own token: %v", err)
	}
}

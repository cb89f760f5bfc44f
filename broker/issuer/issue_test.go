package issuer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanyard-dev/lanyard/broker/catalog"
)

func podReadGrant() catalog.Grant {
	return catalog.Grant{Namespace: catalog.CallerNamespace, Rules: podReadRules}
}

// fakeJWT builds an unsigned token with an exp claim.
func fakeJWT(exp time.Time) string {
	enc := base64.RawURLEncoding
	payload := fmt.Sprintf(`{"exp":%d}`, exp.Unix())
	return enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString([]byte(payload)) + ".c2ln"
}

func credsAnswer(token string, lease int) func(http.ResponseWriter, *http.Request, map[string]any) {
	return func(w http.ResponseWriter, _ *http.Request, body map[string]any) {
		writeJSON(w, map[string]any{
			"lease_id":       "kubernetes/creds/lanyard-reader/AbC123",
			"lease_duration": lease,
			"renewable":      false,
			"data": map[string]any{
				"service_account_token":     token,
				"service_account_name":      "lanyard-reader-x1y2z3",
				"service_account_namespace": body["kubernetes_namespace"],
			},
		})
	}
}

func TestIssueMapsVaultsAnswerToALease(t *testing.T) {
	f := newFakeVault(t)
	var sent map[string]any
	token := fakeJWT(time.Now().Add(time.Hour))
	f.creds = func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		sent = body
		credsAnswer(token, 900)(w, r, body)
	}
	i := newTestIssuer(t, f.srv.URL, nil)
	clk := newFakeClock()
	i.clock = clk
	grant := podReadGrant()
	grant.ClusterWide = true
	grant.Audiences = []string{"api", "vault"}
	lease, err := i.Issue(context.Background(), testRole("reader", grant), "team-a", 20*time.Minute)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if f.count("PUT /v1/kubernetes/creds/lanyard-reader") != 1 {
		t.Fatalf("requests = %v", f.requests)
	}
	wantSent := map[string]any{
		"kubernetes_namespace": "team-a", "ttl": 1200.0, "cluster_role_binding": true,
		"audiences": []any{"api", "vault"},
	}
	if !reflect.DeepEqual(sent, wantSent) {
		t.Fatalf("creds body = %v, want %v", sent, wantSent)
	}
	want := Lease{
		ID: "kubernetes/creds/lanyard-reader/AbC123", Token: Secret(token),
		ServiceAccount: "lanyard-reader-x1y2z3", Namespace: "team-a",
		IssuedAt: clk.Now(), ExpiresAt: clk.Now().Add(15 * time.Minute),
	}
	if *lease != want {
		t.Fatalf("lease = %+v, want %+v", *lease, want)
	}
}

func TestIssueNeverPromisesMoreThanTheTokensExpiry(t *testing.T) {
	f := newFakeVault(t)
	clk := newFakeClock()
	exp := clk.Now().Add(5 * time.Minute).Truncate(time.Second)
	f.creds = credsAnswer(fakeJWT(exp), 3600)
	i := newTestIssuer(t, f.srv.URL, nil)
	i.clock = clk
	lease, err := i.Issue(context.Background(), testRole("reader", podReadGrant()), "team-a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !lease.ExpiresAt.Equal(exp) {
		t.Fatalf("ExpiresAt = %v, want the token's exp %v", lease.ExpiresAt, exp)
	}
}

func TestIssueRunsAtMostMaxInFlightCallsAtOnce(t *testing.T) {
	f := newFakeVault(t)
	var mu sync.Mutex
	inFlight, peak := 0, 0
	release := make(chan struct{})
	f.creds = func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
		credsAnswer(fakeJWT(time.Now().Add(time.Hour)), 600)(w, r, body)
	}
	i := newTestIssuer(t, f.srv.URL, func(c *Config) { c.MaxInFlight = 2 })
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			_, _ = i.Issue(context.Background(), testRole("reader", podReadGrant()), "team-a", 0)
		})
	}
	for f.count("PUT /v1/kubernetes/creds/lanyard-reader") < 2 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if peak != 2 {
		t.Fatalf("peak concurrent creds calls = %d, want 2", peak)
	}
}

func TestIssueWaitingForASlotGivesUpWithTheContext(t *testing.T) {
	cases := []struct {
		name    string
		occupy  bool // every slot is taken
		timeout time.Duration
		tries   int // a select between a free slot and a done context picks at random
	}{
		{"a caller that leaves while every slot is taken", true, 50 * time.Millisecond, 1},
		{"a caller gone before it asks, even with a free slot", false, 0, 100},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeVault(t)
			f.creds = credsAnswer(fakeJWT(time.Now().Add(time.Hour)), 600)
			i := newTestIssuer(t, f.srv.URL, func(c *Config) { c.MaxInFlight = 1 })
			held := 0
			if c.occupy {
				i.sem <- struct{}{}
				held = 1
			}
			for range c.tries {
				ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
				_, err := i.Issue(ctx, testRole("reader", podReadGrant()), "team-a", 0)
				cancel()
				if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) ||
					!strings.Contains(err.Error(), "free vault slot") {
					t.Fatalf("Issue = %v, want unavailable while waiting for a slot", err)
				}
			}
			if f.total() != 0 {
				t.Errorf("requests = %v, want none", f.requests)
			}
			if len(i.sem) != held {
				t.Errorf("%d slots held after Issue gave up, want %d", len(i.sem), held)
			}
		})
	}
}

// TestIssueReturnsTheLeaseOfACallerThatLeftDuringTheCall: Vault minted,
// so the lease must reach the caller, which revokes it.
func TestIssueReturnsTheLeaseOfACallerThatLeftDuringTheCall(t *testing.T) {
	f := newFakeVault(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.creds = func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		cancel()
		time.Sleep(20 * time.Millisecond) // a client still tied to ctx gives up now
		credsAnswer(fakeJWT(time.Now().Add(time.Hour)), 600)(w, r, body)
	}
	i := newTestIssuer(t, f.srv.URL, nil)
	lease, err := i.Issue(ctx, testRole("reader", podReadGrant()), "team-a", 0)
	if err != nil || lease.ID != "kubernetes/creds/lanyard-reader/AbC123" {
		t.Fatalf("Issue = %+v, %v; want the minted lease", lease, err)
	}
	if ctx.Err() == nil {
		t.Fatal("the caller never left")
	}
}

func TestIssueCallIsStillBoundedByTheTimeout(t *testing.T) {
	f := newFakeVault(t)
	f.creds = func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		<-r.Context().Done()
	}
	i := newTestIssuer(t, f.srv.URL, func(c *Config) { c.Timeout = 50 * time.Millisecond })
	_, err := i.Issue(context.Background(), testRole("reader", podReadGrant()), "team-a", 0)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("Issue = %v, want a timeout", err)
	}
}

// TestRevokeSharesTheSlotsOfIssue: a revocation waits for a slot as a creds
// call does, and gives up with its context without calling Vault.
func TestRevokeSharesTheSlotsOfIssue(t *testing.T) {
	f := newFakeVault(t)
	i := newTestIssuer(t, f.srv.URL, func(c *Config) { c.MaxInFlight = 1 })
	i.sem <- struct{}{}
	const lease = "kubernetes/creds/lanyard-reader/AbC123"
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := i.Revoke(ctx, lease); !errors.Is(err, ErrUnavailable) ||
		!strings.Contains(err.Error(), "free vault slot") {
		t.Errorf("Revoke with every slot taken = %v, want unavailable", err)
	}
	if f.total() != 0 {
		t.Fatalf("requests = %v, want none while every slot is taken", f.requests)
	}
	done := make(chan error)
	go func() { done <- i.Revoke(context.Background(), lease) }()
	select {
	case err := <-done:
		t.Fatalf("Revoke returned %v before a slot was free", err)
	case <-time.After(50 * time.Millisecond):
	}
	<-i.sem
	if err := <-done; err != nil || f.count("PUT /v1/sys/leases/revoke/"+lease) != 1 {
		t.Fatalf("Revoke once a slot was free = %v, requests %v", err, f.requests)
	}
}

func TestIssueWithoutAVaultTokenIsUnavailableWithoutACall(t *testing.T) {
	f := newFakeVault(t)
	i := newTestIssuer(t, f.srv.URL, nil)
	i.setLoginFailed(errors.New("permission denied"))
	_, err := i.Issue(context.Background(), testRole("reader", podReadGrant()), "team-a", 0)
	if !errors.Is(err, ErrUnavailable) || f.total() != 0 {
		t.Fatalf("Issue = %v after %d requests; want ErrUnavailable and none", err, f.total())
	}
}

func TestRevoke(t *testing.T) {
	tests := []struct {
		name     string
		lease    string
		answer   func(http.ResponseWriter, *http.Request)
		wantErr  bool
		wantSent bool
	}{
		{"a lanyard lease is revoked by path", "kubernetes/creds/lanyard-reader/AbC123", nil, false, true},
		{
			"an unknown lease is success", "kubernetes/creds/lanyard-reader/gone",
			func(w http.ResponseWriter, _ *http.Request) { vaultError(w, 400, "invalid lease") }, false, true,
		},
		{
			"a refusal is an error", "kubernetes/creds/lanyard-reader/AbC123",
			func(w http.ResponseWriter, _ *http.Request) { vaultError(w, 403, "permission denied") }, true, true,
		},
		{"a foreign lease is refused", "database/creds/admin/AbC123", nil, true, false},
		{"another mount is refused", "other/creds/lanyard-reader/AbC123", nil, true, false},
		{"a path escape is refused", "kubernetes/creds/lanyard-x/../../../sys/seal", nil, true, false},
		{"an empty lease is refused", "", nil, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVault(t)
			f.answer = tt.answer
			i := newTestIssuer(t, f.srv.URL, nil)
			err := i.Revoke(context.Background(), tt.lease)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Revoke = %v, wantErr %v", err, tt.wantErr)
			}
			sent := f.count("PUT /v1/sys/leases/revoke/"+tt.lease) == 1
			wantTotal := 0
			if tt.wantSent {
				wantTotal = 1
			}
			if sent != tt.wantSent || f.total() != wantTotal {
				t.Fatalf("requests = %v", f.requests)
			}
		})
	}
}

func TestSecretRedactsEverywhere(t *testing.T) {
	s := Secret("eyJsecret")
	var b strings.Builder
	fmt.Fprintf(&b, "%s %v %+v %#v %q %x", s, s, s, s, s, s)
	fmt.Fprintf(&b, "%v", Lease{Token: s})
	fmt.Fprintf(&b, "%+v", &Lease{Token: s})
	data, _ := json.Marshal(Lease{Token: s})
	b.Write(data)
	if strings.Contains(b.String(), "eyJsecret") || strings.Contains(b.String(), "65794a") {
		t.Fatalf("secret printed: %s", b.String())
	}
	if s.Reveal() != "eyJsecret" {
		t.Fatal("Reveal does not return the token")
	}
}

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
	i := newTestIssuer(t, "http://127.0.0.1:1", func(c *Config) { c.MaxInFlight = 1 })
	i.sem <- struct{}{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := i.Issue(ctx, testRole("reader", podReadGrant()), "team-a", 0)
	if err == nil || !strings.Contains(err.Error(), "free vault slot") {
		t.Fatalf("Issue = %v", err)
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
			if sent != tt.wantSent || f.total() != map[bool]int{true: 1}[tt.wantSent] {
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

package server

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/lanyard-dev/lanyard/broker/audit"
	"github.com/lanyard-dev/lanyard/broker/issuer"
	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

func TestIssueCredentialMintsForAnAllowedCaller(t *testing.T) {
	tb := newTestBroker(t)
	resp, err := tb.client.IssueCredential(as(tokApp), &lanyardv1.IssueCredentialRequest{
		Role: "pod-reader", Ttl: durationpb.New(30 * time.Minute),
	})
	if err != nil {
		t.Fatalf("IssueCredential: %v", err)
	}
	c := resp.GetCredential()
	if c.GetToken() != "minted-SECRET-token" || c.GetNamespace() != "team-a" ||
		c.GetRole() != "pod-reader" || c.GetServiceAccount() != "v-lanyard-x" ||
		c.GetApiServer() != "https://kube.example:6443" || string(c.GetCaCert()) != "CA PEM" {
		t.Errorf("credential = %+v", c)
	}
	if got := c.GetExpiresAt().AsTime(); !got.Equal(testNow.Add(30 * time.Minute)) {
		t.Errorf("expires_at = %v", got)
	}
	if got := tb.minter.issued; len(got) != 1 || got[0] != "pod-reader/team-a/30m0s" {
		t.Errorf("vault calls = %v, want one for pod-reader/team-a/30m0s", got)
	}
	lease, podUID, _, err := tb.sealer.Open(c.GetId())
	if err != nil || podUID != "uid-1" || lease != "kubernetes/creds/lanyard-pod-reader/lease-team-a" {
		t.Errorf("sealed id = %q %q %v", lease, podUID, err)
	}
	events := tb.auditEvents(t)
	exp := testNow.Add(30 * time.Minute)
	want := audit.Event{Time: testNow, Event: audit.CredentialIssued,
		Caller: audit.Caller{Namespace: "team-a", ServiceAccount: "app", Pod: "web-1",
			PodUID: "uid-1", TokenID: "jti-1"},
		Role: "pod-reader", TargetNamespace: "team-a", CredentialID: c.GetId(), ExpiresAt: &exp}
	if len(events) != 1 {
		t.Fatalf("audit events = %d, want 1", len(events))
	}
	got := events[0]
	if got.RequestID == "" {
		t.Errorf("audit event has no request id")
	}
	got.RequestID = ""
	if !sameEvent(got, want) {
		t.Errorf("audit event = %+v\nwant %+v", got, want)
	}
	tb.assertNoSecrets(t)
}

func TestIssueCredentialUsesTheRoleTTLByDefault(t *testing.T) {
	tb := newTestBroker(t)
	_, err := tb.client.IssueCredential(as(tokApp), &lanyardv1.IssueCredentialRequest{Role: "pod-reader"})
	if err != nil {
		t.Fatalf("IssueCredential: %v", err)
	}
	if got := tb.minter.issued; len(got) != 1 || got[0] != "pod-reader/team-a/10m0s" {
		t.Errorf("vault calls = %v, want pod-reader/team-a/10m0s", got)
	}
}

func TestIssueCredentialRefuses(t *testing.T) {
	cases := []struct {
		name   string
		token  string
		req    *lanyardv1.IssueCredentialRequest
		code   codes.Code
		msg    string
		reason string // start of the audit reason
	}{
		{"a call without a token", "", &lanyardv1.IssueCredentialRequest{Role: "pod-reader"},
			codes.Unauthenticated, "authentication failed", "authentication failed: missing_token"},
		{"random bytes as a token", "q8#Zr!%7 random ~bytes", &lanyardv1.IssueCredentialRequest{Role: "pod-reader"},
			codes.Unauthenticated, "authentication failed", "authentication failed: malformed_token"},
		{"a 1 MiB token", strings.Repeat("A", 1<<20), &lanyardv1.IssueCredentialRequest{Role: "pod-reader"},
			codes.Unauthenticated, "authentication failed", "authentication failed: oversized_token"},
		{"an expired token", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", &lanyardv1.IssueCredentialRequest{Role: "pod-reader"},
			codes.Unauthenticated, "authentication failed", "authentication failed: token_rejected"},
		{"a token not bound to a pod", tokUnbound, &lanyardv1.IssueCredentialRequest{Role: "pod-reader"},
			codes.Unauthenticated, "authentication failed", "authentication failed: not_pod_bound"},
		{"an unreachable kubernetes api", tokDown, &lanyardv1.IssueCredentialRequest{Role: "pod-reader"},
			codes.Unavailable, "the kubernetes api is unavailable; retry later", ""},
		{"no role", tokApp, &lanyardv1.IssueCredentialRequest{},
			codes.InvalidArgument, "role is required", "role is required"},
		{"a role not in the catalog", tokApp, &lanyardv1.IssueCredentialRequest{Role: "db-admin"},
			codes.PermissionDenied, "role db-admin is not in the catalog", "role db-admin is not"},
		{"a service account that is not a subject", tokBatch,
			&lanyardv1.IssueCredentialRequest{Role: "pod-reader"}, codes.PermissionDenied,
			"service account team-a/batch is not a subject of role pod-reader", "service account"},
		{"pod labels that do not match", tokBatch, &lanyardv1.IssueCredentialRequest{Role: "web-only"},
			codes.PermissionDenied, "pod labels", "pod labels"},
		{"a namespace without the selected labels", tokApp,
			&lanyardv1.IssueCredentialRequest{Role: "prod-viewer"}, codes.PermissionDenied,
			"namespace team-a", "namespace team-a"},
		{"a ttl above maxTTL", tokApp, &lanyardv1.IssueCredentialRequest{Role: "pod-reader",
			Ttl: durationpb.New(2 * time.Hour)}, codes.InvalidArgument,
			"ttl 2h0m0s is above the maxTTL 1h0m0s of role pod-reader", "ttl 2h0m0s"},
		{"a ttl below 10m", tokApp, &lanyardv1.IssueCredentialRequest{Role: "pod-reader",
			Ttl: durationpb.New(time.Minute)}, codes.InvalidArgument,
			"ttl 1m0s is below the Kubernetes minimum of 10m0s", "ttl 1m0s"},
		{"an invalid ttl", tokApp, &lanyardv1.IssueCredentialRequest{Role: "pod-reader",
			Ttl: &durationpb.Duration{Seconds: 1, Nanos: -1}}, codes.InvalidArgument,
			"ttl is not a valid duration", "ttl is not"},
		{"another namespace than the role grants", tokApp, &lanyardv1.IssueCredentialRequest{
			Role: "pod-reader", Namespace: "team-b"}, codes.InvalidArgument,
			"role pod-reader grants access to namespace team-a, not team-b", "role pod-reader grants"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := newTestBroker(t)
			_, err := tb.client.IssueCredential(as(c.token), c.req)
			st := status.Convert(err)
			if st.Code() != c.code || !strings.HasPrefix(st.Message(), c.msg) {
				t.Errorf("status = %v %q, want %v %q", st.Code(), st.Message(), c.code, c.msg)
			}
			if n := tb.minter.calls(); n != 0 {
				t.Errorf("vault calls = %d, want none", n)
			}
			events := tb.auditEvents(t)
			if len(events) != 1 || events[0].Event != audit.CredentialDenied ||
				!strings.Contains(events[0].Reason, c.reason) || events[0].Role != c.req.GetRole() {
				t.Errorf("audit = %+v, want one credential.denied with reason %q", events, c.reason)
			}
			tb.assertNoSecrets(t)
		})
	}
}

func TestIssueCredentialMapsVaultFailures(t *testing.T) {
	cases := []struct {
		name string
		err  error
		code codes.Code
		msg  string
	}{
		{"vault unreachable is unavailable", issuer.ErrUnavailable, codes.Unavailable,
			"vault is unavailable; retry later"},
		{"any other vault error is internal", errors.New("permission denied on creds"),
			codes.Internal, "internal error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := newTestBroker(t)
			tb.minter.err = c.err
			_, err := tb.client.IssueCredential(as(tokApp), &lanyardv1.IssueCredentialRequest{Role: "pod-reader"})
			if st := status.Convert(err); st.Code() != c.code || st.Message() != c.msg {
				t.Errorf("status = %v %q, want %v %q", st.Code(), st.Message(), c.code, c.msg)
			}
			if n := tb.minter.calls(); n != 1 {
				t.Errorf("vault calls = %d, want exactly 1 (never retried)", n)
			}
		})
	}
}

func TestIssueCredentialRateLimitsEachPod(t *testing.T) {
	tb := newTestBroker(t, func(c *Config) { c.Limiter = NewLimiter(1, 2) })
	req := &lanyardv1.IssueCredentialRequest{Role: "pod-reader"}
	for i := range 2 {
		if _, err := tb.client.IssueCredential(as(tokApp), req); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	_, err := tb.client.IssueCredential(as(tokApp), req)
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("third call = %v, want RESOURCE_EXHAUSTED", err)
	}
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if retry == nil || retry.GetRetryDelay().AsDuration() != time.Second {
		t.Errorf("retry info = %v, want a 1s delay", retry)
	}
	if _, err := tb.client.IssueCredential(as(tokOtherPod), req); err != nil {
		t.Errorf("another pod was limited too: %v", err)
	}
	if n := tb.minter.calls(); n != 3 {
		t.Errorf("vault calls = %d, want 3", n)
	}
}

// sameEvent compares audit events, times by instant.
func sameEvent(a, b audit.Event) bool {
	timesEqual := a.Time.Equal(b.Time) && (a.ExpiresAt == nil) == (b.ExpiresAt == nil) &&
		(a.ExpiresAt == nil || a.ExpiresAt.Equal(*b.ExpiresAt))
	a.Time, b.Time, a.ExpiresAt, b.ExpiresAt = time.Time{}, time.Time{}, nil, nil
	return timesEqual && a == b
}

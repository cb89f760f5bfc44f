//go:build integration

package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/broker/audit"
	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

// bearer returns a context carrying token as the caller token.
func bearer(token string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

// TestDenials walks the denial list of issue 3: each is refused with its
// code, leaves a credential.denied audit event, and makes no Vault call.
func TestDenials(t *testing.T) {
	lb := sharedBroker(t)
	ctx := context.Background()
	s := lb.stack
	_, appTok := newPod(t, lb, "team-a", "app", map[string]string{"app": "web"})
	_, batchTok := newPod(t, lb, "team-a", "batch", map[string]string{"app": "web"})
	_, bTok := newPod(t, lb, "team-b", "app", map[string]string{"app": "web"})
	_, notWebTok := newPod(t, lb, "team-a", "app", map[string]string{"app": "batch"})
	pod, _ := newPod(t, lb, "team-a", "app", map[string]string{"app": "web"})
	otherAudience, err := s.PodToken(ctx, pod, "not-lanyard", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	rememberSecret(otherAudience)
	unbound, err := s.ServiceAccountToken(ctx, "team-a", "app", []string{"lanyard"}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	rememberSecret(unbound)
	random := make([]byte, 512)
	_, _ = rand.Read(random)
	// Junk is a caller's secret too: neither may be echoed into a log line.
	rememberSecret(base64.StdEncoding.EncodeToString(random))
	rememberSecret(strings.Repeat("eyJh", 16)) // any 64-byte run of the 1 MiB token

	cases := []struct {
		name   string
		token  string
		role   string
		ttl    time.Duration
		code   codes.Code
		reason string // in the audit event
	}{
		{"a service account that is not a subject", batchTok, "pod-reader", 0, codes.PermissionDenied,
			"service account team-a/batch is not a subject of role pod-reader"},
		{"a namespace that does not match", bTok, "pod-reader", 0, codes.PermissionDenied,
			"namespace team-b"},
		{"a namespaceSelector that does not match", bTok, "viewer", 0, codes.PermissionDenied,
			"namespace team-b labels"},
		{"pod labels that do not match", notWebTok, "config-editor", 0, codes.PermissionDenied,
			"pod labels"},
		{"an unknown role", appTok, "db-admin", 0, codes.PermissionDenied,
			"role db-admin is not in the catalog"},
		{"a ttl above maxTTL", appTok, "pod-reader", 2 * time.Hour, codes.InvalidArgument,
			"above the maxTTL"},
		{"a token with another audience", otherAudience, "pod-reader", 0, codes.Unauthenticated,
			"is invalid for the target audiences"},
		{"an expired token", expiredToken(t, lb, pod), "pod-reader", 0, codes.Unauthenticated,
			"expired"},
		{"a token not bound to a pod", unbound, "pod-reader", 0, codes.Unauthenticated,
			"authentication failed: not_pod_bound"},
		{"random bytes", base64.StdEncoding.EncodeToString(random), "pod-reader", 0, codes.Unauthenticated,
			"authentication failed: malformed_token"},
		{"a 1 MiB token", strings.Repeat("eyJh", 1<<18), "pod-reader", 0, codes.Unauthenticated,
			"authentication failed: oversized_token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := &lanyardv1.IssueCredentialRequest{Role: c.role}
			if c.ttl != 0 {
				req.Ttl = durationpb.New(c.ttl)
			}
			lb.expectDenied(t, c.token, req, c.code, c.reason)
		})
	}
}

// TestDeniedForADeletedPod mints a pod's token, deletes the pod, and waits
// until the pod is gone before the token's first use: the API server then
// refuses it at once (a token reviewed in the last ~10 s would still pass,
// see LANDSCAPE.md; the broker adds no cache of its own).
func TestDeniedForADeletedPod(t *testing.T) {
	lb := sharedBroker(t)
	ctx := context.Background()
	pod, tok := newPod(t, lb, "team-a", "app", map[string]string{"app": "web"})
	zero := int64(0)
	pods := lb.stack.Admin.CoreV1().Pods(pod.Namespace)
	if err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	err := poll(30*time.Second, func() error {
		_, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return errStillThere
	})
	if err != nil {
		t.Fatalf("pod not deleted: %v", err)
	}
	lb.expectDenied(t, tok, &lanyardv1.IssueCredentialRequest{Role: "pod-reader"},
		codes.Unauthenticated, "token has been invalidated")
}

var errStillThere = status.Error(codes.FailedPrecondition, "pod still there")

// expectDenied calls IssueCredential and checks the code, the audit event
// and that Vault was not called.
func (lb *liveBroker) expectDenied(
	t *testing.T,
	token string,
	req *lanyardv1.IssueCredentialRequest,
	code codes.Code,
	reason string,
) {
	t.Helper()
	before := lb.minter.calls()
	var header metadata.MD
	_, err := lb.client.IssueCredential(bearer(token), req, grpc.Header(&header))
	st := status.Convert(err)
	if st.Code() != code {
		t.Errorf("code = %v (%s), want %v", st.Code(), st.Message(), code)
	}
	if code == codes.Unauthenticated && st.Message() != "authentication failed" {
		t.Errorf("message = %q, want the generic one", st.Message())
	}
	if n := lb.minter.calls() - before; n != 0 {
		t.Errorf("vault calls = %d, want none", n)
	}
	ev, ok := lb.auditFor(t, header.Get(RequestIDHeader))
	t.Logf("audit reason: %s", ev.Reason)
	if !ok || ev.Event != audit.CredentialDenied || !strings.Contains(ev.Reason, reason) {
		t.Errorf("audit = %+v (found %v), want credential.denied with %q", ev, ok, reason)
	}
}

// auditFor returns the audit event of the request with the given id.
func (lb *liveBroker) auditFor(t *testing.T, ids []string) (audit.Event, bool) {
	t.Helper()
	if len(ids) != 1 {
		return audit.Event{}, false
	}
	tb := &testBroker{audit: lb.audit}
	for _, ev := range tb.auditEvents(t) {
		if ev.RequestID == ids[0] {
			return ev, true
		}
	}
	return audit.Event{}, false
}

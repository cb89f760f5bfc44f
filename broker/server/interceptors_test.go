package server

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/lanyard-dev/lanyard/broker/catalog"
	"github.com/lanyard-dev/lanyard/broker/issuer"
	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

// panickingMinter stands in for a bug in a handler's dependency.
type panickingMinter struct{ fakeMinter }

func (*panickingMinter) Issue(context.Context, *catalog.Role, string, time.Duration) (*issuer.Lease, error) {
	panic("bug")
}

func TestRecoveryTurnsAPanicIntoInternal(t *testing.T) {
	tb := newTestBroker(t, func(c *Config) { c.Issuer = &panickingMinter{} })
	_, err := tb.client.IssueCredential(as(tokApp), &lanyardv1.IssueCredentialRequest{Role: "pod-reader"})
	if st := status.Convert(err); st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Errorf("status = %v, want INTERNAL internal error", st)
	}
	if !strings.Contains(tb.logs.String(), `"msg":"Handler panicked"`) {
		t.Errorf("panic not logged:\n%s", tb.logs.String())
	}
	if n := tb.requestCount(t, "IssueCredential", codes.Internal); n != 1 {
		t.Errorf("requests_total{IssueCredential,Internal} = %v, want 1", n)
	}
	// The server keeps serving after the panic.
	if _, err := tb.client.ListRoles(as(tokApp), &lanyardv1.ListRolesRequest{}); err != nil {
		t.Errorf("ListRoles after panic: %v", err)
	}
}

func TestRequestIDIsSentAndAudited(t *testing.T) {
	tb := newTestBroker(t)
	var header metadata.MD
	_, err := tb.client.IssueCredential(as(tokApp), &lanyardv1.IssueCredentialRequest{Role: "pod-reader"},
		grpc.Header(&header))
	if err != nil {
		t.Fatalf("IssueCredential: %v", err)
	}
	id := header.Get(RequestIDHeader)
	if len(id) != 1 {
		t.Fatalf("x-request-id = %v", id)
	}
	if ev := tb.auditEvents(t)[0]; ev.RequestID != id[0] {
		t.Errorf("audit request_id = %q, header = %q", ev.RequestID, id[0])
	}
	if !strings.Contains(tb.logs.String(), `"request_id":"`+id[0]+`"`) {
		t.Errorf("logs lack the request id")
	}
}

func TestEachCallGetsItsOwnRequestID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := newRequestID()
		if seen[id] {
			t.Fatalf("request id %s repeated", id)
		}
		seen[id] = true
	}
}

func TestDenialsAreCountedByReason(t *testing.T) {
	tb := newTestBroker(t)
	_, _ = tb.client.IssueCredential(as(tokBatch), &lanyardv1.IssueCredentialRequest{Role: "pod-reader"})
	_, _ = tb.client.IssueCredential(as(""), &lanyardv1.IssueCredentialRequest{Role: "pod-reader"})
	body := gatherText(t, tb)
	for _, line := range []string{
		`lanyard_broker_denials_total{reason="not_subject"} 1`,
		`lanyard_broker_denials_total{reason="missing_token"} 1`,
	} {
		if !strings.Contains(body, line) {
			t.Errorf("metrics lack %s", line)
		}
	}
}

// gatherText scrapes the broker's metrics handler.
func gatherText(t *testing.T, tb *testBroker) string {
	t.Helper()
	rec := httptest.NewRecorder()
	tb.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

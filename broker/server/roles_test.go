package server

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

func TestListRolesExplainsEveryRole(t *testing.T) {
	tb := newTestBroker(t)
	resp, err := tb.client.ListRoles(as(tokBatch), &lanyardv1.ListRolesRequest{})
	if err != nil {
		t.Fatalf("ListRoles: %v", err)
	}
	roles := resp.GetRoles()
	if len(roles) != 3 {
		t.Fatalf("roles = %d, want 3", len(roles))
	}
	want := []struct {
		name    string
		allowed bool
		reason  string
	}{
		{"pod-reader", false, "service account team-a/batch is not a subject of role pod-reader"},
		{"web-only", false, "pod labels"},
		{"prod-viewer", false, "namespace team-a"},
	}
	for i, w := range want {
		r := roles[i]
		if r.GetName() != w.name || r.GetAllowed() != w.allowed || !strings.HasPrefix(r.GetReason(), w.reason) {
			t.Errorf("role %d = %s %v %q, want %s %v %q", i, r.GetName(), r.GetAllowed(),
				r.GetReason(), w.name, w.allowed, w.reason)
		}
	}
	if d := roles[0].GetMaxTtl().AsDuration(); d != time.Hour {
		t.Errorf("pod-reader maxTTL = %v, want 1h", d)
	}
	if roles[0].GetDescription() != "Read pods in the caller's namespace" {
		t.Errorf("description = %q", roles[0].GetDescription())
	}
	if tb.audit.String() != "" {
		t.Errorf("ListRoles wrote audit lines: %s", tb.audit.String())
	}
}

func TestListRolesLeavesTheReasonEmptyWhenAllowed(t *testing.T) {
	tb := newTestBroker(t)
	resp, err := tb.client.ListRoles(as(tokApp), &lanyardv1.ListRolesRequest{})
	if err != nil {
		t.Fatalf("ListRoles: %v", err)
	}
	if r := resp.GetRoles()[0]; !r.GetAllowed() || r.GetReason() != "" {
		t.Errorf("pod-reader = %v %q, want allowed without reason", r.GetAllowed(), r.GetReason())
	}
}

func TestListRolesRefusesAnUnauthenticatedCaller(t *testing.T) {
	tb := newTestBroker(t)
	_, err := tb.client.ListRoles(as(tokUnbound), &lanyardv1.ListRolesRequest{})
	if st := status.Convert(err); st.Code() != codes.Unauthenticated || st.Message() != "authentication failed" {
		t.Errorf("status = %v", st)
	}
}

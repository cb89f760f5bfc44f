package server

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lanyard-dev/lanyard/broker/audit"
	"github.com/lanyard-dev/lanyard/broker/issuer"
	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

func TestRevokeCredential(t *testing.T) {
	cases := []struct {
		name     string
		token    string
		id       func(tb *testBroker) string
		vaultErr error
		code     codes.Code
		msg      string
		event    string
		revokes  int
	}{
		{"the owning pod revokes its credential", tokApp, ownID, nil, codes.OK, "",
			audit.CredentialRevoked, 1},
		{"another pod of the same account is refused", tokOtherPod, ownID, nil,
			codes.PermissionDenied, "credential was issued to another pod; only that pod may revoke it",
			audit.CredentialDenied, 0},
		{"a malformed id is invalid", tokApp, fixedID("not-an-id"), nil, codes.InvalidArgument,
			"credential id is malformed or was not issued by this broker", audit.CredentialDenied, 0},
		{"an empty id is invalid", tokApp, fixedID(""), nil, codes.InvalidArgument,
			"credential id is required", audit.CredentialDenied, 0},
		{"a caller without a token is unauthenticated", "", ownID, nil, codes.Unauthenticated,
			"authentication failed", audit.CredentialDenied, 0},
		{"vault unreachable is unavailable", tokApp, ownID, issuer.ErrUnavailable, codes.Unavailable,
			"vault is unavailable; retry later", audit.CredentialDenied, 1},
		{"another vault failure is internal", tokApp, ownID, errors.New("boom"), codes.Internal,
			"internal error", audit.CredentialDenied, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := newTestBroker(t)
			tb.minter.err = c.vaultErr
			id := c.id(tb)
			_, err := tb.client.RevokeCredential(as(c.token), &lanyardv1.RevokeCredentialRequest{Id: id})
			if st := status.Convert(err); st.Code() != c.code || st.Message() != c.msg {
				t.Errorf("status = %v %q, want %v %q", st.Code(), st.Message(), c.code, c.msg)
			}
			if n := len(tb.minter.revoked); n != c.revokes {
				t.Errorf("vault revokes = %d, want %d", n, c.revokes)
			}
			events := tb.auditEvents(t)
			if len(events) != 1 || events[0].Event != c.event || events[0].CredentialID != id {
				t.Errorf("audit = %+v, want one %s for the id", events, c.event)
			}
			tb.assertNoSecrets(t)
		})
	}
}

func TestRevokeCredentialRevokesTheSealedLease(t *testing.T) {
	tb := newTestBroker(t)
	id := tb.sealer.Seal("kubernetes/creds/lanyard-x/abc", "uid-1", testNow.Add(time.Hour))
	if _, err := tb.client.RevokeCredential(as(tokApp), &lanyardv1.RevokeCredentialRequest{Id: id}); err != nil {
		t.Fatalf("RevokeCredential: %v", err)
	}
	if got := tb.minter.revoked; len(got) != 1 || got[0] != "kubernetes/creds/lanyard-x/abc" {
		t.Errorf("revoked = %v", got)
	}
	ev := tb.auditEvents(t)[0]
	if ev.Caller.PodUID != "uid-1" || ev.ExpiresAt == nil || !ev.ExpiresAt.Equal(testNow.Add(time.Hour)) {
		t.Errorf("audit event = %+v", ev)
	}
}

// ownID seals an id for the pod behind tokApp.
func ownID(tb *testBroker) string {
	return tb.sealer.Seal("kubernetes/creds/lanyard-pod-reader/l1", "uid-1", testNow.Add(time.Hour))
}

func fixedID(id string) func(*testBroker) string {
	return func(*testBroker) string { return id }
}

package server

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lanyard-dev/lanyard/broker/audit"
	"github.com/lanyard-dev/lanyard/broker/catalog"
	"github.com/lanyard-dev/lanyard/broker/issuer"
	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

// huge is close to the largest request the server accepts (64 KiB).
var huge = strings.Repeat("A", 60<<10)

// maxRecordedLine bounds an audit or log line whatever the caller sent.
const maxRecordedLine = 2 << 10

func TestCallerChosenStringsAreRecordedSafely(t *testing.T) {
	forged := "x\n{\"event\":\"credential.issued\"}"
	cases := []struct {
		name   string
		token  string
		issue  *lanyardv1.IssueCredentialRequest
		revoke *lanyardv1.RevokeCredentialRequest
		code   codes.Code
		want   audit.Event // the fields that must be recorded so
	}{
		{"a huge role from an unauthenticated caller", "",
			&lanyardv1.IssueCredentialRequest{Role: huge}, nil, codes.Unauthenticated,
			audit.Event{Role: `"` + huge[:40] + `"... (61440 bytes)`}},
		{"a huge role", tokApp, &lanyardv1.IssueCredentialRequest{Role: huge}, nil,
			codes.InvalidArgument, audit.Event{Role: `"` + huge[:40] + `"... (61440 bytes)`}},
		{"a role that forges a line", tokApp, &lanyardv1.IssueCredentialRequest{Role: forged}, nil,
			codes.InvalidArgument, audit.Event{Role: `"x\n{\"event\":\"credential.issued\"}"`}},
		{"a role name too long for the catalog", tokApp,
			&lanyardv1.IssueCredentialRequest{Role: strings.Repeat("a", 41)}, nil,
			codes.InvalidArgument, audit.Event{Role: `"` + strings.Repeat("a", 40) + `"... (41 bytes)`}},
		{"a role name in capitals", tokApp, &lanyardv1.IssueCredentialRequest{Role: "Pod-Reader"},
			nil, codes.InvalidArgument, audit.Event{Role: `"Pod-Reader"`}},
		{"a huge namespace", tokApp, &lanyardv1.IssueCredentialRequest{Role: "pod-reader",
			Namespace: huge}, nil, codes.InvalidArgument, audit.Event{Role: "pod-reader",
			TargetNamespace: "team-a"}},
		{"a huge id from an unauthenticated caller", "", nil,
			&lanyardv1.RevokeCredentialRequest{Id: huge}, codes.Unauthenticated,
			audit.Event{CredentialID: idTooLong}},
		{"a huge id", tokApp, nil, &lanyardv1.RevokeCredentialRequest{Id: huge},
			codes.InvalidArgument, audit.Event{CredentialID: idTooLong}},
		{"an id that forges a line", tokApp, nil, &lanyardv1.RevokeCredentialRequest{Id: forged},
			codes.InvalidArgument, audit.Event{CredentialID: idMalformed}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := newTestBroker(t)
			var err error
			if c.issue != nil {
				_, err = tb.client.IssueCredential(as(c.token), c.issue)
			} else {
				_, err = tb.client.RevokeCredential(as(c.token), c.revoke)
			}
			st := status.Convert(err)
			if st.Code() != c.code || strings.Contains(st.Message(), huge[:100]) {
				t.Errorf("status = %v %.200q, want %v without the caller's string", st.Code(),
					st.Message(), c.code)
			}
			events := tb.auditEvents(t)
			if len(events) != 1 {
				t.Fatalf("audit = %+v, want one line", events)
			}
			got := events[0]
			if got.Event != audit.CredentialDenied || got.Role != c.want.Role ||
				got.TargetNamespace != c.want.TargetNamespace || got.CredentialID != c.want.CredentialID {
				t.Errorf("audit line records role %q, namespace %q, id %q; want %q, %q, %q",
					got.Role, got.TargetNamespace, got.CredentialID,
					c.want.Role, c.want.TargetNamespace, c.want.CredentialID)
			}
			for _, line := range strings.Split(tb.audit.String()+tb.logs.String(), "\n") {
				if len(line) > maxRecordedLine || strings.Contains(line, huge[:100]) {
					t.Errorf("a line of %d bytes records the caller's string: %.300s", len(line), line)
				}
			}
			if n := tb.minter.calls(); n != 0 {
				t.Errorf("vault calls = %d, want none", n)
			}
		})
	}
}

func TestAWellFormedIDIsRecordedWhole(t *testing.T) {
	tb := newTestBroker(t)
	id := tb.sealer.Seal("kubernetes/creds/lanyard-pod-reader/l1", "uid-9", testNow.Add(time.Hour))
	_, err := tb.client.RevokeCredential(as(tokApp), &lanyardv1.RevokeCredentialRequest{Id: id})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("revoke of another pod's id = %v, want PERMISSION_DENIED", err)
	}
	if events := tb.auditEvents(t); len(events) != 1 || events[0].CredentialID != id {
		t.Errorf("audit = %+v, want the id recorded whole", events)
	}
}

// TestTheLongestSealedIDFitsTheLimit shows that maxCredentialIDLen refuses
// no id the broker issues: a 500-character mount, the longest role name and
// a UID still fit.
func TestTheLongestSealedIDFitsTheLimit(t *testing.T) {
	tb := newTestBroker(t)
	lease := strings.Repeat("m", 500) + "/creds/" + issuer.RoleName(strings.Repeat("r",
		catalog.MaxRoleNameLength)) + "/" + strings.Repeat("s", 24)
	id := tb.sealer.Seal(lease, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", testNow.Add(time.Hour))
	if len(id) > maxCredentialIDLen || recordedID(id) != id {
		t.Errorf("a sealed id of %d characters is refused; the limit is %d", len(id),
			maxCredentialIDLen)
	}
	if _, _, _, err := tb.sealer.Open(id); err != nil {
		t.Fatal(err)
	}
}

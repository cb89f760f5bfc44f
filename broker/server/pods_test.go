package server

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/lanyard-dev/lanyard/broker/podwatch"
	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

// fakePods records what the service tells the pod watch.
type fakePods struct {
	mu     sync.Mutex
	events []string
	ids    []string // credential ids registered
}

func (f *fakePods) Register(_ context.Context, p podwatch.Pod, l podwatch.Lease) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, "register "+p.Namespace+"/"+p.Name+" "+p.ServiceAccount+" "+p.UID+
		" "+l.ID+" "+l.Role+" "+l.Namespace+" "+l.TokenID+" "+l.ExpiresAt.Format(time.RFC3339))
	f.ids = append(f.ids, l.CredentialID)
}

func (f *fakePods) Unregister(podUID, leaseID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, "unregister "+podUID+" "+leaseID)
}

func withPods(p PodLeases) brokerOption { return func(c *Config) { c.Pods = p } }

func TestPodWatchLearnsOfEveryLease(t *testing.T) {
	const lease = "kubernetes/creds/lanyard-pod-reader/lease-team-a"
	registered := "register team-a/web-1 app uid-1 " + lease + " pod-reader team-a jti-1 " +
		testNow.Add(30*time.Minute).Format(time.RFC3339)
	cases := []struct {
		name     string
		vaultErr error // of the revocation
		want     []string
	}{
		{"an issued then revoked credential is registered and unregistered", nil,
			[]string{registered, "unregister uid-1 " + lease}},
		{"a credential Vault failed to revoke stays registered", errors.New("vault down"),
			[]string{registered}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pods := &fakePods{}
			tb := newTestBroker(t, withPods(pods))
			resp, err := tb.client.IssueCredential(as(tokApp), &lanyardv1.IssueCredentialRequest{
				Role: "pod-reader", Ttl: durationpb.New(30 * time.Minute),
			})
			if err != nil {
				t.Fatalf("IssueCredential: %v", err)
			}
			tb.minter.err = c.vaultErr
			_, _ = tb.client.RevokeCredential(as(tokApp),
				&lanyardv1.RevokeCredentialRequest{Id: resp.GetCredential().GetId()})
			if !slices.Equal(pods.events, c.want) {
				t.Errorf("pod watch was told %q\nwant %q", pods.events, c.want)
			}
			if id := resp.GetCredential().GetId(); !slices.Equal(pods.ids, []string{id}) {
				t.Errorf("pod watch was given credential ids %q, want the one issued %q", pods.ids, id)
			}
		})
	}
}

func TestRefusedRequestsRegisterNothing(t *testing.T) {
	pods := &fakePods{}
	tb := newTestBroker(t, withPods(pods))
	_, _ = tb.client.IssueCredential(as(tokBatch), &lanyardv1.IssueCredentialRequest{Role: "web-only"})
	_, _ = tb.client.RevokeCredential(as(tokOtherPod), &lanyardv1.RevokeCredentialRequest{Id: ownID(tb)})
	if len(pods.events) != 0 {
		t.Errorf("pod watch was told %q, want nothing", pods.events)
	}
}

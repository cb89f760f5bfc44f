//go:build integration

package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/lanyard-dev/lanyard/broker/audit"
	"github.com/lanyard-dev/lanyard/broker/podwatch"
	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

// startPodWatch runs the pod watch of the live broker as Run does, with the
// broker's own identity and the real issuer.
func (lb *liveBroker) startPodWatch(
	ctx context.Context,
	logger *slog.Logger,
	auditLog *audit.Log,
) (*podwatch.Watcher, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("",
		filepath.Join(lb.stack.Dir, "lanyard-broker.kubeconfig"))
	if err != nil {
		return nil, err
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	w, err := podwatch.New(podwatch.Config{Client: meta, Revoker: lb.issuer, Logger: logger,
		Audit: auditLog})
	if err != nil {
		return nil, err
	}
	go func() { _ = w.Run(ctx) }()
	return w, nil
}

// TestCredentialDiesWithItsPod force-deletes a pod that never revoked its
// credential and waits until the API server refuses the minted token; the
// credential of a pod that stays is untouched.
func TestCredentialDiesWithItsPod(t *testing.T) {
	lb := sharedBroker(t)
	ctx := context.Background()
	doomed, doomedTok := newPod(t, lb, "team-a", "app", map[string]string{"app": "web"})
	_, keptTok := newPod(t, lb, "team-a", "app", map[string]string{"app": "web"})
	doomedClient, doomedID := issueAndUse(t, lb, doomedTok)
	keptClient, keptID := issueAndUse(t, lb, keptTok)

	zero := int64(0)
	err := lb.stack.Admin.CoreV1().Pods(doomed.Namespace).Delete(ctx, doomed.Name,
		metav1.DeleteOptions{GracePeriodSeconds: &zero})
	if err != nil {
		t.Fatalf("delete pod: %v", err)
	}
	// The API server caches a successful authentication for about 10 s.
	err = poll(60*time.Second, func() error {
		err := listPods("team-a")(ctx, doomedClient)
		if apierrors.IsUnauthorized(err) {
			return nil
		}
		return errStillThere
	})
	if err != nil {
		t.Errorf("the credential of the deleted pod still works: %v", err)
	}
	var line map[string]any
	_ = poll(10*time.Second, func() error { // written once Vault has answered
		if line = podRevocationLine(lb, string(doomed.UID)); line == nil {
			return errStillThere
		}
		return nil
	})
	if line == nil || line["leases"] != 1.0 || line["failed"] != 0.0 || line["level"] != "INFO" {
		t.Errorf("revocation log line = %v, want one at Info with 1 lease revoked", line)
	}
	ev, ok := lb.revocationFor(t, doomedID)
	if !ok || ev.Reason != "pod deleted" || ev.Caller.PodUID != string(doomed.UID) ||
		ev.Caller.Pod != doomed.Name || ev.Caller.ServiceAccount != "app" || ev.Role != "pod-reader" {
		t.Errorf("audit line of the pod's revocation = %+v, %v; want credential.revoked, pod deleted",
			ev, ok)
	}

	if err := listPods("team-a")(ctx, keptClient); err != nil {
		t.Errorf("the credential of the pod that stays died: %v", err)
	}
	if _, err := lb.client.RevokeCredential(bearer(keptTok),
		&lanyardv1.RevokeCredentialRequest{Id: keptID}); err != nil {
		t.Errorf("revoke the kept credential: %v", err)
	}
}

// issueAndUse issues a pod-reader credential with token and checks that it
// works; it returns a client that uses it and its id.
func issueAndUse(t *testing.T, lb *liveBroker, token string) (kubernetes.Interface, string) {
	t.Helper()
	resp, err := lb.client.IssueCredential(bearer(token), &lanyardv1.IssueCredentialRequest{Role: "pod-reader"})
	if err != nil {
		t.Fatalf("IssueCredential: %v", err)
	}
	cred := resp.GetCredential()
	rememberSecret(cred.GetToken())
	client, err := lb.stack.ClientForToken(cred.GetToken())
	if err != nil {
		t.Fatal(err)
	}
	if err := listPods("team-a")(context.Background(), client); err != nil {
		t.Fatalf("fresh credential: %v", err)
	}
	return client, cred.GetId()
}

// revocationFor returns the credential.revoked audit line of the
// credential with id.
func (lb *liveBroker) revocationFor(t *testing.T, id string) (audit.Event, bool) {
	t.Helper()
	tb := &testBroker{audit: lb.audit}
	for _, ev := range tb.auditEvents(t) {
		if ev.Event == audit.CredentialRevoked && ev.CredentialID == id {
			return ev, true
		}
	}
	return audit.Event{}, false
}

// podRevocationLine returns the broker's log line about revoking the
// leases of the pod with uid, or nil.
func podRevocationLine(lb *liveBroker, uid string) map[string]any {
	for _, raw := range strings.Split(lb.logs.String(), "\n") {
		var line map[string]any
		if err := json.Unmarshal([]byte(raw), &line); err != nil {
			continue
		}
		msg, _ := line["msg"].(string)
		if line["pod_uid"] == uid && strings.HasPrefix(msg, "Credentials of a deleted pod") {
			return line
		}
	}
	return nil
}

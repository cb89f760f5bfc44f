//go:build integration

package brokertest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/broker/audit"
	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
	"github.com/lanyard-dev/lanyard/test/brokertest"
	"github.com/lanyard-dev/lanyard/test/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m, harness.Options{})) }

func TestBrokerIssuesDeniesAndRevokesAcrossARestart(t *testing.T) {
	s := harness.Shared(t)
	const ns = "brokertest"
	b := brokertest.Start(t, s, brokertest.Options{Catalog: brokertest.Catalog(ns, "app")})
	caller := b.NewCaller(t, ns, "app", "app", nil)
	proxy := brokertest.StartProxy(t, b.Addr)
	client := dial(t, proxy.Addr, b.CAFile)
	ctx := withToken(t, caller.TokenFile)

	resp, err := client.IssueCredential(ctx,
		&lanyardv1.IssueCredentialRequest{Role: brokertest.RolePodReader})
	if err != nil {
		t.Fatalf("IssueCredential(%s): %v", brokertest.RolePodReader, err)
	}
	cred := resp.GetCredential()
	b.Remember(cred.GetToken())
	minted, err := s.ClientForToken(cred.GetToken())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := minted.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("the credential cannot list pods in %s: %v", ns, err)
	}

	_, err = client.IssueCredential(ctx, &lanyardv1.IssueCredentialRequest{Role: brokertest.RoleDenied})
	want := "service account " + ns + "/app is not a subject of role " + brokertest.RoleDenied
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), want) {
		t.Errorf("IssueCredential(%s) = %v, want PermissionDenied saying %q", brokertest.RoleDenied,
			err, want)
	}

	b.Stop(t)
	if _, err := client.ListRoles(ctx, &lanyardv1.ListRolesRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("ListRoles on a stopped broker = %v, want Unavailable", err)
	}
	b.Start(t)
	if err := revokeSoon(ctx, client, cred.GetId()); err != nil {
		t.Fatalf("revoke after a restart: %v", err)
	}
	if proxy.Connections() < 2 {
		t.Errorf("the proxy counted %d connections, want one before and one after the restart",
			proxy.Connections())
	}
	assertEvents(t, b.Audit(t), audit.CredentialIssued, audit.CredentialDenied,
		audit.CredentialRevoked)
	if !strings.Contains(b.Logs(), `"msg":"Broker serving"`) {
		t.Errorf("the broker's log lacks its start:\n%s", b.Logs())
	}
	if where := b.Leaked(); where != "" {
		t.Error(where)
	}
}

// revokeSoon retries while the client reconnects to the restarted broker.
func revokeSoon(ctx context.Context, c lanyardv1.BrokerClient, id string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.RevokeCredential(ctx, &lanyardv1.RevokeCredentialRequest{Id: id})
		if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// assertEvents checks that the credential events of the audit log are want,
// in order.
func assertEvents(t *testing.T, events []audit.Event, want ...string) {
	t.Helper()
	var got []string
	for _, e := range events {
		if strings.HasPrefix(e.Event, "credential.") {
			got = append(got, e.Event)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("audit credential events = %v, want %v", got, want)
	}
}

func dial(t *testing.T, addr, caFile string) lanyardv1.BrokerClient {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(
		&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return lanyardv1.NewBrokerClient(conn)
}

func withToken(t *testing.T, tokenFile string) context.Context {
	t.Helper()
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization",
		"Bearer "+string(token))
}

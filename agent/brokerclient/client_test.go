package brokerclient

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lanyard-dev/lanyard/agent/agenttest/fakebroker"
	"github.com/lanyard-dev/lanyard/agent/renew"
	"github.com/lanyard-dev/lanyard/broker/issuer"
)

const callerToken = "caller-token-secret"

func writeToken(t *testing.T, path, token string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func setup(t *testing.T) (*fakebroker.Broker, Options) {
	t.Helper()
	b := &fakebroker.Broker{}
	b.SetCallerToken(callerToken)
	ep := fakebroker.Start(t, b)
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeToken(t, tokenFile, callerToken)
	return b, Options{Addr: ep.Addr, CAFile: ep.CAFile, ServerName: ep.ServerName,
		TokenFile: tokenFile, Role: "pod-reader", TTL: 20 * time.Minute}
}

func TestIssueAndRevokeOverTLS(t *testing.T) {
	b, opts := setup(t)
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cred, err := c.Issue(context.Background())
	if err != nil {
		t.Fatalf("Issue() = %v", err)
	}
	if cred.Token.Reveal() != "token-1" || cred.Lifetime() != 20*time.Minute || cred.Role != "pod-reader" {
		t.Errorf("Issue() = %+v, lifetime %v", cred, cred.Lifetime())
	}
	if err := c.Revoke(context.Background(), cred.ID); err != nil {
		t.Fatalf("Revoke() = %v", err)
	}
	calls := b.Calls()
	if len(calls) != 2 || calls[1].Method != "RevokeCredential" || calls[1].ID != "cred-1" {
		t.Errorf("broker saw %+v", calls)
	}
}

func TestTheCallerTokenIsReadOnEveryCall(t *testing.T) {
	b, opts := setup(t)
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Issue(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.SetCallerToken("rotated-by-the-kubelet")
	_, err = c.Issue(context.Background())
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Issue() with the old token = %v, want Unauthenticated", err)
	}
	if class, _ := renew.Classify(err); class != renew.Transient {
		t.Errorf("a refused caller token is %v, want transient", class)
	}
	writeToken(t, opts.TokenFile, "rotated-by-the-kubelet")
	if _, err := c.Issue(context.Background()); err != nil {
		t.Fatalf("Issue() after the rotation = %v", err)
	}
}

func TestErrorsSayWhatIsWrong(t *testing.T) {
	otherCA := filepath.Join(t.TempDir(), "other-ca.crt")
	cases := []struct {
		name  string
		edit  func(*Options, *fakebroker.Broker)
		atNew bool
		want  []string
	}{
		{"a missing token file is named, never read out", func(o *Options, _ *fakebroker.Broker) {
			o.TokenFile = "/nonexistent/lanyard/token"
		}, false, []string{"read caller token file", "/nonexistent/lanyard/token"}},
		{"an empty token file is named", func(o *Options, _ *fakebroker.Broker) {
			writeToken(t, o.TokenFile, "")
		}, false, []string{"is empty"}},
		{"an unreadable CA file is named", func(o *Options, _ *fakebroker.Broker) {
			o.CAFile = "/nonexistent/ca.crt"
		}, true, []string{"read broker CA file", "/nonexistent/ca.crt"}},
		{"a CA file without certificates is named", func(o *Options, _ *fakebroker.Broker) {
			o.CAFile = o.TokenFile
		}, true, []string{"holds no PEM certificate"}},
		{"an address without a port is refused", func(o *Options, _ *fakebroker.Broker) {
			o.Addr = "broker.lanyard.svc"
		}, true, []string{"bad broker address", "host:port"}},
		{"an address with a bad port is refused", func(o *Options, _ *fakebroker.Broker) {
			o.Addr = "broker:https"
		}, true, []string{"bad broker address"}},
		{"a broker signed by another CA is an unknown authority", func(o *Options, _ *fakebroker.Broker) {
			writeCA(t, otherCA)
			o.CAFile = otherCA
		}, false, []string{"tls: unknown authority", "--broker-ca-file"}},
		{"a broker certificate for another name is a name mismatch", func(o *Options, _ *fakebroker.Broker) {
			o.ServerName = "broker.example"
		}, false, []string{"tls: name mismatch", `"broker.example"`}},
		{"a closed port is a connection failure", func(o *Options, b *fakebroker.Broker) {
			b.Stop()
		}, false, []string{"cannot connect to", "connection refused"}},
		{"a refusal carries the broker's code and reason", func(_ *Options, b *fakebroker.Broker) {
			b.SetIssueError(status.Error(codes.PermissionDenied,
				"service account team-a/app is not a subject of role db-admin"))
		}, false, []string{"broker refused (PermissionDenied)", "not a subject of role db-admin"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, opts := setup(t)
			tc.edit(&opts, b)
			err := issueOnce(opts)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), callerToken) {
				t.Errorf("error leaks the caller token: %v", err)
			}
		})
	}
}

// writeCA writes the CA of a fresh fake broker to path.
func writeCA(t *testing.T, path string) {
	t.Helper()
	ep := fakebroker.Start(t, &fakebroker.Broker{})
	pem, err := os.ReadFile(ep.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem, 0o600); err != nil {
		t.Fatal(err)
	}
}

func issueOnce(opts Options) error {
	c, err := New(opts)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Issue(context.Background())
	return err
}

func TestUnavailableKeepsItsCode(t *testing.T) {
	b, opts := setup(t)
	b.Stop()
	err := issueOnce(opts)
	var ce *CallError
	if !errors.As(err, &ce) || status.Code(err) != codes.Unavailable {
		t.Fatalf("error %v: want a CallError with code Unavailable", err)
	}
}

func TestMutualTLS(t *testing.T) {
	b := &fakebroker.Broker{RequireClientCert: true}
	b.SetCallerToken(callerToken)
	ep := fakebroker.Start(t, b)
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeToken(t, tokenFile, callerToken)
	opts := Options{Addr: ep.Addr, CAFile: ep.CAFile, TokenFile: tokenFile, Role: "r",
		Namespace: "team-a"}

	err := issueOnce(opts)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("without a client certificate: %v, want Unavailable naming the certificate", err)
	}
	opts.CertFile, opts.KeyFile = ep.ClientCertFile, ep.ClientKeyFile
	if err := issueOnce(opts); err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}
	if calls := b.Calls(); calls[len(calls)-1].Namespace != "team-a" {
		t.Errorf("the broker saw namespace %q, want team-a", calls[len(calls)-1].Namespace)
	}
	opts.KeyFile = ""
	if _, err := New(opts); err == nil || !strings.Contains(err.Error(), "go together") {
		t.Errorf("a certificate without a key: %v", err)
	}
}

// The broker does not cut its Vault call short when the caller leaves (Vault
// may mint anyway), so an agent that gives up first costs a mint and a revoke
// for nothing.
func TestTheAgentWaitsLongerThanTheBrokersVaultCall(t *testing.T) {
	// Room for the TokenReview and a wait for a free Vault slot before the call.
	const margin = 20 * time.Second
	if DefaultCallTimeout < issuer.DefaultTimeout+margin {
		t.Errorf("DefaultCallTimeout = %v, want at least the broker's Vault timeout %v and %v more",
			DefaultCallTimeout, issuer.DefaultTimeout, margin)
	}
}

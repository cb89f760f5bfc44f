// Package fakebroker serves a fake lanyard broker over real gRPC with TLS, for
// tests of the agent. It checks the caller's bearer token, mints credentials
// through a replaceable function and records every call.
package fakebroker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
	"github.com/lanyard-dev/lanyard/test/harness"
)

// Endpoint is what an agent needs to reach a broker. Tests written against
// an Endpoint run unchanged against a real broker.
type Endpoint struct {
	// Addr is host:port.
	Addr string
	// CAFile holds the PEM CA of the broker's serving certificate.
	CAFile string
	// ServerName is the name to check in the certificate; empty means the
	// host of Addr.
	ServerName string
	// ClientCertFile and ClientKeyFile hold a client certificate the broker
	// accepts, for mTLS.
	ClientCertFile, ClientKeyFile string
}

// MintFunc returns the credential for an authorised issue request; n counts
// the issues from 1. A returned error should be a gRPC status error.
type MintFunc func(
	ctx context.Context,
	n int,
	req *lanyardv1.IssueCredentialRequest,
) (*lanyardv1.Credential, error)

// RevokeFunc runs for every authorised revoke request before it is recorded.
type RevokeFunc func(ctx context.Context, id string) error

// Call is one recorded call.
type Call struct {
	Method    string // "IssueCredential" or "RevokeCredential"
	Role      string // of an issue
	Namespace string // of an issue
	ID        string // of a revoke, or of the credential issued
	Code      codes.Code
}

// Broker is the fake. Set its fields before Start; use the setters after.
type Broker struct {
	lanyardv1.UnimplementedBrokerServer

	// Mint defaults to DefaultMint.
	Mint MintFunc
	// Revoke is optional.
	Revoke RevokeFunc
	// RequireClientCert makes the broker demand a client certificate signed
	// by its CA (mTLS).
	RequireClientCert bool

	mu          sync.Mutex
	callerToken string
	issueErr    error
	issues      int
	calls       []Call
	srv         *grpc.Server
	addr        string
	creds       credentials.TransportCredentials
}

// DefaultMint returns credentials whose fields carry the issue number n
// ("token-n", "ns-n", "cred-n"), valid for the request's ttl or ten minutes
// from now.
func DefaultMint(now func() time.Time, apiServer string, caPEM []byte) MintFunc {
	return func(_ context.Context, n int, req *lanyardv1.IssueCredentialRequest) (*lanyardv1.Credential, error) {
		ttl := 10 * time.Minute
		if req.GetTtl() != nil {
			ttl = req.GetTtl().AsDuration()
		}
		issued := now()
		return &lanyardv1.Credential{
			Id: fmt.Sprintf("cred-%d", n), Token: fmt.Sprintf("token-%d", n),
			Namespace: fmt.Sprintf("ns-%d", n), ServiceAccount: "minted", Role: req.GetRole(),
			ApiServer: apiServer, CaCert: caPEM,
			IssuedAt: timestamppb.New(issued), ExpiresAt: timestamppb.New(issued.Add(ttl)),
		}, nil
	}
}

// SetCallerToken sets the bearer token calls must carry.
func (b *Broker) SetCallerToken(token string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.callerToken = token
}

// SetIssueError makes IssueCredential fail with err until it is set to nil.
func (b *Broker) SetIssueError(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.issueErr = err
}

// Calls returns the calls so far.
func (b *Broker) Calls() []Call {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Call(nil), b.calls...)
}

// Count returns how many calls of method were made.
func (b *Broker) Count(method string) int {
	n := 0
	for _, c := range b.Calls() {
		if c.Method == method {
			n++
		}
	}
	return n
}

func (b *Broker) record(c Call) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, c)
}

// authenticate checks the bearer token as the real broker would, with a
// generic message.
func (b *Broker) authenticate(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	b.mu.Lock()
	want := b.callerToken
	b.mu.Unlock()
	if got := md.Get("authorization"); len(got) != 1 || want == "" || got[0] != "Bearer "+want {
		return status.Error(codes.Unauthenticated, "caller token refused")
	}
	return nil
}

// IssueCredential mints with Mint after checking the caller.
func (b *Broker) IssueCredential(
	ctx context.Context,
	req *lanyardv1.IssueCredentialRequest,
) (*lanyardv1.IssueCredentialResponse, error) {
	call := Call{Method: "IssueCredential", Role: req.GetRole(), Namespace: req.GetNamespace()}
	cred, err := b.issue(ctx, req)
	call.Code = status.Code(err)
	if cred != nil {
		call.ID = cred.GetId()
	}
	b.record(call)
	if err != nil {
		return nil, err
	}
	return &lanyardv1.IssueCredentialResponse{Credential: cred}, nil
}

func (b *Broker) issue(
	ctx context.Context,
	req *lanyardv1.IssueCredentialRequest,
) (*lanyardv1.Credential, error) {
	if err := b.authenticate(ctx); err != nil {
		return nil, err
	}
	b.mu.Lock()
	failure := b.issueErr
	if failure == nil {
		b.issues++
	}
	n := b.issues
	b.mu.Unlock()
	if failure != nil {
		return nil, failure
	}
	return b.Mint(ctx, n, req)
}

// RevokeCredential runs Revoke after checking the caller.
func (b *Broker) RevokeCredential(
	ctx context.Context,
	req *lanyardv1.RevokeCredentialRequest,
) (*lanyardv1.RevokeCredentialResponse, error) {
	err := b.authenticate(ctx)
	if err == nil && b.Revoke != nil {
		err = b.Revoke(ctx, req.GetId())
	}
	b.record(Call{Method: "RevokeCredential", ID: req.GetId(), Code: status.Code(err)})
	if err != nil {
		return nil, err
	}
	return &lanyardv1.RevokeCredentialResponse{}, nil
}

// Start serves b on a loopback port with a certificate for "localhost" and
// 127.0.0.1 signed by a new CA, written to a file of the test's with a client
// certificate of the same CA. It stops when the test ends.
func Start(t testing.TB, b *Broker) Endpoint {
	t.Helper()
	ca, err := harness.NewCA("fake-broker-ca")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("fake-broker", []string{"localhost"},
		[]net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ep := Endpoint{CAFile: filepath.Join(dir, "broker-ca.crt"),
		ClientCertFile: filepath.Join(dir, "client.crt"), ClientKeyFile: filepath.Join(dir, "client.key")}
	if err := os.WriteFile(ep.CAFile, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ca.IssueFiles(ep.ClientCertFile, ep.ClientKeyFile, "agent", nil, nil); err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if b.RequireClientCert {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = x509.NewCertPool()
		cfg.ClientCAs.AddCert(ca.Cert)
	}
	b.creds = credentials.NewTLS(cfg)
	if b.Mint == nil {
		b.Mint = DefaultMint(time.Now, "https://127.0.0.1:6443", ca.CertPEM)
	}
	if err := b.listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	ep.Addr = b.Address()
	return ep
}

// Address returns host:port of the listener.
func (b *Broker) Address() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addr
}

func (b *Broker) listen(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("fake broker listen: %w", err)
	}
	srv := grpc.NewServer(grpc.Creds(b.creds))
	lanyardv1.RegisterBrokerServer(srv, b)
	b.mu.Lock()
	b.srv, b.addr = srv, l.Addr().String()
	b.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
	return nil
}

// Stop closes the listener and every connection, as a crashed broker would.
func (b *Broker) Stop() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// Restart serves again on the address of the last Start.
func (b *Broker) Restart() error {
	b.Stop()
	return b.listen(b.Address())
}

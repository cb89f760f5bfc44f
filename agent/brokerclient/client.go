// Package brokerclient calls the lanyard broker over gRPC with TLS,
// authenticating with the pod's projected service account token.
package brokerclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/lanyard-dev/lanyard/agent/credential"
	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

// DefaultCallTimeout bounds an issue call. Vault may queue mints for many
// seconds under load, and the broker gives its Vault call up to 60 s once it
// is sent: an agent that gave up sooner would have the broker mint and then
// revoke a credential for nobody, and retry into the same queue. So the agent
// waits longer than the broker's Vault timeout, with room for the wait for a
// free Vault slot and the TokenReview.
const DefaultCallTimeout = 90 * time.Second

// Options configure a Client.
type Options struct {
	// Addr is the broker's host:port.
	Addr string
	// CAFile holds the PEM CAs that sign the broker's certificate; empty
	// means the system's roots.
	CAFile string
	// CertFile and KeyFile hold an optional client certificate for mTLS.
	CertFile, KeyFile string
	// ServerName overrides the name checked in the broker's certificate.
	ServerName string
	// TokenFile holds the caller's projected token; it is read on every call
	// because the kubelet rotates it.
	TokenFile string
	// Role, TTL and Namespace are the issue request; zero TTL and empty
	// namespace leave the choice to the role.
	Role      string
	TTL       time.Duration
	Namespace string
	// CallTimeout bounds each issue call; DefaultCallTimeout when zero.
	CallTimeout time.Duration
}

// Client issues and revokes credentials. It is safe for concurrent use.
type Client struct {
	opts Options
	tls  *tls.Config
	conn *grpc.ClientConn
	api  lanyardv1.BrokerClient
}

// New checks the options and prepares a connection; it does not dial, so a
// broker that is down does not fail it.
func New(opts Options) (*Client, error) {
	if err := checkAddr(opts.Addr); err != nil {
		return nil, err
	}
	if opts.Role == "" {
		return nil, errors.New("--role is required")
	}
	cfg, err := tlsConfig(opts)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(opts.Addr,
		grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
		grpc.WithConnectParams(grpc.ConnectParams{
			// The agent paces its own retries; keep gRPC's reconnects from
			// adding minutes on top once the broker is back.
			Backoff: backoff.Config{
				BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 10 * time.Second,
			},
			MinConnectTimeout: 10 * time.Second,
		}))
	if err != nil {
		return nil, fmt.Errorf("broker address %q: %w", opts.Addr, err)
	}
	return &Client{opts: opts, tls: cfg, conn: conn, api: lanyardv1.NewBrokerClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// checkAddr accepts host:port with a port number.
func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err == nil {
		n, perr := strconv.Atoi(port)
		if perr != nil || n < 1 || n > 65535 {
			err = fmt.Errorf("port %q is not a number from 1 to 65535", port)
		} else if host == "" {
			err = errors.New("host is empty")
		}
	}
	if err != nil {
		return fmt.Errorf("bad broker address %q (want host:port): %w", addr, err)
	}
	return nil
}

func tlsConfig(opts Options) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: opts.ServerName}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read broker CA file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("broker CA file %s holds no PEM certificate", opts.CAFile)
		}
	}
	if (opts.CertFile == "") != (opts.KeyFile == "") {
		return nil, errors.New("--client-cert-file and --client-key-file go together")
	}
	if opts.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(opts.CertFile, opts.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate %s: %w", opts.CertFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Issue asks the broker for a new credential.
func (c *Client) Issue(ctx context.Context) (credential.Credential, error) {
	ctx, err := c.authorize(ctx)
	if err != nil {
		return credential.Credential{}, err
	}
	timeout := c.opts.CallTimeout
	if timeout <= 0 {
		timeout = DefaultCallTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req := &lanyardv1.IssueCredentialRequest{Role: c.opts.Role, Namespace: c.opts.Namespace}
	if c.opts.TTL > 0 {
		req.Ttl = durationpb.New(c.opts.TTL)
	}
	resp, err := c.api.IssueCredential(ctx, req)
	if err != nil {
		return credential.Credential{}, c.callError(ctx, "issue credential for role "+c.opts.Role, err)
	}
	return credential.FromProto(resp.GetCredential(), time.Now())
}

// Revoke asks the broker to revoke the credential id.
func (c *Client) Revoke(ctx context.Context, id string) error {
	ctx, err := c.authorize(ctx)
	if err != nil {
		return err
	}
	if _, err := c.api.RevokeCredential(ctx, &lanyardv1.RevokeCredentialRequest{Id: id}); err != nil {
		return c.callError(ctx, "revoke credential "+id, err)
	}
	return nil
}

// hostPort is the address for the pre-flight TLS check.
func (c *Client) hostPort() string { return strings.TrimPrefix(c.opts.Addr, "dns:///") }

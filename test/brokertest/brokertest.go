// Package brokertest runs the real lanyard broker against a test stack, for
// integration tests of its clients (the agent, the injector, the demo).
//
// Start gives the broker the identity a deployment gives it, and no more: a
// service account in lanyard-system that may create TokenReviews and get pods
// and namespaces, a Vault policy from issuer.Policy and a Vault Kubernetes
// auth role bound to that account. It then runs server.Run, the function
// behind `lanyard-broker serve`, in-process with files for everything: a TLS
// key pair from a CA of its own, the catalog, the audit log, a kubeconfig and
// the Vault login token of the broker's account, and a credential key, so
// that a broker started again can revoke what it issued before.
package brokertest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lanyard-dev/lanyard/broker/issuer"
	"github.com/lanyard-dev/lanyard/broker/server"
	"github.com/lanyard-dev/lanyard/test/harness"
)

// Audience is the audience the broker requires of caller tokens.
const Audience = "lanyard"

// Timeouts of the broker's lifecycle, in real time.
const (
	readyTimeout = 90 * time.Second
	stopTimeout  = 30 * time.Second
)

// Options tune a broker. Only Catalog is required.
type Options struct {
	// Catalog is the role catalog in YAML; see Catalog for the usual one.
	Catalog string
	// RateLimit and RateLimitBurst pace Vault calls per pod; zero means the
	// defaults of `lanyard-broker serve` (1/s, burst 5).
	RateLimit      float64
	RateLimitBurst int
	// KeepCredentialsOfDeletedPods turns off --revoke-on-pod-delete, which
	// is on by default as in `lanyard-broker serve`.
	KeepCredentialsOfDeletedPods bool
}

// Broker is a real broker serving on loopback. Its fields do not change
// across Stop and Start.
type Broker struct {
	// Addr is the host:port of the gRPC API over TLS; its certificate holds
	// 127.0.0.1 and localhost.
	Addr string
	// CAFile holds the PEM CA that signed the broker's certificate. It is
	// not the API server's CA.
	CAFile string
	// CatalogFile is the watched catalog: rewrite it to reload.
	CatalogFile string
	// AuditFile is the audit log, kept across restarts.
	AuditFile string
	// HealthURL is the base URL of /healthz and /readyz.
	HealthURL string

	stack   *harness.Stack
	opts    server.Options
	logs    *syncBuffer
	secrets *secrets

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan error
}

// Start sets up the broker's identity in s, starts the broker with o and
// waits until it is ready. The broker stops when the test ends; then the test
// fails if any token that Remember or NewCaller recorded appears in the
// broker's logs or audit log.
func Start(t testing.TB, s *harness.Stack, o Options) *Broker {
	t.Helper()
	if s.VaultAddr == "" {
		t.Fatal("brokertest: the stack has no Vault (harness.Options.SkipVault)")
	}
	if o.Catalog == "" {
		t.Fatal("brokertest: Options.Catalog is empty")
	}
	ctx := context.Background()
	if err := grantIdentity(ctx, s); err != nil {
		t.Fatalf("brokertest: broker identity: %v", err)
	}
	if err := configureVault(ctx, s); err != nil {
		t.Fatalf("brokertest: Vault for the broker: %v", err)
	}
	b := &Broker{stack: s, logs: &syncBuffer{}, secrets: &secrets{}}
	b.secrets.remember(s.VaultRootToken)
	if err := b.prepare(ctx, t.TempDir(), o); err != nil {
		t.Fatalf("brokertest: %v", err)
	}
	t.Cleanup(func() { b.checkNoSecrets(t) })
	t.Cleanup(func() { b.Stop(t) })
	b.Start(t)
	return b
}

// prepare writes the broker's files into dir and fills in its options.
func (b *Broker) prepare(ctx context.Context, dir string, o Options) error {
	jwtFile := filepath.Join(dir, "broker-token")
	if err := b.writeBrokerToken(ctx, jwtFile); err != nil {
		return err
	}
	kubeconfig := filepath.Join(dir, "broker.kubeconfig")
	cfg := harness.Kubeconfig(b.stack.APIServerURL, b.stack.CAPath(), jwtFile, "")
	if err := os.WriteFile(kubeconfig, cfg, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	tlsCert, tlsKey, err := b.writeTLS(dir)
	if err != nil {
		return err
	}
	keyFile, err := writeCredentialKey(dir)
	if err != nil {
		return err
	}
	b.CatalogFile = filepath.Join(dir, "catalog.yaml")
	if err := os.WriteFile(b.CatalogFile, []byte(o.Catalog), 0o600); err != nil {
		return fmt.Errorf("write catalog: %w", err)
	}
	b.AuditFile = filepath.Join(dir, "audit.log")
	addrs, err := freeAddrs(3)
	if err != nil {
		return err
	}
	b.Addr, b.HealthURL = addrs[0], "http://"+addrs[1]
	b.opts = server.Options{
		Listen: addrs[0], TLSCertFile: tlsCert, TLSKeyFile: tlsKey,
		CatalogFile: b.CatalogFile, Audience: Audience, TokenValidation: server.ValidationTokenReview,
		Kubeconfig: kubeconfig,
		Vault: issuer.Config{Addr: b.stack.VaultAddr, Mount: b.stack.VaultMount,
			Auth: issuer.AuthKubernetes, AuthMount: b.stack.VaultAuthMount, Role: VaultAuthRole,
			JWTFile: jwtFile},
		HealthAddr: addrs[1], MetricsAddr: addrs[2], AuditLog: b.AuditFile,
		CredentialKeyFile: keyFile, RateLimit: valueOr(o.RateLimit, 1),
		RateLimitBurst: valueOr(o.RateLimitBurst, 5), ShutdownTimeout: 5 * time.Second,
		RevokeOnPodDelete: !o.KeepCredentialsOfDeletedPods,
	}
	return nil
}

// writeBrokerToken mints the broker's own service account token, as the
// chart projects it, for its Kubernetes client and its Vault login.
func (b *Broker) writeBrokerToken(ctx context.Context, path string) error {
	jwt, err := b.stack.ServiceAccountToken(ctx, Namespace, ServiceAccount, nil, 2*time.Hour)
	if err != nil {
		return err
	}
	b.secrets.remember(jwt)
	if err := os.WriteFile(path, []byte(jwt), 0o600); err != nil {
		return fmt.Errorf("write broker token: %w", err)
	}
	return nil
}

// writeTLS creates the broker's CA and serving key pair.
func (b *Broker) writeTLS(dir string) (certFile, keyFile string, err error) {
	ca, err := harness.NewCA("lanyard-broker-test-ca")
	if err != nil {
		return "", "", err
	}
	b.CAFile = filepath.Join(dir, "broker-ca.crt")
	if err := os.WriteFile(b.CAFile, ca.CertPEM, 0o600); err != nil {
		return "", "", fmt.Errorf("write broker CA: %w", err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	err = ca.IssueFiles(certFile, keyFile, "lanyard-broker", []string{"localhost"},
		[]net.IP{net.IPv4(127, 0, 0, 1)})
	return certFile, keyFile, err
}

// writeCredentialKey writes a random key shared by every run of the broker.
func writeCredentialKey(dir string) (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("credential key: %w", err)
	}
	path := filepath.Join(dir, "credential-key")
	enc := base64.StdEncoding.EncodeToString(key)
	if err := os.WriteFile(path, []byte(enc), 0o600); err != nil {
		return "", fmt.Errorf("write credential key: %w", err)
	}
	return path, nil
}

// Start runs the broker again after Stop, on the same addresses, and waits
// until it reports ready. Calling it on a running broker fails the test.
func (b *Broker) Start(t testing.TB) {
	t.Helper()
	b.mu.Lock()
	if b.cancel != nil {
		b.mu.Unlock()
		t.Fatal("brokertest: Start on a running broker")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.cancel, b.done = cancel, done
	b.mu.Unlock()
	logger := slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() { done <- server.Run(ctx, b.opts, logger) }()
	if err := b.waitReady(done); err != nil {
		b.Stop(t)
		t.Fatalf("brokertest: broker not ready: %v\nbroker log:\n%s", err, b.Logs())
	}
}

// waitReady polls /readyz until it answers 200, Run fails, or readyTimeout
// passes. An error of Run is put back into done for Stop.
func (b *Broker) waitReady(done chan error) error {
	deadline := time.Now().Add(readyTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		err := getOK(client, b.HealthURL+"/readyz")
		if err == nil {
			return nil
		}
		select {
		case runErr := <-done:
			done <- runErr
			if runErr == nil {
				runErr = errors.New("returned nil")
			}
			return fmt.Errorf("server.Run stopped: %w", runErr)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", readyTimeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop stops the broker as a SIGTERM would and waits for it, so that
// connections are refused until Start. Stopping a stopped broker does
// nothing.
func (b *Broker) Stop(t testing.TB) {
	t.Helper()
	b.mu.Lock()
	cancel, done := b.cancel, b.done
	b.cancel, b.done = nil, nil
	b.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("brokertest: broker stopped with %v", err)
		}
	case <-time.After(stopTimeout):
		t.Errorf("brokertest: broker still running %s after Stop", stopTimeout)
	}
}

// Logs returns everything the broker logged so far, at debug level, in JSON.
func (b *Broker) Logs() string { return b.logs.String() }

func getOK(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// freeAddrs returns n loopback addresses that were free a moment ago.
func freeAddrs(n int) ([]string, error) {
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		out = append(out, l.Addr().String())
		defer l.Close()
	}
	return out, nil
}

func valueOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

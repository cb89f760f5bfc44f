//go:build integration

package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/lanyard-dev/lanyard/broker/issuer"
	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

// TestRunServesTheBroker runs the broker exactly as `lanyard-broker serve`
// does, with files for everything, and stops it by cancelling its context.
func TestRunServesTheBroker(t *testing.T) {
	lb := sharedBroker(t) // creates the identity, Vault policy and fixtures
	s := lb.stack
	dir := t.TempDir()
	o := Options{
		Listen: freeAddr(t), TLSCertFile: filepath.Join(dir, "tls.crt"),
		TLSKeyFile: filepath.Join(dir, "tls.key"), CatalogFile: filepath.Join(dir, "catalog.yaml"),
		Audience: "lanyard", TokenValidation: ValidationTokenReview,
		Kubeconfig: filepath.Join(s.Dir, "lanyard-broker.kubeconfig"),
		Vault: issuer.Config{Addr: s.VaultAddr, Mount: s.VaultMount, Auth: issuer.AuthKubernetes,
			AuthMount: s.VaultAuthMount, Role: brokerAuthRole,
			JWTFile: filepath.Join(s.Dir, "lanyard-broker-vault-jwt")},
		HealthAddr: freeAddr(t), MetricsAddr: freeAddr(t), AuditLog: filepath.Join(dir, "audit.log"),
		RateLimit: 1, RateLimitBurst: 5, ShutdownTimeout: 5 * time.Second,
		RevokeOnPodDelete: true,
	}
	if err := s.CA.IssueFiles(o.TLSCertFile, o.TLSKeyFile, "broker", nil,
		[]net.IP{net.IPv4(127, 0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(o.CatalogFile, []byte(integrationCatalog), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logsMu.Lock()
	allLogs = append(allLogs, logs)
	logsMu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, o, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}()
	if err := poll(60*time.Second, func() error { return httpGet("http://" + o.HealthAddr + "/readyz") }); err != nil {
		cancel()
		t.Fatalf("never ready: %v\n%s", err, logs.String())
	}

	_, tok := newPod(t, lb, "team-a", "app", map[string]string{"app": "web"})
	client := tlsClient(t, o.Listen, s.CA.CertPEM)
	resp, err := client.IssueCredential(bearer(tok), &lanyardv1.IssueCredentialRequest{Role: "pod-reader"})
	if err != nil {
		t.Fatalf("IssueCredential: %v", err)
	}
	rememberSecret(resp.GetCredential().GetToken())
	if resp.GetCredential().GetApiServer() != s.APIServerURL {
		t.Errorf("api_server = %q, want the broker's own %q", resp.GetCredential().GetApiServer(), s.APIServerURL)
	}

	metrics := httpBody(t, "http://"+o.MetricsAddr+"/metrics")
	if !strings.Contains(metrics, `lanyard_broker_requests_total{code="OK",method="IssueCredential"} 1`) {
		t.Errorf("metrics lack the issued request:\n%s", metrics)
	}
	if !strings.Contains(metrics, `lanyard_broker_pod_revocations_total{result="revoked"} 0`) {
		t.Errorf("metrics lack the pod revocations counter:\n%s", metrics)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop")
	}
	auditLines, err := os.ReadFile(o.AuditLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, event := range []string{`"event":"catalog.loaded"`, `"event":"credential.issued"`} {
		if !strings.Contains(string(auditLines), event) {
			t.Errorf("audit log lacks %s:\n%s", event, auditLines)
		}
	}
	auditCopy := &syncBuffer{}
	_, _ = auditCopy.Write(auditLines)
	logsMu.Lock()
	allLogs = append(allLogs, auditCopy)
	logsMu.Unlock()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func httpGet(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return &httpError{code: resp.StatusCode, body: string(body)}
	}
	return nil
}

type httpError struct {
	code int
	body string
}

func (e *httpError) Error() string { return http.StatusText(e.code) + ": " + e.body }

func httpBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

func tlsClient(t *testing.T, addr string, caPEM []byte) lanyardv1.BrokerClient {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return lanyardv1.NewBrokerClient(conn)
}

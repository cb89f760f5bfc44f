package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/lanyard-dev/lanyard/test/harness"
)

func TestCheckInsecureAddress(t *testing.T) {
	cases := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8443", true},
		{"127.3.2.1:8443", true},
		{"[::1]:8443", true},
		{"localhost:8443", true},
		{":8443", false},
		{"0.0.0.0:8443", false},
		{"10.0.0.5:8443", false},
		{"[::]:8443", false},
		{"broker.example:8443", false},
		{"127.0.0.1", false},
	}
	for _, c := range cases {
		t.Run(c.addr, func(t *testing.T) {
			err := CheckInsecureAddress(c.addr)
			if (err == nil) != c.ok {
				t.Errorf("CheckInsecureAddress(%q) = %v, want ok=%v", c.addr, err, c.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "loopback") && c.addr != "127.0.0.1" {
				t.Errorf("error %q does not say why", err)
			}
		})
	}
}

// writePair issues a server certificate from ca into dir and returns its
// serial number.
func writePair(t *testing.T, ca *harness.CA, certFile, keyFile string, mod time.Time) string {
	t.Helper()
	if err := ca.IssueFiles(certFile, keyFile, "broker", []string{"localhost"},
		[]net.IP{net.IPv4(127, 0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{certFile, keyFile} {
		if err := os.Chtimes(f, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	return serialOf(t, certFile)
}

func serialOf(t *testing.T, certFile string) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certFile, strings.TrimSuffix(certFile, ".crt")+".key")
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String()
}

func TestCertReloaderPicksUpARenewedPair(t *testing.T) {
	ca, err := harness.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := writePair(t, ca, certFile, keyFile, time.Unix(1000, 0))
	r, err := NewCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatalf("NewCertReloader: %v", err)
	}
	if got := servedSerial(t, r); got != first {
		t.Fatalf("serial = %s, want %s", got, first)
	}
	second := writePair(t, ca, certFile, keyFile, time.Unix(2000, 0))
	if got := servedSerial(t, r); got != second {
		t.Errorf("after renewal serial = %s, want %s", got, second)
	}
	if err := os.WriteFile(certFile, []byte("half written"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, r); got != second {
		t.Errorf("after a broken write serial = %s, want the previous %s", got, second)
	}
}

func TestNewCertReloaderFailsOnMissingFiles(t *testing.T) {
	if _, err := NewCertReloader("/nonexistent.crt", "/nonexistent.key"); err == nil {
		t.Error("NewCertReloader accepted missing files")
	}
}

func servedSerial(t *testing.T, r *CertReloader) string {
	t.Helper()
	c, err := r.GetCertificate(nil)
	if err != nil {
		t.Fatalf("GetCertificate: %v", err)
	}
	x, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return x.SerialNumber.String()
}

func TestMutualTLSRequiresAClientCertificate(t *testing.T) {
	ca, err := harness.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writePair(t, ca, certFile, keyFile, time.Now())
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	certs, err := NewCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := TLSConfig(certs, caFile)
	if err != nil {
		t.Fatalf("TLSConfig: %v", err)
	}
	addr := serveHealthOnly(t, credentials.NewTLS(cfg))

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	clientPEM, clientKey, err := ca.Issue("agent", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(clientPEM, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	withCert := &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}
	if err := healthCheck(addr, withCert); err != nil {
		t.Errorf("client with a certificate: %v", err)
	}
	if err := healthCheck(addr, &tls.Config{RootCAs: pool}); err == nil {
		t.Error("client without a certificate was served")
	}
}

func serveHealthOnly(t *testing.T, creds credentials.TransportCredentials) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.Creds(creds))
	healthpb.RegisterHealthServer(g, health.NewServer())
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}

func healthCheck(addr string, cfg *tls.Config) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

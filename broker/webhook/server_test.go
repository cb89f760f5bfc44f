package webhook

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writePair writes a self-signed serving pair for 127.0.0.1 with the given serial and
// stamps both files with mod, so a test controls what the reloader sees.
func writePair(t *testing.T, dir string, serial int64, mod time.Time) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "webhook"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for file, block := range map[string]*pem.Block{
		certFile: {Type: "CERTIFICATE", Bytes: der},
		keyFile:  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(file, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

func TestServerReloadsItsCertificateWhenTheFilesChange(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, 1, time.Unix(1000, 0))
	certs, err := NewCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := NewServer(NewHandler(testInjector(t), slog.New(slog.DiscardHandler)), certs,
		slog.New(slog.DiscardHandler))
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	url := "https://" + ln.Addr().String() + "/healthz"
	if got := servedSerial(t, url); got != 1 {
		t.Fatalf("first serial = %d, want 1", got)
	}
	writePair(t, dir, 2, time.Unix(2000, 0))
	if got := servedSerial(t, url); got != 2 {
		t.Errorf("serial after rotation = %d, want 2", got)
	}
}

// servedSerial fetches url on a new connection and returns the server's serial.
func servedSerial(t *testing.T, url string) int64 {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the test reads the serial only
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("healthz = %d %q", resp.StatusCode, body)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
}

func TestFileCARefusesWhatIsNotACertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, 1, time.Unix(1000, 0))
	if _, err := FileCA(certFile)(); err != nil {
		t.Errorf("certificate refused: %v", err)
	}
	if _, err := FileCA(keyFile)(); err == nil {
		t.Error("a private key was accepted as the broker CA")
	}
	if _, err := FileCA(filepath.Join(dir, "missing"))(); err == nil {
		t.Error("a missing file was accepted")
	}
}

func TestFileCAKeepsTheLastGoodCAWhileTheFileIsBroken(t *testing.T) {
	dir := t.TempDir()
	certFile, _ := writePair(t, dir, 1, time.Unix(1000, 0))
	ca := FileCA(certFile)
	good, err := ca()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, []byte("half written"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ca()
	if err != nil || string(got) != string(good) {
		t.Errorf("after a broken write: %q, %v; want the last good CA", got, err)
	}
}

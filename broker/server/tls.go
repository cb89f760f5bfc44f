package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// CertReloader serves a TLS key pair from files and reloads it when either
// file's modification time changes, so that a renewed certificate (for
// example a cert-manager Secret update) is used without a restart.
type CertReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	certMod time.Time
	keyMod  time.Time
}

// NewCertReloader loads the key pair once and fails when it is unusable.
func NewCertReloader(certFile, keyFile string) (*CertReloader, error) {
	r := &CertReloader{certFile: certFile, keyFile: keyFile}
	if _, err := r.current(); err != nil {
		return nil, err
	}
	return r, nil
}

// GetCertificate is for tls.Config.GetCertificate. A failed reload keeps the
// previous pair: a half-written renewal must not take the server down.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.current()
}

func (r *CertReloader) current() (*tls.Certificate, error) {
	certMod, err1 := modTime(r.certFile)
	keyMod, err2 := modTime(r.keyFile)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := errors.Join(err1, err2); err != nil {
		if r.cert != nil {
			return r.cert, nil
		}
		return nil, err
	}
	if r.cert != nil && certMod.Equal(r.certMod) && keyMod.Equal(r.keyMod) {
		return r.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		if r.cert != nil {
			return r.cert, nil
		}
		return nil, fmt.Errorf("load tls key pair: %w", err)
	}
	r.cert, r.certMod, r.keyMod = &cert, certMod, keyMod
	return r.cert, nil
}

func modTime(path string) (time.Time, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}, fmt.Errorf("tls file: %w", err)
	}
	return fi.ModTime(), nil
}

// TLSConfig returns the server TLS configuration: the reloading key pair,
// and client-certificate verification against clientCAFile when it is set.
func TLSConfig(certs *CertReloader, clientCAFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate}
	if clientCAFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(clientCAFile) //nolint:gosec // G304: the operator's --client-ca-file
	if err != nil {
		return nil, fmt.Errorf("read client ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("client ca %s holds no PEM certificate", clientCAFile)
	}
	cfg.ClientCAs = pool
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	return cfg, nil
}

// CheckInsecureAddress refuses a plain-text listen address that is not on
// loopback: without TLS, caller tokens would cross the network in clear.
func CheckInsecureAddress(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--insecure-listen %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--insecure-listen %q: plain gRPC is allowed only on a loopback "+
		"address (127.0.0.1, ::1 or localhost), because caller tokens would cross the "+
		"network unencrypted; use --tls-cert-file and --tls-key-file", addr)
}

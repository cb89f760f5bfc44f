package webhook

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// fileStamp identifies one version of a file. Mounted Secrets change by a symlink
// swap, which os.Stat follows, so a new version shows as a new mtime or size.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stamp(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}, nil
}

// CertReloader serves a key pair from files and reads them again when they change.
type CertReloader struct {
	certFile, keyFile string

	mu     sync.Mutex
	stamps [2]fileStamp
	cert   *tls.Certificate
}

// NewCertReloader loads the pair once and fails when it cannot.
func NewCertReloader(certFile, keyFile string) (*CertReloader, error) {
	r := &CertReloader{certFile: certFile, keyFile: keyFile}
	if _, err := r.GetCertificate(nil); err != nil {
		return nil, err
	}
	return r, nil
}

// GetCertificate fits tls.Config.GetCertificate. When a reload fails (a half-written
// pair, say), it keeps serving the last good certificate.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cs, errC := stamp(r.certFile)
	ks, errK := stamp(r.keyFile)
	if r.cert != nil && (errC != nil || errK != nil || [2]fileStamp{cs, ks} == r.stamps) {
		return r.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		if r.cert != nil {
			return r.cert, nil
		}
		return nil, fmt.Errorf("load webhook key pair: %w", err)
	}
	r.cert, r.stamps = &cert, [2]fileStamp{cs, ks}
	return r.cert, nil
}

// FileCA returns a CASource reading a PEM file, again only when it changed. Once it has
// read a good CA it keeps returning it while the file is unreadable or invalid, as during a
// Secret update, so pods are not refused for a moment's inconsistency.
func FileCA(path string) CASource {
	var (
		mu   sync.Mutex
		last fileStamp
		pem  []byte
	)
	return func() ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		s, err := stamp(path)
		if err == nil && pem != nil && s == last {
			return pem, nil
		}
		data, err := readCA(path)
		if err != nil {
			if pem != nil {
				return pem, nil
			}
			return nil, err
		}
		pem, last = data, s
		return pem, nil
	}
}

func readCA(path string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Clean(path))
	if err != nil {
		return nil, fmt.Errorf("read broker CA: %w", err)
	}
	if err := checkPEM(data); err != nil {
		return nil, fmt.Errorf("broker CA %s: %w", path, err)
	}
	return data, nil
}

//go:build integration

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"k8s.io/client-go/tools/clientcmd"
)

// credentialSet is the files of one published set.
type credentialSet struct {
	token, ca, namespace, kubeconfig []byte
}

// readSet reads the files of the set directory dir.
func readSet(dir string) (credentialSet, error) {
	var s credentialSet
	for name, dst := range map[string]*[]byte{
		"token": &s.token, "ca.crt": &s.ca, "namespace": &s.namespace, "kubeconfig": &s.kubeconfig,
	} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return s, err
		}
		*dst = data
	}
	return s, nil
}

// expectedSet is what every published set must agree with.
type expectedSet struct {
	namespace, apiServer string
	ca                   []byte
}

// check says what is wrong with s, or returns nil when s is complete and
// consistent: a service account token for the namespace of the namespace
// file, the API server's CA, and a kubeconfig that names the same server,
// namespace and the token and CA files beside it.
func (e expectedSet) check(s credentialSet) error {
	claim, err := tokenNamespace(string(s.token))
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if string(s.namespace) != e.namespace || claim != e.namespace {
		return fmt.Errorf("namespace file %q and token claim %q, want %q", s.namespace, claim,
			e.namespace)
	}
	if !bytes.Equal(s.ca, e.ca) {
		return errors.New("ca.crt is not the API server's CA")
	}
	cfg, err := clientcmd.Load(s.kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || cfg.Clusters[ctx.Cluster] == nil || cfg.AuthInfos[ctx.AuthInfo] == nil {
		return errors.New("kubeconfig: the current context is incomplete")
	}
	cluster, user := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
	if ctx.Namespace != e.namespace || cluster.Server != e.apiServer ||
		cluster.CertificateAuthority != "ca.crt" || user.TokenFile != "token" || user.Token != "" {
		return fmt.Errorf("kubeconfig: namespace %q, server %q, CA %q, token file %q",
			ctx.Namespace, cluster.Server, cluster.CertificateAuthority, user.TokenFile)
	}
	return nil
}

// tokenNamespace reads the namespace claim of a service account token.
func tokenNamespace(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", err
	}
	var claims struct {
		K8s struct {
			Namespace string `json:"namespace"`
		} `json:"kubernetes.io"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", err
	}
	return claims.K8s.Namespace, nil
}

// reader reads the credential directory the way an app that needs several
// files to agree does: it resolves ..data once and reads the set below it.
// Every set it reads must pass expectedSet.check, a set must never change
// once published, and a token must never appear in two sets: together, no
// read mixes the files of two credentials.
type reader struct {
	dir  string
	want expectedSet

	mu     sync.Mutex
	sets   map[string][sha256.Size]byte // set directory -> token digest
	tokens map[[sha256.Size]byte]string // token digest -> set directory
	reads  int
}

func newReader(dir string, want expectedSet) *reader {
	return &reader{dir: dir, want: want, sets: map[string][sha256.Size]byte{},
		tokens: map[[sha256.Size]byte]string{}}
}

// run reads until stop is closed or a read fails.
func (r *reader) run(stop <-chan struct{}) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		if err := r.readOnce(); err != nil {
			return err
		}
	}
}

func (r *reader) readOnce() error {
	link := filepath.Join(r.dir, "..data")
	set, err := os.Readlink(link)
	if err != nil {
		return nil // nothing published yet
	}
	files, err := readSet(filepath.Join(r.dir, set))
	if errors.Is(err, fs.ErrNotExist) {
		if now, _ := os.Readlink(link); now == set {
			return fmt.Errorf("set %s is published but incomplete: %w", set, err)
		}
		return nil // replaced and removed while read
	}
	if err != nil {
		return err
	}
	if err := r.want.check(files); err != nil {
		return fmt.Errorf("set %s: %w", set, err)
	}
	return r.record(set, sha256.Sum256(files.token))
}

func (r *reader) record(set string, digest [sha256.Size]byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.sets[set]; ok && prev != digest {
		return fmt.Errorf("set %s changed after it was published", set)
	}
	if prev, ok := r.tokens[digest]; ok && prev != set {
		return fmt.Errorf("one token was published in sets %s and %s", prev, set)
	}
	r.sets[set], r.tokens[digest] = digest, set
	r.reads++
	return nil
}

// seen returns the digests of the tokens read and the number of reads.
func (r *reader) seen() (map[[sha256.Size]byte]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[[sha256.Size]byte]string, len(r.tokens))
	for k, v := range r.tokens {
		out[k] = v
	}
	return out, r.reads
}

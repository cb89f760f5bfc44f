// Package harness starts a real Kubernetes control plane (etcd,
// kube-apiserver, kube-controller-manager) and a real Vault on loopback for
// integration tests, and offers helpers to create the objects tests need.
//
// The binaries come from the directory named by LANYARD_TOOLS_BIN; when it is
// unset, the harness asks test/tools/build.sh for the cache directory, whose
// default is ${XDG_CACHE_HOME:-$HOME/.cache}/lanyard/tools/<pins-hash>/bin.
// `make tools` fills it.
//
// Pods created here never run: there is no kubelet. Tokens are minted for them
// with TokenRequest exactly as the kubelet would project them.
package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// ToolsEnv names the variable that points at the directory of test binaries.
const ToolsEnv = "LANYARD_TOOLS_BIN"

// Options tune a stack. The zero value is a complete stack.
type Options struct {
	// ReadyTimeout bounds the wait for each component; default 90 s.
	ReadyTimeout time.Duration
	// SkipVault starts only the Kubernetes control plane.
	SkipVault bool
	// BareVault starts Vault without configuring anything in it, for callers
	// that configure it themselves the way a user would (make demo).
	BareVault bool
}

// Stack is a running control plane and Vault.
type Stack struct {
	// Dir holds certificates, keys, data and logs of every component.
	Dir string
	// BinDir holds the tool binaries.
	BinDir string

	// APIServerURL is the https URL of kube-apiserver.
	APIServerURL string
	// CA signed the API server's serving certificate; its PEM is CA.CertPEM.
	CA *CA
	// AdminConfig authenticates as a member of system:masters.
	AdminConfig *rest.Config
	// Admin is a clientset for AdminConfig.
	Admin kubernetes.Interface
	// Issuer is the service account token issuer.
	Issuer string

	// VaultAddr is the http URL of Vault; empty with Options.SkipVault.
	VaultAddr string
	// VaultRootToken is the dev-mode root token: only for setup in tests.
	VaultRootToken string
	// VaultMount is the path of the Kubernetes secrets engine ("kubernetes").
	VaultMount string
	// VaultAuthMount is the path of the Kubernetes auth method ("kubernetes").
	VaultAuthMount string

	procs []*process
}

// ToolsDir returns the directory of the test binaries, asking the build
// script for the default when LANYARD_TOOLS_BIN is unset.
func ToolsDir() (string, error) {
	if dir := os.Getenv(ToolsEnv); dir != "" {
		return dir, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	out, err := exec.Command(filepath.Join(root, "test", "tools", "build.sh"), "dir").Output()
	if err != nil {
		return "", fmt.Errorf("ask test/tools/build.sh for the tools directory: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// repoRoot walks up from the working directory to the directory holding
// test/tools.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "test", "tools", "build.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no test/tools/build.sh above the working directory")
		}
		dir = parent
	}
}

// Start launches a stack in a new temporary directory. On error, everything
// already started is stopped.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 90 * time.Second
	}
	bin, err := ToolsDir()
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "vault"} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			return nil, fmt.Errorf("%s is missing from %s: run `make tools`", name, bin)
		}
	}
	dir, err := os.MkdirTemp("", "lanyard-stack-")
	if err != nil {
		return nil, fmt.Errorf("stack directory: %w", err)
	}
	liveDir(dir, true)
	s := &Stack{Dir: dir, BinDir: bin}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if err := s.startKubernetes(ctx, opts.ReadyTimeout); err != nil {
		return nil, err
	}
	if opts.SkipVault {
		return s, nil
	}
	if err := s.startVault(ctx, opts.ReadyTimeout, !opts.BareVault); err != nil {
		return nil, err
	}
	return s, nil
}

// Stop ends every process of the stack, API server before etcd, and removes
// its directory. It is safe to call more than once.
func (s *Stack) Stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].stop(15 * time.Second)
	}
	s.procs = nil
	if s.Dir != "" && os.Getenv(keepDirEnv) == "" {
		_ = os.RemoveAll(s.Dir)
		liveDir(s.Dir, false)
	}
}

// keepDirEnv, when set, keeps stack directories (and their logs) after the
// stack stops, for a look at what went wrong.
const keepDirEnv = "LANYARD_KEEP_STACK_DIR"

// PIDs returns the process IDs of the stack's servers.
func (s *Stack) PIDs() map[string]int {
	pids := make(map[string]int, len(s.procs))
	for _, p := range s.procs {
		pids[p.name] = p.PID()
	}
	return pids
}

// VaultClient returns a Vault client for the given token.
func (s *Stack) VaultClient(token string) (*vault.Client, error) {
	cfg := vault.DefaultConfig()
	cfg.Address = s.VaultAddr
	c, err := vault.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	c.SetToken(token)
	return c, nil
}

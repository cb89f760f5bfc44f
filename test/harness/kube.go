package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const issuer = "https://kubernetes.default.svc.cluster.local"

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func (s *Stack) path(name string) string { return filepath.Join(s.Dir, name) }

// startKubernetes runs etcd, kube-apiserver and kube-controller-manager.
func (s *Stack) startKubernetes(ctx context.Context, timeout time.Duration) error {
	etcdURL, err := s.startEtcd(ctx, timeout)
	if err != nil {
		return err
	}
	if err := s.startAPIServer(ctx, etcdURL, timeout); err != nil {
		return err
	}
	return s.startControllerManager(ctx, timeout)
}

func (s *Stack) startEtcd(ctx context.Context, timeout time.Duration) (string, error) {
	clientPort, err := freePort()
	if err != nil {
		return "", err
	}
	peerPort, err := freePort()
	if err != nil {
		return "", err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	p, err := startProcess(s.Dir, "etcd", filepath.Join(s.BinDir, "etcd"), []string{
		"--data-dir=" + s.path("etcd-data"),
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=default=" + peerURL,
		"--unsafe-no-fsync",
		"--log-level=warn",
	}, nil)
	if err != nil {
		return "", err
	}
	s.procs = append(s.procs, p)
	err = waitFor(ctx, p, timeout, func(ctx context.Context) error {
		return httpOK(ctx, http.DefaultClient, clientURL+"/health", "")
	})
	return clientURL, err
}

func (s *Stack) startAPIServer(ctx context.Context, etcdURL string, timeout time.Duration) error {
	ca, err := NewCA("lanyard-test-kubernetes-ca")
	if err != nil {
		return err
	}
	s.CA = ca
	if err := os.WriteFile(s.path("ca.crt"), ca.CertPEM, 0o600); err != nil {
		return fmt.Errorf("write CA: %w", err)
	}
	if err := ca.IssueFiles(s.path("apiserver.crt"), s.path("apiserver.key"), "kube-apiserver",
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		[]net.IP{net.ParseIP("127.0.0.1")}); err != nil {
		return err
	}
	if err := writeSigningKey(s.path("sa.key"), s.path("sa.pub")); err != nil {
		return err
	}
	adminToken, err := randomHex(24)
	if err != nil {
		return err
	}
	tokens := adminToken + ",lanyard-test-admin,lanyard-test-admin,system:masters\n"
	if err := os.WriteFile(s.path("tokens.csv"), []byte(tokens), 0o600); err != nil {
		return fmt.Errorf("write token file: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	s.APIServerURL = "https://127.0.0.1:" + strconv.Itoa(port)
	s.Issuer = issuer
	p, err := startProcess(s.Dir, "kube-apiserver", filepath.Join(s.BinDir, "kube-apiserver"), []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + s.path("apiserver-certs"),
		"--tls-cert-file=" + s.path("apiserver.crt"),
		"--tls-private-key-file=" + s.path("apiserver.key"),
		"--client-ca-file=" + s.path("ca.crt"),
		"--token-auth-file=" + s.path("tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=" + issuer,
		"--service-account-key-file=" + s.path("sa.pub"),
		"--service-account-signing-key-file=" + s.path("sa.key"),
		"--service-account-max-token-expiration=48h",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--allow-privileged=true",
		// A single loopback API server has no Service endpoints to reconcile.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"--enable-priority-and-fairness=false",
		"--v=1",
	}, nil)
	if err != nil {
		return err
	}
	s.procs = append(s.procs, p)

	s.AdminConfig = &rest.Config{
		Host:            s.APIServerURL,
		BearerToken:     adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca.CertPEM},
		QPS:             100,
		Burst:           200,
		// A stalled API server fails a test instead of hanging it.
		Timeout: 30 * time.Second,
	}
	hc, err := rest.HTTPClientFor(s.AdminConfig)
	if err != nil {
		return fmt.Errorf("admin http client: %w", err)
	}
	if err := waitFor(ctx, p, timeout, func(ctx context.Context) error {
		return httpOK(ctx, hc, s.APIServerURL+"/readyz", "")
	}); err != nil {
		return err
	}
	s.Admin, err = kubernetes.NewForConfig(s.AdminConfig)
	if err != nil {
		return fmt.Errorf("admin clientset: %w", err)
	}
	return s.writeAdminKubeconfig(adminToken)
}

func (s *Stack) writeAdminKubeconfig(token string) error {
	cfg := Kubeconfig(s.APIServerURL, s.path("ca.crt"), "", token)
	if err := os.WriteFile(s.path("admin.kubeconfig"), cfg, 0o600); err != nil {
		return fmt.Errorf("write admin kubeconfig: %w", err)
	}
	return nil
}

// AdminKubeconfigPath is a kubeconfig file for the admin credential.
func (s *Stack) AdminKubeconfigPath() string { return s.path("admin.kubeconfig") }

// CAPath is the file holding the API server's CA certificate.
func (s *Stack) CAPath() string { return s.path("ca.crt") }

// Kubeconfig renders a single-context kubeconfig. Exactly one of tokenFile
// and token should be set.
func Kubeconfig(server, caFile, tokenFile, token string) []byte {
	user := "    token: " + token + "\n"
	if tokenFile != "" {
		user = "    tokenFile: " + tokenFile + "\n"
	}
	return []byte("apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n" +
		"    server: " + server + "\n    certificate-authority: " + caFile + "\n" +
		"users:\n- name: test\n  user:\n" + user +
		"contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n" +
		"current-context: test\n")
}

func (s *Stack) startControllerManager(ctx context.Context, timeout time.Duration) error {
	p, err := startProcess(s.Dir, "kube-controller-manager",
		filepath.Join(s.BinDir, "kube-controller-manager"), []string{
			"--kubeconfig=" + s.AdminKubeconfigPath(),
			"--service-account-private-key-file=" + s.path("sa.key"),
			"--root-ca-file=" + s.path("ca.crt"),
			"--use-service-account-credentials=false",
			"--leader-elect=false",
			"--secure-port=0",
			"--v=1",
		}, nil)
	if err != nil {
		return err
	}
	s.procs = append(s.procs, p)
	// The controllers are working once aggregated ClusterRoles have rules
	// and the default namespace has its default service account.
	return waitFor(ctx, p, timeout, func(ctx context.Context) error {
		view, err := s.Admin.RbacV1().ClusterRoles().Get(ctx, "view", metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get clusterrole view: %w", err)
		}
		if len(view.Rules) == 0 {
			return fmt.Errorf("clusterrole view has no aggregated rules yet")
		}
		_, err = s.Admin.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get default service account: %w", err)
		}
		return nil
	})
}

func httpOK(ctx context.Context, c *http.Client, url, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

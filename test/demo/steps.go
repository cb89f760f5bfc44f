package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/lanyard-dev/lanyard/test/harness"
)

// Names the demo's workloads use; they match examples/catalog.yaml.
const (
	teamA       = "team-a"
	teamB       = "team-b"
	appAccount  = "app"
	webPod      = "web"
	otherPod    = "intruder"
	otherSA     = "intruder"
	brokerNS    = "lanyard-system"
	brokerSA    = "lanyard-broker"
	engineNS    = "vault"
	engineSA    = "vault-secrets-engine"
	podReader   = "pod-reader"
	viewerRole  = "viewer"
	audience    = "lanyard"
	tokenExpiry = "1h"
)

// kubectl runs the pinned kubectl as the cluster administrator.
func (d *demo) kubectl(ctx context.Context, args ...string) (string, error) {
	args = append([]string{"--kubeconfig", d.stack.AdminKubeconfigPath()}, args...)
	return output(ctx, filepath.Join(d.stack.BinDir, "kubectl"), args, nil)
}

// writeToken mints a token with `kubectl create token` into a 0600 file.
func (d *demo) writeToken(ctx context.Context, file string, args ...string) error {
	token, err := d.kubectl(ctx, append([]string{"create", "token"}, args...)...)
	if err != nil {
		return err
	}
	return os.WriteFile(file, []byte(token), 0o600)
}

// configureVault follows the README: the engine's service account and RBAC,
// then deploy/vault/setup.sh with the policy from `lanyard-broker vault policy`.
func (d *demo) configureVault(ctx context.Context) error {
	d.step("configuring Vault as the README says (deploy/vault/setup.sh)")
	if _, err := d.kubectl(ctx, "create", "namespace", engineNS); err != nil {
		return err
	}
	for _, f := range []string{"deploy/vault/vault-engine-rbac.yaml", "examples/broker-rbac.yaml"} {
		if _, err := d.kubectl(ctx, "apply", "-f", filepath.Join(d.cfg.RepoRoot, f)); err != nil {
			return err
		}
	}
	engineJWT := d.path("engine.jwt")
	if err := d.writeToken(ctx, engineJWT, engineSA, "-n", engineNS, "--duration=24h"); err != nil {
		return err
	}
	env := []string{
		"VAULT_ADDR=" + d.stack.VaultAddr,
		"VAULT_TOKEN=" + d.stack.VaultRootToken,
		"KUBERNETES_HOST=" + d.stack.APIServerURL,
		"KUBERNETES_CA_FILE=" + d.stack.CAPath(),
		"ENGINE_JWT_FILE=" + engineJWT,
		"LANYARD_NAMESPACE=" + brokerNS,
		// Vault runs outside the cluster with no reviewer token of its own, so it reviews
		// the broker's token with that token: it must carry the API server's audience.
		"LANYARD_AUDIENCE=",
		"PATH=" + d.cfg.BinDir + ":" + d.stack.BinDir + ":" + os.Getenv("PATH"),
		"HOME=" + d.dir,
	}
	_, err := output(ctx, filepath.Join(d.cfg.RepoRoot, "deploy/vault/setup.sh"), nil, env)
	return err
}

// startBroker runs `lanyard-broker serve` with TLS and the example catalog,
// logged in to Vault as its own service account.
func (d *demo) startBroker(ctx context.Context) error {
	d.step("starting lanyard-broker serve with TLS and examples/catalog.yaml")
	brokerJWT := d.path("broker.jwt")
	if err := d.writeToken(ctx, brokerJWT, brokerSA, "-n", brokerNS, "--duration="+tokenExpiry); err != nil {
		return err
	}
	kubeconfig := d.path("broker.kubeconfig")
	cfg := harness.Kubeconfig(d.stack.APIServerURL, d.stack.CAPath(), brokerJWT, "")
	if err := os.WriteFile(kubeconfig, cfg, 0o600); err != nil {
		return fmt.Errorf("write broker kubeconfig: %w", err)
	}
	ca, err := harness.NewCA("lanyard-demo-broker-ca")
	if err != nil {
		return err
	}
	d.brokerCA = d.path("broker-ca.crt")
	if err := os.WriteFile(d.brokerCA, ca.CertPEM, 0o600); err != nil {
		return fmt.Errorf("write broker CA: %w", err)
	}
	err = ca.IssueFiles(d.path("broker.crt"), d.path("broker.key"), "lanyard-broker",
		[]string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		return err
	}
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	d.brokerAddr = "127.0.0.1:" + strconv.Itoa(ports[0])
	health := "127.0.0.1:" + strconv.Itoa(ports[1])
	p, err := d.start("broker", d.bin("lanyard-broker"), []string{
		"serve",
		"--listen=" + d.brokerAddr,
		"--tls-cert-file=" + d.path("broker.crt"),
		"--tls-key-file=" + d.path("broker.key"),
		"--catalog=" + filepath.Join(d.cfg.RepoRoot, "examples/catalog.yaml"),
		"--kubeconfig=" + kubeconfig,
		"--vault-addr=" + d.stack.VaultAddr,
		"--vault-auth=kubernetes",
		"--vault-role=lanyard-broker",
		"--vault-jwt-file=" + brokerJWT,
		"--health-addr=" + health,
		"--metrics-addr=127.0.0.1:" + strconv.Itoa(ports[2]),
		"--audit-log=" + d.path("audit.log"),
		"--log-format=text",
	})
	if err != nil {
		return err
	}
	return p.waitHTTP(ctx, "http://"+health+"/readyz", 60*time.Second)
}

// createWorkloads creates the namespaces, service accounts and pod objects of
// the example catalog's identities.
func (d *demo) createWorkloads(ctx context.Context) error {
	d.step("creating namespaces %s (team=a) and %s, and pods %s/%s and %s/%s",
		teamA, teamB, teamA, webPod, teamA, otherPod)
	s := d.stack
	if err := s.CreateNamespace(ctx, teamA, map[string]string{"team": "a"}); err != nil {
		return err
	}
	if err := s.CreateNamespace(ctx, teamB, nil); err != nil {
		return err
	}
	if _, err := s.CreatePod(ctx, teamA, webPod, appAccount, map[string]string{"app": "web"}); err != nil {
		return err
	}
	_, err := s.CreatePod(ctx, teamA, otherPod, otherSA, map[string]string{"app": "web"})
	return err
}

// podToken mints the projected token the kubelet would give pod, with
// `kubectl create token --bound-object-kind Pod`.
func (d *demo) podToken(ctx context.Context, pod, account string) (string, error) {
	file := d.path(pod + ".jwt")
	err := d.writeToken(ctx, file, account, "-n", teamA, "--audience="+audience,
		"--bound-object-kind=Pod", "--bound-object-name="+pod, "--duration=1h")
	return file, err
}

// agentArgs are the flags every agent run of the demo shares.
func (d *demo) agentArgs(tokenFile, role, outDir string) []string {
	return []string{
		"--broker-addr=" + d.brokerAddr,
		"--broker-ca-file=" + d.brokerCA,
		"--token-file=" + tokenFile,
		"--role=" + role,
		"--output-dir=" + outDir,
		"--log-format=text",
	}
}

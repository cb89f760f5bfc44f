//go:build integration

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanyard-dev/lanyard/test/harness"
)

// TestVaultSetupScript runs deploy/vault/setup.sh, as an operator would,
// against a bare Vault: its role grants the lanyard policy alone, and a run
// that would silently drop a stored token reviewer is refused.
func TestVaultSetupScript(t *testing.T) {
	ctx := context.Background()
	s := harness.New(t, harness.Options{BareVault: true})
	bin := t.TempDir()
	broker := filepath.Join(bin, "lanyard-broker")
	if msg, err := exec.Command("go", "build", "-o", broker, "../../cmd/broker").CombinedOutput(); err != nil {
		t.Fatalf("build lanyard-broker: %v\n%s", err, msg)
	}
	dir := t.TempDir()
	tokenFile := func(name string) string {
		if err := s.CreateServiceAccount(ctx, "default", name); err != nil {
			t.Fatal(err)
		}
		tok, err := s.ServiceAccountToken(ctx, "default", name, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name+".jwt")
		if err := os.WriteFile(path, []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	env := append(os.Environ(),
		"VAULT_ADDR="+s.VaultAddr,
		"VAULT_TOKEN="+s.VaultRootToken,
		"KUBERNETES_HOST="+s.APIServerURL,
		"KUBERNETES_CA_FILE="+s.CAPath(),
		"ENGINE_JWT_FILE="+tokenFile("engine"),
		"PATH="+bin+":"+s.BinDir+":"+os.Getenv("PATH"),
		"HOME="+dir,
	)
	setup := func(extra ...string) (string, error) {
		cmd := exec.Command("../../deploy/vault/setup.sh")
		cmd.Env = append(env, extra...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	reviewer := "LANYARD_TOKEN_REVIEWER_JWT_FILE=" + tokenFile("reviewer")

	if out, err := setup(reviewer); err != nil {
		t.Fatalf("setup.sh with a reviewer: %v\n%s", err, out)
	}
	vc, err := s.VaultClient(s.VaultRootToken)
	if err != nil {
		t.Fatal(err)
	}
	role, err := vc.Logical().Read("auth/kubernetes/role/lanyard-broker")
	if err != nil || role == nil {
		t.Fatalf("read the broker's auth role: %v", err)
	}
	if role.Data["token_no_default_policy"] != true {
		t.Errorf("token_no_default_policy = %v, want true: the broker needs no default policy",
			role.Data["token_no_default_policy"])
	}
	if p, _ := role.Data["token_policies"].([]any); len(p) != 1 || p[0] != "lanyard-broker" {
		t.Errorf("token_policies = %v, want [lanyard-broker]", role.Data["token_policies"])
	}

	out, err := setup()
	if err == nil || !strings.Contains(out, "set LANYARD_TOKEN_REVIEWER_JWT_FILE") {
		t.Errorf("setup.sh without the stored reviewer: %v, want a refusal that says what to set\n%s",
			err, out)
	}
	cfg, err := vc.Logical().Read("auth/kubernetes/config")
	if err != nil || cfg == nil || cfg.Data["token_reviewer_jwt_set"] != true {
		t.Errorf("after the refused run the reviewer is gone (read error: %v)", err)
	}
	if out, err := setup(reviewer); err != nil {
		t.Errorf("setup.sh again with the reviewer: %v\n%s", err, out)
	}
}

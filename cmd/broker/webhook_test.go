package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/lanyard-dev/lanyard/broker/webhook"
)

func TestWebhookFlagsAreChecked(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"the key pair is required", []string{"--catalog=c"}, "--tls-cert-file and --tls-key-file"},
		{"the catalog is required", []string{"--tls-cert-file=a", "--tls-key-file=b"},
			"--catalog is required"},
		{"a CA source is required", []string{"--tls-cert-file=a", "--tls-key-file=b",
			"--catalog=c"}, "exactly one of --broker-ca-file and --broker-ca-trust-bundle"},
		{"two CA sources are refused", []string{"--tls-cert-file=a", "--tls-key-file=b",
			"--catalog=c", "--broker-ca-file=x", "--broker-ca-trust-bundle=y"},
			"exactly one of"},
		{"a CA file without certificate is refused", []string{"--tls-cert-file=a",
			"--tls-key-file=b", "--catalog=c", "--broker-ca-file=" + caFile},
			"holds no PEM certificate"},
		{"a bad quantity is refused", []string{"--tls-cert-file=a", "--tls-key-file=b",
			"--catalog=c", "--broker-ca-trust-bundle=y", "--agent-cpu-limit=lots"},
			`--agent-cpu-limit "lots"`},
		{"the agent image is required", []string{"--tls-cert-file=a", "--tls-key-file=b",
			"--catalog=c", "--broker-ca-trust-bundle=y"}, "agent image is required"},
		{"a short token lifetime is refused", []string{"--tls-cert-file=a", "--tls-key-file=b",
			"--catalog=c", "--broker-ca-trust-bundle=y", "--agent-image=i", "--broker-addr=b:1",
			"--token-expiration=5m"}, "below the 10m"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := webhookOptions{cfg: webhook.DefaultConfig()}
			cmd := &cobra.Command{}
			o.addFlags(cmd)
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			_, err := o.config()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("config error = %v, want %q", err, tc.want)
			}
		})
	}
}

package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lanyard-dev/lanyard/broker/issuer"
)

// defaultJWTFile is where a pod finds its service account token.
const defaultJWTFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// vaultFlags are the flags that say how to reach and log in to Vault; every
// command that talks to Vault (catalog sync, serve) registers them.
// Tokens are given only as files, never as flag values.
type vaultFlags struct {
	addr, auth, authMount, role, tokenFile, jwtFile, mount, caFile string
}

func (f *vaultFlags) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.addr, "vault-addr", "", "Vault address, e.g. https://vault.vault:8200")
	fs.StringVar(&f.auth, "vault-auth", issuer.AuthKubernetes,
		"how to log in to Vault: kubernetes or token")
	fs.StringVar(&f.authMount, "vault-auth-mount", issuer.DefaultAuthMount,
		"mount of Vault's Kubernetes auth method")
	fs.StringVar(&f.role, "vault-role", "", "Vault auth role of the broker (kubernetes auth)")
	fs.StringVar(&f.tokenFile, "vault-token-file", "", "file holding a Vault token (token auth)")
	fs.StringVar(&f.jwtFile, "vault-jwt-file", defaultJWTFile,
		"service account token file to log in with (kubernetes auth), re-read at each login")
	fs.StringVar(&f.mount, "vault-mount", issuer.DefaultMount,
		"mount of Vault's Kubernetes secrets engine")
	fs.StringVar(&f.caFile, "vault-ca-file", "", "CA bundle that verifies Vault's certificate")
}

func (f *vaultFlags) config() issuer.Config {
	return issuer.Config{
		Addr: f.addr, Mount: f.mount, Auth: f.auth, AuthMount: f.authMount, Role: f.role,
		JWTFile: f.jwtFile, TokenFile: f.tokenFile, CACertFile: f.caFile,
	}
}

// newVaultCommand groups the commands that help set Vault up for lanyard.
func newVaultCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "vault",
		Short:   "Help set up Vault for the broker",
		Example: "  lanyard-broker vault policy | vault policy write lanyard-broker -",
		Args:    cobra.NoArgs,
	}
	_ = g // no subcommand logs yet
	cmd.AddCommand(newVaultPolicyCommand())
	return cmd
}

func newVaultPolicyCommand() *cobra.Command {
	var mount, authMount string
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Print the least-privilege Vault policy the broker needs",
		Long: "Print, in Vault's HCL, the policy the broker's Vault token needs: mint and revoke\n" +
			"credentials of lanyard-* roles, manage those roles, list role names, and keep its\n" +
			"own token alive. Nothing else.",
		Example: "  lanyard-broker vault policy | vault policy write lanyard-broker -\n" +
			"  lanyard-broker vault policy --mount k8s-prod --auth-mount k8s-prod-auth",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write([]byte(issuer.Policy(mount, authMount)))
			return err
		},
	}
	cmd.Flags().StringVar(&mount, "mount", issuer.DefaultMount,
		"mount of the Kubernetes secrets engine")
	cmd.Flags().StringVar(&authMount, "auth-mount", issuer.DefaultAuthMount,
		"mount of the Kubernetes auth method")
	return cmd
}

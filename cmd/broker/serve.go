package main

import (
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/lanyard-dev/lanyard/broker/server"
)

// serveJWTFile is where the chart projects the broker's own token for its
// Vault login; the broker mounts no default service account token.
const serveJWTFile = "/var/run/secrets/lanyard/vault/token"

// serveOptions are the flags of `lanyard-broker serve`.
type serveOptions struct {
	o           server.Options
	vault       vaultFlags
	maxInFlight int
}

func newServeCommand(g *globalOptions) *cobra.Command {
	var s serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the lanyard.v1.Broker gRPC API",
		Long: "Authenticate pods by their projected service account token, check the role\n" +
			"catalog and mint short-lived Kubernetes credentials through Vault. Serves gRPC\n" +
			"over TLS on --listen, /healthz and /readyz on --health-addr, /metrics on\n" +
			"--metrics-addr, and writes one audit line per decision to --audit-log.\n\n" +
			"Every flag can also be set as LANYARD_<FLAG> (upper snake case); flags win.",
		Example: "  lanyard-broker serve --tls-cert-file tls.crt --tls-key-file tls.key \\\n" +
			"    --catalog /etc/lanyard/catalog.yaml --vault-addr https://vault.vault:8200 \\\n" +
			"    --vault-role lanyard-broker --credential-key-file /etc/lanyard/key/key\n\n" +
			"  # development: plain gRPC on loopback, Vault token from a file\n" +
			"  lanyard-broker serve --insecure-listen 127.0.0.1:8443 --catalog catalog.yaml \\\n" +
			"    --kubeconfig ~/.kube/config --vault-addr http://127.0.0.1:8200 \\\n" +
			"    --vault-auth token --vault-token-file ~/.vault-token",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := g.log.NewLogger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			klog.SetSlogLogger(logger)
			return server.Run(cmd.Context(), s.options(), logger)
		},
	}
	s.addFlags(cmd.Flags())
	return cmd
}

func (s *serveOptions) addFlags(fs *pflag.FlagSet) {
	o := &s.o
	fs.StringVar(&o.Listen, "listen", ":8443", "gRPC over TLS address")
	fs.StringVar(&o.TLSCertFile, "tls-cert-file", "", "serving certificate (PEM), reloaded on change")
	fs.StringVar(&o.TLSKeyFile, "tls-key-file", "", "serving key (PEM), reloaded on change")
	fs.StringVar(&o.ClientCAFile, "client-ca-file", "",
		"CA bundle; when set, callers must present a client certificate it signed (mTLS)")
	fs.StringVar(&o.InsecureListen, "insecure-listen", "",
		"serve plain gRPC on this address instead of TLS; refused unless it is loopback")
	fs.StringVar(&o.CatalogFile, "catalog", "", "role catalog file, reloaded on change")
	fs.StringVar(&o.Audience, "audience", "lanyard", "audience the caller tokens must carry")
	fs.StringVar(&o.TokenValidation, "token-validation", server.ValidationTokenReview,
		"how caller tokens are checked: tokenreview (jwks is not implemented yet and is refused)")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig file; in-cluster config when empty")
	fs.StringVar(&o.KubeAPIServerURL, "kube-api-server-url", "",
		"API server URL handed to agents; default: the broker's own")
	fs.StringVar(&o.KubeCAFile, "kube-ca-file", "",
		"API server CA bundle handed to agents; default: the broker's own")
	s.vault.addFlags(fs)
	s.vault.jwtFile = serveJWTFile
	fs.Lookup("vault-jwt-file").DefValue = serveJWTFile
	fs.IntVar(&s.maxInFlight, "vault-max-in-flight", 8, "most concurrent Vault creds calls and revocations, together")
	fs.StringVar(&o.HealthAddr, "health-addr", ":8081", "address of /healthz and /readyz")
	fs.StringVar(&o.MetricsAddr, "metrics-addr", ":9090", "address of /metrics")
	fs.StringVar(&o.AuditLog, "audit-log", "-", "audit log: - for standard output, or a file path")
	fs.StringVar(&o.CredentialKeyFile, "credential-key-file", "",
		"key shared by all replicas that seals credential ids; empty: a per-process key "+
			"(single replica only)")
	fs.Float64Var(&o.RateLimit, "rate-limit", 1, "Vault calls per second allowed to each pod (0: no limit)")
	fs.IntVar(&o.RateLimitBurst, "rate-limit-burst", 5, "Vault calls a pod may make at once")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 20*time.Second,
		"how long in-flight calls may finish on shutdown")
	fs.BoolVar(&o.RevokeOnPodDelete, "revoke-on-pod-delete", true,
		"revoke a pod's credentials when the pod is deleted (needs list and watch on pods; "+
			"each replica knows only what it issued, and forgets it on restart)")
}

func (s *serveOptions) options() server.Options {
	o := s.o
	o.Vault = s.vault.config()
	o.Vault.MaxInFlight = s.maxInFlight
	return o
}

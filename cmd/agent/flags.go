package main

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/lanyard-dev/lanyard/agent"
	"github.com/lanyard-dev/lanyard/agent/brokerclient"
)

// Defaults of the agent's flags. Each flag also reads LANYARD_<FLAG> (upper
// snake case); precedence is flags > environment > these defaults.
const (
	defaultTokenFile  = "/var/run/secrets/lanyard/token" //nolint:gosec // G101: a path, not a secret
	defaultOutputDir  = "/var/run/lanyard"
	defaultHealthAddr = "127.0.0.1:8099"
)

// agentFlags are the flags of run and once.
type agentFlags struct {
	brokerAddr  string
	caFile      string
	certFile    string
	keyFile     string
	serverName  string
	tokenFile   string
	role        string
	ttl         time.Duration
	namespace   string
	outputDir   string
	healthAddr  string
	clearOnExit bool
}

// addFlags registers the flags both commands share.
func (f *agentFlags) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.brokerAddr, "broker-addr", "", "broker host:port (required)")
	fs.StringVar(&f.caFile, "broker-ca-file", "",
		"PEM CA bundle for the broker's certificate; system roots when empty")
	fs.StringVar(&f.certFile, "client-cert-file", "", "client certificate for mTLS (optional)")
	fs.StringVar(&f.keyFile, "client-key-file", "", "client key for mTLS (optional)")
	fs.StringVar(&f.serverName, "server-name", "",
		"name to verify in the broker's certificate; the host of --broker-addr when empty")
	fs.StringVar(&f.tokenFile, "token-file", defaultTokenFile,
		"projected service account token the agent authenticates with; re-read on every call")
	fs.StringVar(&f.role, "role", "", "catalog role to request (required)")
	fs.DurationVar(&f.ttl, "ttl", 0, "requested credential lifetime; the role's default when 0")
	fs.StringVar(&f.namespace, "namespace", "", "namespace to request; the role's when empty")
	fs.StringVar(&f.outputDir, "output-dir", defaultOutputDir,
		"directory that receives token, ca.crt, namespace and kubeconfig")
}

// addRunFlags registers the flags only run has.
func (f *agentFlags) addRunFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.healthAddr, "health-addr", defaultHealthAddr,
		"address of /healthz, /readyz and /metrics; empty disables them")
	fs.BoolVar(&f.clearOnExit, "clear-on-exit", false,
		"remove the credential files after revoking at shutdown")
}

func (f *agentFlags) config() agent.Config {
	return agent.Config{
		Broker: brokerclient.Options{
			Addr: f.brokerAddr, CAFile: f.caFile, CertFile: f.certFile, KeyFile: f.keyFile,
			ServerName: f.serverName, TokenFile: f.tokenFile,
			Role: f.role, TTL: f.ttl, Namespace: f.namespace,
		},
		OutputDir:   f.outputDir,
		HealthAddr:  f.healthAddr,
		ClearOnExit: f.clearOnExit,
	}
}

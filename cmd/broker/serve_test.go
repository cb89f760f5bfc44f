package main

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/lanyard-dev/lanyard/broker/server"
)

func TestServeRefusesBeforeStarting(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"jwks validation, which is not implemented", []string{"--token-validation", "jwks",
			"--catalog", exampleCatalog}, "jwks is not implemented yet"},
		{"an unknown validation mode", []string{"--token-validation", "magic",
			"--catalog", exampleCatalog}, "want tokenreview or jwks"},
		{"plain gRPC on every interface", []string{"--insecure-listen", ":8443",
			"--catalog", exampleCatalog}, "allowed only on a loopback address"},
		{"plain gRPC on a routable address", []string{"--insecure-listen", "10.1.2.3:8443",
			"--catalog", exampleCatalog}, "allowed only on a loopback address"},
		{"no TLS key pair", []string{"--catalog", exampleCatalog}, "--tls-cert-file and --tls-key-file"},
		{"no catalog", []string{"--insecure-listen", "127.0.0.1:0"}, "--catalog is required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, err := execute(t, append([]string{"serve"}, c.args...)...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %v, want one containing %q\n%s", err, c.want, stderr)
			}
		})
	}
}

func TestServeFlagDefaults(t *testing.T) {
	var s serveOptions
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	s.addFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	got := s.options()
	want := server.Options{
		Listen: ":8443", Audience: "lanyard", TokenValidation: "tokenreview",
		HealthAddr: ":8081", MetricsAddr: ":9090", AuditLog: "-",
		RateLimit: 1, RateLimitBurst: 5, ShutdownTimeout: 20 * time.Second,
		RevokeOnPodDelete: true,
	}
	got.Vault = want.Vault
	if got != want {
		t.Errorf("defaults = %+v\nwant %+v", got, want)
	}
	v := s.options().Vault
	if v.Auth != "kubernetes" || v.AuthMount != "kubernetes" || v.Mount != "kubernetes" ||
		v.JWTFile != serveJWTFile || v.MaxInFlight != 8 {
		t.Errorf("vault defaults = %+v", v)
	}
}

func TestServeReadsTheEnvironment(t *testing.T) {
	t.Setenv("LANYARD_TOKEN_VALIDATION", "jwks")
	_, _, err := execute(t, "serve", "--catalog", exampleCatalog)
	if err == nil || !strings.Contains(err.Error(), "jwks is not implemented yet") {
		t.Errorf("error = %v, want the environment's jwks to be refused", err)
	}
	_, _, err = execute(t, "serve", "--catalog", exampleCatalog, "--token-validation", "magic")
	if err == nil || !strings.Contains(err.Error(), `"magic"`) {
		t.Errorf("error = %v, want the flag to win over the environment", err)
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/lanyard-dev/lanyard/broker/catalog"
	"github.com/lanyard-dev/lanyard/broker/webhook"
)

// webhookOptions are the flags of `lanyard-broker webhook`.
type webhookOptions struct {
	listen, healthAddr             string
	certFile, keyFile              string
	catalogFile                    string
	brokerCAFile, trustBundle      string
	cpuReq, memReq, cpuLim, memLim string
	cfg                            webhook.Config
	healthPort                     int32
	tokenExpiration                time.Duration
}

func newWebhookCommand(g *globalOptions) *cobra.Command {
	o := webhookOptions{cfg: webhook.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Serve the admission webhook that injects the lanyard agent into pods",
		Long: "Serve an AdmissionReview v1 webhook on /mutate over HTTPS. Pods annotated\n" +
			"lanyard.dev/role get the agent as a native sidecar and their credential in memory;\n" +
			"pods asking for an unknown role or with malformed annotations are refused.\n" +
			"On /validate it refuses ephemeral containers that could reach the agent's token.",
		Example: "  lanyard-broker webhook --tls-cert-file tls.crt --tls-key-file tls.key \\\n" +
			"    --catalog catalog.yaml --agent-image ghcr.io/lanyard-dev/lanyard-agent:v1 \\\n" +
			"    --broker-addr lanyard-broker.lanyard.svc:8443 --broker-ca-file ca.crt",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := g.log.NewLogger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return runWebhook(cmd.Context(), &o, logger)
		},
	}
	o.addFlags(cmd)
	return cmd
}

func (o *webhookOptions) addFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	d := webhook.DefaultConfig()
	fs.StringVar(&o.listen, "listen", ":9443", "HTTPS address of /mutate, /validate and /healthz")
	fs.StringVar(&o.healthAddr, "health-addr", ":8081",
		"plain HTTP address of /healthz and /readyz")
	fs.StringVar(&o.certFile, "tls-cert-file", "", "serving certificate (PEM), reloaded on change")
	fs.StringVar(&o.keyFile, "tls-key-file", "", "serving key (PEM), reloaded on change")
	fs.StringVar(&o.catalogFile, "catalog", "", "role catalog file; unknown roles are refused")
	fs.StringVar(&o.cfg.AgentImage, "agent-image", "", "image of the injected agent")
	fs.StringVar(&o.cfg.AgentImagePullPolicy, "agent-image-pull-policy", d.AgentImagePullPolicy,
		"pull policy of the injected agent")
	fs.StringVar(&o.cfg.BrokerAddr, "broker-addr", "", "broker gRPC address as agents dial it")
	fs.StringVar(&o.brokerCAFile, "broker-ca-file", "",
		"CA of the broker (PEM), copied into each pod's lanyard.dev/broker-ca annotation")
	fs.StringVar(&o.trustBundle, "broker-ca-trust-bundle", "",
		"ClusterTrustBundle to project as the broker CA instead of the annotation")
	fs.StringVar(&o.cfg.Audience, "audience", d.Audience, "audience of the agent's projected token")
	fs.DurationVar(&o.tokenExpiration, "token-expiration", d.TokenExpiration,
		"lifetime of the agent's projected token (at least 10m)")
	fs.Int32Var(&o.healthPort, "agent-health-port", d.HealthPort,
		"port of the agent's /readyz and /healthz on the pod IP")
	fs.StringVar(&o.cpuReq, "agent-cpu-request", d.CPURequest.String(), "agent CPU request")
	fs.StringVar(&o.memReq, "agent-memory-request", d.MemoryRequest.String(),
		"agent memory request")
	fs.StringVar(&o.cpuLim, "agent-cpu-limit", d.CPULimit.String(), "agent CPU limit")
	fs.StringVar(&o.memLim, "agent-memory-limit", d.MemoryLimit.String(), "agent memory limit")
}

// config completes the injector configuration from the flags.
func (o *webhookOptions) config() (webhook.Config, error) {
	cfg := o.cfg
	cfg.HealthPort, cfg.TokenExpiration = o.healthPort, o.tokenExpiration
	cfg.ClusterTrustBundle = o.trustBundle
	switch {
	case o.certFile == "" || o.keyFile == "":
		return cfg, errors.New("--tls-cert-file and --tls-key-file are required")
	case o.catalogFile == "":
		return cfg, errors.New("--catalog is required")
	case (o.brokerCAFile == "") == (o.trustBundle == ""):
		return cfg, errors.New("set exactly one of --broker-ca-file and --broker-ca-trust-bundle")
	}
	if o.brokerCAFile != "" {
		cfg.BrokerCA = webhook.FileCA(o.brokerCAFile)
		if _, err := cfg.BrokerCA(); err != nil {
			return cfg, err
		}
	}
	for _, q := range []struct {
		flag, value string
		into        *resource.Quantity
	}{
		{"--agent-cpu-request", o.cpuReq, &cfg.CPURequest},
		{"--agent-memory-request", o.memReq, &cfg.MemoryRequest},
		{"--agent-cpu-limit", o.cpuLim, &cfg.CPULimit},
		{"--agent-memory-limit", o.memLim, &cfg.MemoryLimit},
	} {
		v, err := resource.ParseQuantity(q.value)
		if err != nil {
			return cfg, fmt.Errorf("%s %q: %w", q.flag, q.value, err)
		}
		*q.into = v
	}
	return cfg, cfg.Validate()
}

func runWebhook(ctx context.Context, o *webhookOptions, logger *slog.Logger) error {
	cfg, err := o.config()
	if err != nil {
		return err
	}
	watcher, err := catalog.NewWatcher(o.catalogFile, logger, nil, nil)
	if err != nil {
		return err
	}
	injector, err := webhook.NewInjector(cfg, catalogRoles{watcher})
	if err != nil {
		return err
	}
	certs, err := webhook.NewCertReloader(o.certFile, o.keyFile)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	server := webhook.NewServer(webhook.NewHandler(injector, logger), certs, logger)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return watcher.Run(ctx) })
	g.Go(func() error { return server.Serve(ctx, ln) })
	g.Go(func() error { return serveHealth(ctx, o.healthAddr) })
	return g.Wait()
}

// catalogRoles answers the injector from the catalog the watcher holds now.
type catalogRoles struct{ w *catalog.Watcher }

func (c catalogRoles) MaxTTL(name string) (time.Duration, bool) {
	r, ok := c.w.Current().Role(name)
	if !ok {
		return 0, false
	}
	return r.MaxTTL, true
}

// serveHealth answers /healthz and /readyz: the webhook is ready once it has a
// catalog and a key pair, which runWebhook checked before starting it.
func serveHealth(ctx context.Context, addr string) error {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) }
	mux.HandleFunc("/healthz", ok)
	mux.HandleFunc("/readyz", ok)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve health on %s: %w", addr, err)
	}
	return nil
}

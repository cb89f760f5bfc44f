package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"

	"github.com/lanyard-dev/lanyard/broker/audit"
	"github.com/lanyard-dev/lanyard/broker/authn"
	"github.com/lanyard-dev/lanyard/broker/catalog"
	"github.com/lanyard-dev/lanyard/broker/credid"
	"github.com/lanyard-dev/lanyard/broker/issuer"
	"github.com/lanyard-dev/lanyard/broker/metrics"
	"github.com/lanyard-dev/lanyard/broker/podwatch"
)

// Token validation modes of Options.TokenValidation.
const (
	ValidationTokenReview = "tokenreview"
	ValidationJWKS        = "jwks"
)

// Options are the settings of `lanyard-broker serve`.
type Options struct {
	Listen, TLSCertFile, TLSKeyFile, ClientCAFile string
	// InsecureListen, when set, serves plain gRPC on this loopback address
	// instead of TLS on Listen.
	InsecureListen string

	CatalogFile     string
	Audience        string
	TokenValidation string

	Kubeconfig       string
	KubeAPIServerURL string // for agents; default: the broker's own
	KubeCAFile       string // for agents; default: the broker's own

	Vault issuer.Config

	HealthAddr, MetricsAddr string
	AuditLog                string
	CredentialKeyFile       string

	RateLimit       float64
	RateLimitBurst  int
	ShutdownTimeout time.Duration

	// RevokeOnPodDelete revokes a pod's credentials when the pod is
	// deleted. Each replica knows only the credentials it issued itself,
	// and a restart forgets them: those then live until they expire. The
	// broker stays stateless by design.
	RevokeOnPodDelete bool
}

// Run serves the broker until ctx ends: the gRPC API, health and metrics
// endpoints, the Vault login, and the catalog watch with its Vault sync.
func Run(ctx context.Context, o Options, logger *slog.Logger) error {
	if err := o.check(); err != nil {
		return err
	}
	kube, err := newKube(o)
	if err != nil {
		return err
	}
	iss, err := issuer.New(withLogger(o.Vault, logger))
	if err != nil {
		return err
	}
	auditW, auditC, err := audit.Open(o.AuditLog)
	if err != nil {
		return err
	}
	defer auditC.Close()
	auditLog := audit.New(auditW, nil)
	m := metrics.New(DenialReasons())
	sealer, err := newSealer(o.CredentialKeyFile, logger)
	if err != nil {
		return err
	}
	cs := NewCatalogSync(iss, auditLog, m, logger, 5*time.Second)
	watcher, err := catalog.NewWatcher(o.CatalogFile, logger, cs.Loaded, cs.Rejected)
	if err != nil {
		return err
	}
	cs.Loaded(watcher.Current())
	cfg := Config{
		Authenticator: authn.NewTokenReviewer(kube.client.AuthenticationV1().TokenReviews(), o.Audience),
		Catalog:       watcher, Issuer: iss, Sealer: sealer, Facts: KubeFacts(kube.client),
		Audit: auditLog, Metrics: m, Logger: logger, APIServer: kube.agentServer,
		CACert: kube.agentCA, Limiter: NewLimiter(o.RateLimit, o.RateLimitBurst),
	}
	loops := []func(context.Context) error{iss.Run, watcher.Run, cs.Run}
	if o.RevokeOnPodDelete {
		pods, err := podwatch.New(podwatch.Config{Client: kube.meta, Revoker: iss, Logger: logger,
			Audit: auditLog, Registerer: m.Registry})
		if err != nil {
			return err
		}
		cfg.Pods = pods
		loops = append(loops, pods.Run)
	}
	svc, err := New(cfg)
	if err != nil {
		return err
	}
	ready := func() error { return readiness(watcher, iss, cs) }
	return serveAll(ctx, o, logger, svc, m, ready, loops...)
}

func (o Options) check() error {
	switch o.TokenValidation {
	case ValidationTokenReview:
	case ValidationJWKS:
		return errors.New("--token-validation jwks is not implemented yet; use tokenreview")
	default:
		return fmt.Errorf("--token-validation %q: want tokenreview or jwks", o.TokenValidation)
	}
	if o.CatalogFile == "" {
		return errors.New("--catalog is required")
	}
	if o.InsecureListen != "" {
		return CheckInsecureAddress(o.InsecureListen)
	}
	if o.TLSCertFile == "" || o.TLSKeyFile == "" {
		return errors.New("--tls-cert-file and --tls-key-file are required " +
			"(or --insecure-listen on a loopback address, for development)")
	}
	return nil
}

func withLogger(cfg issuer.Config, logger *slog.Logger) issuer.Config {
	cfg.Logger = logger
	return cfg
}

// newSealer loads the shared credential key, or makes a per-process one.
func newSealer(keyFile string, logger *slog.Logger) (*credid.Sealer, error) {
	if keyFile == "" {
		logger.Info("No --credential-key-file: credential ids are sealed with a per-process key, " +
			"so only this replica can revoke the credentials it issues")
		return credid.RandomSealer()
	}
	key, err := credid.LoadKey(keyFile)
	if err != nil {
		return nil, err
	}
	return credid.NewSealer(key)
}

func readiness(watcher CatalogSource, iss interface{ Ready() error }, cs *CatalogSync) error {
	if watcher.Current() == nil {
		return errNoCatalog
	}
	if err := iss.Ready(); err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	if !cs.Synced() {
		return errors.New("vault roles not yet synced with the catalog")
	}
	return nil
}

// serveAll opens the listeners and runs every loop as siblings: when one
// fails, the others stop.
func serveAll(
	ctx context.Context,
	o Options,
	logger *slog.Logger,
	svc *Server,
	m *metrics.Metrics,
	ready ReadyFunc,
	loops ...func(context.Context) error,
) error {
	creds, addr, err := transport(o)
	if err != nil {
		return err
	}
	lis, err := listenAll(addr, o.HealthAddr, o.MetricsAddr)
	if err != nil {
		return err
	}
	hs := health.NewServer()
	g := NewGRPCServer(svc, creds, hs, Interceptors(logger, m, nil))
	logger.Info("Broker serving", slog.String("grpc", lis[0].Addr().String()),
		slog.String("health", lis[1].Addr().String()), slog.String("metrics", lis[2].Addr().String()),
		slog.Bool("tls", creds != nil))
	eg, ctx := errgroup.WithContext(ctx)
	for _, loop := range loops {
		eg.Go(func() error { return loop(ctx) })
	}
	eg.Go(func() error { return WatchReadiness(ctx, hs, ready, 2*time.Second) })
	eg.Go(func() error { return ServeGRPC(ctx, g, lis[0], o.ShutdownTimeout) })
	eg.Go(func() error { return ServeHTTP(ctx, lis[1], HealthHandler(ready), o.ShutdownTimeout) })
	eg.Go(func() error { return ServeHTTP(ctx, lis[2], m.Handler(), o.ShutdownTimeout) })
	return eg.Wait()
}

// transport returns the gRPC credentials and address: TLS on Listen, or
// plain gRPC on the loopback InsecureListen.
func transport(o Options) (credentials.TransportCredentials, string, error) {
	if o.InsecureListen != "" {
		return nil, o.InsecureListen, nil
	}
	certs, err := NewCertReloader(o.TLSCertFile, o.TLSKeyFile)
	if err != nil {
		return nil, "", err
	}
	cfg, err := TLSConfig(certs, o.ClientCAFile)
	if err != nil {
		return nil, "", err
	}
	return credentials.NewTLS(cfg), o.Listen, nil
}

func listenAll(addrs ...string) ([]net.Listener, error) {
	var out []net.Listener
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			for _, prev := range out {
				_ = prev.Close()
			}
			return nil, fmt.Errorf("listen on %s: %w", a, err)
		}
		out = append(out, l)
	}
	return out, nil
}

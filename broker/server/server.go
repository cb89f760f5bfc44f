package server

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	"github.com/lanyard-dev/lanyard/broker/audit"
	"github.com/lanyard-dev/lanyard/broker/authn"
	"github.com/lanyard-dev/lanyard/broker/metrics"
	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

// Field names of the broker's log lines.
const (
	keyRequestID    = "request_id"
	keyMethod       = "method"
	keyCode         = "code"
	keyDurationMS   = "duration_ms"
	keyReason       = "reason"
	keyError        = "error"
	keyRole         = "role"
	keyNamespace    = "namespace"
	keyCallerNS     = "caller_namespace"
	keyCallerSA     = "caller_service_account"
	keyCallerPod    = "caller_pod"
	keyTokenID      = "token_id"
	keyCredentialID = "credential_id" //nolint:gosec // G101: a log field name
	keyLeaseID      = "lease_id"
	keyAccount      = "service_account"
	keyExpiresAt    = "expires_at"
	keyPanic        = "panic"
)

// Config is what the broker service needs. Every field but Limiter, Pods
// and Now is required.
type Config struct {
	Authenticator Authenticator
	Catalog       CatalogSource
	Issuer        Minter
	Sealer        Sealer
	Facts         FactsFunc
	Audit         *audit.Log
	Metrics       *metrics.Metrics
	Logger        *slog.Logger
	// APIServer and CACert are what agents should use to reach the
	// Kubernetes API with the credentials they receive.
	APIServer string
	CACert    []byte
	// Limiter caps Vault calls per caller pod; nil means no limit.
	Limiter *Limiter
	// Pods is told of every lease issued and revoked, so that a lease is
	// revoked when its pod is deleted; nil means leases live to expiry.
	Pods PodLeases
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server implements lanyard.v1.Broker.
type Server struct {
	// UnsafeBrokerServer, not UnimplementedBrokerServer: a new RPC in the
	// proto must fail to compile until it is implemented here.
	lanyardv1.UnsafeBrokerServer

	cfg Config
	log *slog.Logger
	now func() time.Time
}

// New checks cfg and returns the service.
func New(cfg Config) (*Server, error) {
	if cfg.Authenticator == nil || cfg.Catalog == nil || cfg.Issuer == nil ||
		cfg.Sealer == nil || cfg.Facts == nil || cfg.Audit == nil || cfg.Metrics == nil ||
		cfg.Logger == nil {
		return nil, errors.New("server config: every dependency is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now}, nil
}

// Register adds the service to g.
func (s *Server) Register(g *grpc.Server) { lanyardv1.RegisterBrokerServer(g, s) }

// authenticate reads the caller token from ctx and authenticates it.
func (s *Server) authenticate(ctx context.Context) (*authn.Caller, error) {
	t, err := authn.FromContext(ctx)
	if err != nil {
		return nil, err
	}
	return s.cfg.Authenticator.Authenticate(ctx, t)
}

// fail turns err into the gRPC status for the caller, after counting and
// logging it; ev, when not nil, is completed and written as a denial.
func (s *Server) fail(ctx context.Context, err error, ev *audit.Event) error {
	o := classify(err)
	if o.reason != "" {
		s.cfg.Metrics.Denial(o.reason)
	}
	level := slog.LevelInfo
	if o.reason == "" {
		level = slog.LevelWarn
	}
	s.log.LogAttrs(ctx, level, "Request refused",
		slog.String(keyRequestID, RequestID(ctx)),
		slog.String(keyCode, o.status.Code().String()),
		slog.String(keyReason, o.reason),
		slog.String(keyError, o.detail))
	if ev != nil {
		ev.Event = audit.CredentialDenied
		ev.Reason = o.detail
		s.audit(ctx, *ev)
	}
	return o.status.Err()
}

func (s *Server) audit(ctx context.Context, ev audit.Event) {
	if err := s.cfg.Audit.Write(ev); err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "Audit write failed", slog.String(keyError, err.Error()))
	}
}

func auditCaller(c *authn.Caller) audit.Caller {
	if c == nil {
		return audit.Caller{}
	}
	return audit.Caller{Namespace: c.Namespace, ServiceAccount: c.ServiceAccount, Pod: c.Pod,
		PodUID: c.PodUID, TokenID: c.TokenID}
}

// since returns the milliseconds elapsed from start.
func (s *Server) since(start time.Time) int64 { return s.now().Sub(start).Milliseconds() }

// timeVault records the latency of one Vault call.
func (s *Server) timeVault(op string, start time.Time) {
	s.cfg.Metrics.Vault(op, s.now().Sub(start))
}

package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

// ReadyFunc returns nil when the broker can serve, or why it cannot.
type ReadyFunc func() error

// NewGRPCServer builds the gRPC server with the broker service, the health
// service and the interceptors. creds nil means plain gRPC (loopback only;
// see CheckInsecureAddress). Reflection stays off.
func NewGRPCServer(
	svc *Server,
	creds credentials.TransportCredentials,
	hs *health.Server,
	interceptors []grpc.UnaryServerInterceptor,
) *grpc.Server {
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(interceptors...),
		grpc.MaxRecvMsgSize(64 << 10),
		// Room for a 1 MiB caller token to reach the precheck, which refuses
		// and audits it; anything larger is cut off by the transport.
		grpc.MaxHeaderListSize(2 << 20),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second}),
	}
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	g := grpc.NewServer(opts...)
	svc.Register(g)
	healthpb.RegisterHealthServer(g, hs)
	return g
}

// ServeGRPC serves g on lis until ctx ends, then lets in-flight calls finish
// for at most grace before cutting the rest.
func ServeGRPC(ctx context.Context, g *grpc.Server, lis net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() {
		g.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		g.Stop()
		<-stopped
	}
	return nil
}

// HealthHandler serves /healthz (the process is alive) and /readyz (ready
// reports nil).
func HealthHandler(ready ReadyFunc) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// ServeHTTP serves h on lis until ctx ends, then shuts down within grace.
func ServeHTTP(ctx context.Context, lis net.Listener, h http.Handler, grace time.Duration) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// WatchReadiness keeps the gRPC health status of the broker in step with
// ready, checking every interval, until ctx ends; it then reports
// NOT_SERVING so that clients move away before the server stops.
func WatchReadiness(
	ctx context.Context,
	hs *health.Server,
	ready ReadyFunc,
	every time.Duration,
) error {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		setServing(hs, ready() == nil)
		select {
		case <-ctx.Done():
			hs.Shutdown()
			return nil
		case <-ticker.C:
		}
	}
}

func setServing(hs *health.Server, ok bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	hs.SetServingStatus("", st)
	hs.SetServingStatus(lanyardv1.Broker_ServiceDesc.ServiceName, st)
}

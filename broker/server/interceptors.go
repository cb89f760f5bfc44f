package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"path"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/lanyard-dev/lanyard/broker/metrics"
)

// RequestIDHeader is the response header that carries the request id.
const RequestIDHeader = "x-request-id"

type requestIDKey struct{}

// RequestID returns the id the interceptors gave the call in ctx.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Interceptors returns the unary interceptors of the broker, outermost
// first: request id, then logging and metrics, then panic recovery, so that
// a panic is logged and counted as INTERNAL like any other failure.
func Interceptors(
	logger *slog.Logger,
	m *metrics.Metrics,
	now func() time.Time,
) []grpc.UnaryServerInterceptor {
	if now == nil {
		now = time.Now
	}
	return []grpc.UnaryServerInterceptor{
		requestIDInterceptor,
		observeInterceptor(logger, m, now),
		recoverInterceptor(logger),
	}
}

func requestIDInterceptor(
	ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler,
) (any, error) {
	id := newRequestID()
	_ = grpc.SetHeader(ctx, metadata.Pairs(RequestIDHeader, id))
	return next(context.WithValue(ctx, requestIDKey{}, id), req)
}

func observeInterceptor(
	logger *slog.Logger,
	m *metrics.Metrics,
	now func() time.Time,
) grpc.UnaryServerInterceptor {
	return func(
		ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler,
	) (any, error) {
		start := now()
		resp, err := next(ctx, req)
		elapsed := now().Sub(start)
		method := path.Base(info.FullMethod)
		code := status.Code(err).String()
		m.Request(method, code, elapsed)
		logger.LogAttrs(ctx, slog.LevelDebug, "Request handled",
			slog.String(keyRequestID, RequestID(ctx)),
			slog.String(keyMethod, method),
			slog.String(keyCode, code),
			slog.Int64(keyDurationMS, elapsed.Milliseconds()))
		return resp, err
	}
}

func recoverInterceptor(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(
		ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler,
	) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				logger.LogAttrs(ctx, slog.LevelError, "Handler panicked",
					slog.String(keyRequestID, RequestID(ctx)),
					slog.String(keyMethod, info.FullMethod),
					slog.Any(keyPanic, p),
					slog.String("stack", string(debug.Stack())))
				resp, err = nil, status.Error(codes.Internal, "internal error")
			}
		}()
		return next(ctx, req)
	}
}

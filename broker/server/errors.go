package server

import (
	"context"
	"errors"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/lanyard-dev/lanyard/broker/authn"
	"github.com/lanyard-dev/lanyard/broker/catalog"
	"github.com/lanyard-dev/lanyard/broker/credid"
	"github.com/lanyard-dev/lanyard/broker/issuer"
)

// Machine-readable causes of refusals that are neither authentication nor
// catalog decisions. With authn.Reasons and the catalog's deny codes they
// form the bounded label set of lanyard_broker_denials_total.
const (
	ReasonInvalidRequest   = "invalid_request"
	ReasonInvalidTTL       = "invalid_ttl"
	ReasonInvalidNamespace = "invalid_namespace"
	ReasonInvalidID        = "invalid_credential_id"
	ReasonNotOwner         = "not_owner"
	ReasonRateLimited      = "rate_limited"
)

// DenialReasons is every value the denial metric's reason label can take.
func DenialReasons() []string {
	reasons := []string{
		ReasonInvalidRequest, ReasonInvalidTTL, ReasonInvalidNamespace, ReasonInvalidID,
		ReasonNotOwner, ReasonRateLimited,
		string(catalog.DenyUnknownRole), string(catalog.DenyNotSubject),
		string(catalog.DenyNamespace), string(catalog.DenyPodLabels),
	}
	for _, r := range authn.Reasons {
		reasons = append(reasons, string(r))
	}
	return reasons
}

// errNoCatalog is returned while no catalog has been loaded.
var errNoCatalog = errors.New("no catalog loaded")

// refusal is a request the broker turns down on purpose.
type refusal struct {
	code   codes.Code
	reason string        // bounded label, see DenialReasons
	msg    string        // for the caller, the log and the audit event
	retry  time.Duration // RESOURCE_EXHAUSTED only
}

func (r *refusal) Error() string { return r.msg }

func refuse(code codes.Code, reason, msg string) error {
	return &refusal{code: code, reason: reason, msg: msg}
}

// outcome is what one error means for the caller, the metrics and the audit.
type outcome struct {
	status *status.Status
	// reason is the bounded denial label; empty when the error is no denial.
	reason string
	// detail is for the log and the audit event; it never holds a token.
	detail string
}

// classify is the one place that maps internal errors to gRPC codes, as
// SPEC lists them. Authentication failures get a generic message; refusals
// by the catalog say which role and why.
func classify(err error) outcome {
	var r *refusal
	if errors.As(err, &r) {
		return outcome{status: refusalStatus(r), reason: r.reason, detail: r.msg}
	}
	if reason, ok := authn.ReasonOf(err); ok {
		return outcome{status: status.New(codes.Unauthenticated, "authentication failed"),
			reason: string(reason), detail: err.Error()}
	}
	switch {
	case errors.Is(err, issuer.ErrUnavailable):
		return failure(codes.Unavailable, "vault is unavailable; retry later", err)
	case errors.Is(err, errNoCatalog):
		return failure(codes.Unavailable, "the broker is not ready; retry later", err)
	case errors.Is(err, authn.ErrUnavailable):
		return failure(codes.Unavailable, "the kubernetes api is unavailable; retry later", err)
	case errors.Is(err, credid.ErrInvalid):
		return outcome{status: status.New(codes.InvalidArgument,
			"credential id is malformed or was not issued by this broker"),
			reason: ReasonInvalidID, detail: err.Error()}
	case errors.Is(err, context.Canceled):
		return failure(codes.Canceled, "request canceled", err)
	case errors.Is(err, context.DeadlineExceeded):
		return failure(codes.DeadlineExceeded, "deadline exceeded", err)
	}
	return failure(codes.Internal, "internal error", err)
}

func failure(code codes.Code, msg string, err error) outcome {
	return outcome{status: status.New(code, msg), detail: err.Error()}
}

func refusalStatus(r *refusal) *status.Status {
	st := status.New(r.code, r.msg)
	if r.retry <= 0 {
		return st
	}
	withRetry, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(r.retry)})
	if err != nil {
		return st
	}
	return withRetry
}

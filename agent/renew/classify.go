package renew

import (
	"errors"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Class says what the agent does about a failure.
type Class int

const (
	// Transient failures (broker or Vault unreachable, deadline, caller token
	// refused while the kubelet rotates it) are retried with backoff.
	Transient Class = iota
	// RateLimited failures are retried no sooner than the broker asks.
	RateLimited
	// Refused failures (the catalog refuses the role, the role does not
	// exist, the request is invalid) need a human: `once` gives up and `run`
	// retries slowly, because the catalog may change.
	Refused
	// Local failures happen before the broker is reached (the caller token
	// cannot be read) or after (the files cannot be written): `once` gives
	// up, `run` retries with backoff.
	Local
)

// LocalError marks a failure on the agent's side.
type LocalError struct{ Err error }

// Error returns the cause's message.
func (e *LocalError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *LocalError) Unwrap() error { return e.Err }

// Classify returns what to do about err and, for RateLimited, the delay the
// broker asked for.
func Classify(err error) (Class, time.Duration) {
	var local *LocalError
	if errors.As(err, &local) {
		return Local, 0
	}
	st, ok := status.FromError(err)
	if !ok {
		return Transient, 0
	}
	switch st.Code() {
	case codes.PermissionDenied, codes.NotFound, codes.InvalidArgument,
		codes.FailedPrecondition, codes.Unimplemented:
		return Refused, 0
	case codes.ResourceExhausted:
		return RateLimited, retryDelay(st)
	default:
		return Transient, 0
	}
}

// retryDelay returns the delay of the status's RetryInfo detail, or zero.
func retryDelay(st *status.Status) time.Duration {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.RetryInfo); ok && info.GetRetryDelay() != nil {
			return info.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

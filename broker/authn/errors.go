package authn

import (
	"errors"
	"fmt"
)

// Reason is a machine-readable cause of an authentication failure. The set
// is fixed, so it is safe as a metric label.
type Reason string

// The reasons an authentication fails.
const (
	ReasonMissingToken      Reason = "missing_token"
	ReasonMalformedToken    Reason = "malformed_token"
	ReasonOversizedToken    Reason = "oversized_token"
	ReasonTokenRejected     Reason = "token_rejected"
	ReasonWrongAudience     Reason = "wrong_audience"
	ReasonNotServiceAccount Reason = "not_service_account"
	ReasonNotPodBound       Reason = "not_pod_bound"
	ReasonPodGone           Reason = "pod_gone"
)

// Reasons lists every Reason, for metric label sets.
var Reasons = []Reason{
	ReasonMissingToken, ReasonMalformedToken, ReasonOversizedToken, ReasonTokenRejected,
	ReasonWrongAudience, ReasonNotServiceAccount, ReasonNotPodBound, ReasonPodGone,
}

// Error is a refused caller. Its text is for the broker's log and audit
// trail and never contains the token; callers get only a generic message.
type Error struct {
	Reason Reason
	Detail string
}

// Error describes the failure for operators.
func (e *Error) Error() string {
	return fmt.Sprintf("authentication failed: %s: %s", e.Reason, e.Detail)
}

func fail(reason Reason, detail string) error {
	return &Error{Reason: reason, Detail: detail}
}

// Fail returns an *Error, for authenticators outside this package and for
// checks made after authentication (such as the pod having been replaced).
func Fail(reason Reason, detail string) error { return fail(reason, detail) }

// ErrUnavailable marks failures to reach the Kubernetes API, which say
// nothing about the caller: the caller should retry.
var ErrUnavailable = errors.New("kubernetes api unavailable")

// ReasonOf returns the reason of an authentication failure, and false for
// any other error.
func ReasonOf(err error) (Reason, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason, true
	}
	return "", false
}

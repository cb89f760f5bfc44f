package renew

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/lanyard-dev/lanyard/agent/credential"
)

// Issuer issues and revokes credentials; the broker client is one.
type Issuer interface {
	Issue(ctx context.Context) (credential.Credential, error)
	Revoke(ctx context.Context, id string) error
}

// Publisher makes a credential visible to the app; the writer is one. An error
// means the credential was not published, unless it (or one it wraps) has a
// method Published() bool that returns true: then the credential is current
// and the error only a warning, as the writer's CleanupError is.
type Publisher interface {
	Publish(c credential.Credential) error
	Clear() error
}

// Observer is told what happens, for health and metrics.
type Observer interface {
	Published(c credential.Credential)
	RefreshFailed()
}

// Clock is the time source of the runner; tests use a fake one so that they
// never sleep through a lifetime.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

// After waits for d to elapse.
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Log field names.
const (
	logCredentialID = "credential_id" //nolint:gosec // G101: a log field name, not a secret
	logExpiresAt    = "expires_at"
	logRefreshAt    = "refresh_at"
	logRetryIn      = "retry_in"
	logAttempt      = "attempt"
	logError        = "error"
)

// Defaults of the Runner's optional fields.
const (
	DefaultSlowRetry     = 5 * time.Minute
	DefaultRevokeTimeout = 5 * time.Second
	DefaultOnceAttempts  = 5
)

// Runner keeps one credential published. Issuer, Publisher and Clock are
// required; the rest has defaults.
type Runner struct {
	Issuer    Issuer
	Publisher Publisher
	Clock     Clock
	Observer  Observer     // optional
	Log       *slog.Logger // optional; discards when nil
	// Rand returns a number in [0, 1) for jitter; math/rand/v2's Float64 by
	// default.
	Rand func() float64
	// Backoff paces retries of transient failures; DefaultBackoff when zero.
	Backoff Backoff
	// SlowRetry paces retries of refused requests in Run.
	SlowRetry time.Duration
	// RevokeTimeout bounds each revocation, including the one at shutdown.
	RevokeTimeout time.Duration
	// OnceAttempts bounds the tries of Once for transient failures.
	OnceAttempts int
	// ClearOnExit removes the published files when Run stops.
	ClearOnExit bool
}

// publishedAnyway is an error of a publish that still made the credential
// current.
type publishedAnyway interface {
	error
	Published() bool
}

// issue issues a credential and publishes it. A credential that cannot be
// published is revoked at once, so that none is left unused; one that was
// published but left old sets behind is current, and only a warning.
func (r *Runner) issue(ctx context.Context) (credential.Credential, error) {
	c, err := r.Issuer.Issue(ctx)
	if err != nil {
		return credential.Credential{}, err
	}
	err = r.Publisher.Publish(c)
	if warning := publishedAnyway(nil); errors.As(err, &warning) && warning.Published() {
		r.log().Warn("Old credential sets not removed", logCredentialID, c.ID, logError, err.Error())
		err = nil
	}
	if err != nil {
		r.revoke(ctx, c)
		return credential.Credential{}, &LocalError{fmt.Errorf("publish credential: %w", err)}
	}
	return c, nil
}

// revoke revokes c within RevokeTimeout, even when ctx is already cancelled
// (a SIGTERM must not leave a replaced credential alive). A failure is
// logged: the credential then dies at its expiry.
func (r *Runner) revoke(ctx context.Context, c credential.Credential) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.revokeTimeout())
	defer cancel()
	if err := r.Issuer.Revoke(ctx, c.ID); err != nil {
		r.log().Warn("Credential revocation failed", logCredentialID, c.ID,
			logExpiresAt, c.ExpiresAt, logError, err.Error())
		return
	}
	r.log().Info("Credential revoked", logCredentialID, c.ID)
}

// Once issues and publishes one credential, retrying transient failures a
// few times. It never revokes: the credential outlives the process.
func (r *Runner) Once(ctx context.Context) (credential.Credential, error) {
	for attempt := 0; ; attempt++ {
		c, err := r.issue(ctx)
		if err == nil {
			r.published(c)
			return c, nil
		}
		class, hint := Classify(err)
		if class == Refused || class == Local || attempt+1 >= r.onceAttempts() {
			return credential.Credential{}, err
		}
		wait := max(r.backoff().Delay(attempt, r.rand()), hint)
		r.log().Warn("Credential issue failed", logAttempt, attempt+1, logRetryIn, wait,
			logError, err.Error())
		select {
		case <-ctx.Done():
			return credential.Credential{}, errors.Join(err, ctx.Err())
		case <-r.Clock.After(wait):
		}
	}
}

// Run keeps a credential published until ctx is cancelled, then revokes it
// with a fresh, bounded context. It returns nil after a clean shutdown.
func (r *Runner) Run(ctx context.Context) error {
	var current *credential.Credential
	failures := 0
	for {
		var wait time.Duration
		next, err := r.issue(ctx)
		switch {
		case err == nil:
			r.replace(ctx, current, next)
			current, failures = &next, 0
			wait = NextRefresh(next.IssuedAt, next.ExpiresAt, r.rand()).Sub(next.IssuedAt)
			r.log().Info("Credential published", logCredentialID, next.ID,
				logExpiresAt, next.ExpiresAt, logRefreshAt, r.Clock.Now().Add(wait))
		case ctx.Err() != nil:
			return r.shutdown(ctx, current)
		default:
			wait = r.retryDelay(err, failures, current)
			failures++
		}
		select {
		case <-ctx.Done():
			return r.shutdown(ctx, current)
		case <-r.Clock.After(wait):
		}
	}
}

// replace records that next is published and revokes old, which no reader
// can pick up any more.
func (r *Runner) replace(ctx context.Context, old *credential.Credential, next credential.Credential) {
	r.published(next)
	if old != nil {
		r.revoke(ctx, *old)
	}
}

func (r *Runner) published(c credential.Credential) {
	if r.Observer != nil {
		r.Observer.Published(c)
	}
	r.log().Debug("Credential issued", logCredentialID, c.ID, logExpiresAt, c.ExpiresAt)
}

// shutdown revokes the current credential and clears the files if asked.
// The revocation gets a context of its own: ctx is already cancelled.
func (r *Runner) shutdown(ctx context.Context, current *credential.Credential) error {
	r.log().Info("Agent stopping")
	if current != nil {
		r.revoke(ctx, *current)
	}
	if r.ClearOnExit {
		if err := r.Publisher.Clear(); err != nil {
			return err
		}
		r.log().Info("Credential files cleared")
	}
	return nil
}

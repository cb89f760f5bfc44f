package renew

import (
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/lanyard-dev/lanyard/agent/credential"
)

// retryDelay logs a failed issue and returns how long to wait before the
// next try. failures counts the failures since the last success.
func (r *Runner) retryDelay(err error, failures int, current *credential.Credential) time.Duration {
	if r.Observer != nil {
		r.Observer.RefreshFailed()
	}
	class, hint := Classify(err)
	wait := r.backoff().Delay(failures, r.rand())
	switch class {
	case Refused:
		wait = r.slowRetry()
		r.log().Error("Credential refused by the broker", logRetryIn, wait, logError, err.Error())
	case RateLimited:
		wait = max(wait, hint)
		r.log().Warn("Credential issue rate limited", logRetryIn, wait, logError, err.Error())
	default:
		r.log().Warn("Credential issue failed", logAttempt, failures+1, logRetryIn, wait,
			logError, err.Error())
	}
	// Waiting past the expiry of the credential still in use helps nobody:
	// try once more just before it expires.
	if current != nil {
		left := current.ExpiresAt.Sub(r.Clock.Now())
		if left >= r.backoff().Base && wait > left {
			wait = left
		}
	}
	return wait
}

func (r *Runner) rand() float64 {
	if r.Rand != nil {
		return r.Rand()
	}
	return rand.Float64() //nolint:gosec // G404: jitter needs no secret randomness
}

func (r *Runner) backoff() Backoff {
	if r.Backoff == (Backoff{}) {
		return DefaultBackoff
	}
	return r.Backoff
}

func (r *Runner) slowRetry() time.Duration {
	if r.SlowRetry > 0 {
		return r.SlowRetry
	}
	return DefaultSlowRetry
}

func (r *Runner) revokeTimeout() time.Duration {
	if r.RevokeTimeout > 0 {
		return r.RevokeTimeout
	}
	return DefaultRevokeTimeout
}

func (r *Runner) onceAttempts() int {
	if r.OnceAttempts > 0 {
		return r.OnceAttempts
	}
	return DefaultOnceAttempts
}

func (r *Runner) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.New(slog.DiscardHandler)
}

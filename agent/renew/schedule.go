// Package renew keeps a credential published: it issues one, re-issues it
// before it expires, revokes the one it replaced, and retries failures
// without ever spinning.
package renew

import (
	"math"
	"time"
)

// The window of a credential's lifetime in which it is re-issued. Vault's
// Kubernetes tokens cannot be renewed, so the agent asks for a new one while
// the current one has a quarter to two fifths of its life left: late enough
// not to waste credentials, early enough to ride out a broker outage, and
// spread so that pods started together do not re-issue together.
const (
	refreshFrom  = 0.60
	refreshUntil = 0.75
)

// NextRefresh returns when to re-issue a credential valid from issuedAt to
// expiresAt: at 60% of its lifetime plus r (in [0, 1)) times 15%.
func NextRefresh(issuedAt, expiresAt time.Time, r float64) time.Time {
	r = math.Min(math.Max(r, 0), 1)
	lifetime := expiresAt.Sub(issuedAt)
	frac := refreshFrom + r*(refreshUntil-refreshFrom)
	return issuedAt.Add(time.Duration(frac * float64(lifetime)))
}

// Backoff is a jittered exponential backoff: attempt n waits between half and
// all of min(Base*2^n, Max).
type Backoff struct {
	Base time.Duration
	Max  time.Duration
}

// DefaultBackoff retries after about 1 s, doubling up to a minute.
var DefaultBackoff = Backoff{Base: time.Second, Max: time.Minute}

// Delay returns the wait before retry number attempt (0 for the first
// retry), jittered by r in [0, 1).
func (b Backoff) Delay(attempt int, r float64) time.Duration {
	d := b.Max
	if attempt < 32 && b.Base<<attempt < b.Max && b.Base<<attempt > 0 {
		d = b.Base << attempt
	}
	r = math.Min(math.Max(r, 0), 1)
	return d/2 + time.Duration(r*float64(d/2))
}

package server

import (
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
)

// Limiter is a token bucket per caller pod in front of Vault. Vault's
// Kubernetes secrets engine serves only a few credentials per second, so one
// misbehaving pod must not take them all.
type Limiter struct {
	every rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// idleAfter is how long an unused bucket is kept; a full bucket is the same
// as no bucket, so dropping it changes nothing.
const idleAfter = 10 * time.Minute

// NewLimiter allows each caller perSecond requests per second on average and
// burst at once. perSecond <= 0 disables limiting.
func NewLimiter(perSecond float64, burst int) *Limiter {
	if perSecond <= 0 {
		return &Limiter{every: rate.Inf}
	}
	return &Limiter{every: rate.Limit(perSecond), burst: max(burst, 1), buckets: map[string]*bucket{}}
}

// Allow takes a token for caller at now, or returns a RESOURCE_EXHAUSTED
// refusal that says how long to wait.
func (l *Limiter) Allow(caller string, now time.Time) error {
	if l == nil || l.every == rate.Inf {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b, ok := l.buckets[caller]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.every, l.burst)}
		l.buckets[caller] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	delay := r.DelayFrom(now)
	if delay == 0 {
		return nil
	}
	r.CancelAt(now)
	delay = time.Duration(math.Ceil(delay.Seconds())) * time.Second
	return &refusal{
		code:   codes.ResourceExhausted,
		reason: ReasonRateLimited,
		msg:    fmt.Sprintf("too many requests from this pod; retry in %s", delay),
		retry:  delay,
	}
}

func (l *Limiter) sweep(now time.Time) {
	if now.Sub(l.swept) < idleAfter {
		return
	}
	l.swept = now
	for k, b := range l.buckets {
		if now.Sub(b.seen) > idleAfter {
			delete(l.buckets, k)
		}
	}
}

package server

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

func TestLimiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type step struct {
		caller string
		at     time.Duration
		retry  time.Duration // 0 = allowed
	}
	cases := []struct {
		name  string
		rate  float64
		burst int
		steps []step
	}{
		{"a burst is allowed, then the caller waits", 1, 2, []step{
			{"a", 0, 0}, {"a", 0, 0}, {"a", 0, time.Second}, {"a", time.Second, 0},
		}},
		{"callers have buckets of their own", 1, 1, []step{
			{"a", 0, 0}, {"b", 0, 0}, {"a", 0, time.Second}, {"b", 0, time.Second},
		}},
		{"a refused call costs nothing", 1, 1, []step{
			{"a", 0, 0}, {"a", 0, time.Second}, {"a", 500 * time.Millisecond, time.Second},
			{"a", time.Second, 0},
		}},
		{"a slow rate asks for a longer wait", 0.1, 1, []step{
			{"a", 0, 0}, {"a", time.Second, 9 * time.Second},
		}},
		{"a zero rate disables limiting", 0, 0, []step{
			{"a", 0, 0}, {"a", 0, 0}, {"a", 0, 0},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := NewLimiter(c.rate, c.burst)
			for i, s := range c.steps {
				err := l.Allow(s.caller, t0.Add(s.at))
				var got time.Duration
				var r *refusal
				if errors.As(err, &r) {
					if r.code != codes.ResourceExhausted {
						t.Fatalf("step %d: code %v", i, r.code)
					}
					got = r.retry
				}
				if got != s.retry {
					t.Errorf("step %d (%s at %v): retry = %v, want %v", i, s.caller, s.at, got, s.retry)
				}
			}
		})
	}
}

func TestLimiterForgetsIdleCallers(t *testing.T) {
	l := NewLimiter(1, 1)
	t0 := time.Unix(1000, 0)
	_ = l.Allow("a", t0)
	_ = l.Allow("b", t0.Add(2*idleAfter))
	if _, ok := l.buckets["a"]; ok {
		t.Error("idle caller a is still tracked")
	}
	if len(l.buckets) != 1 {
		t.Errorf("buckets = %d, want 1", len(l.buckets))
	}
}

func TestNilLimiterAllowsEverything(t *testing.T) {
	var l *Limiter
	if err := l.Allow("a", time.Now()); err != nil {
		t.Errorf("nil limiter refused: %v", err)
	}
}

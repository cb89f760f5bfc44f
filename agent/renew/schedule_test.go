package renew

import (
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestNextRefreshFallsBetween60And75PercentOfTheLifetime(t *testing.T) {
	issued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	expires := issued.Add(100 * time.Minute)
	cases := []struct {
		name string
		r    float64
		want time.Duration
	}{
		{"the lowest draw refreshes at 60%", 0, 60 * time.Minute},
		{"a middle draw refreshes in between", 0.5, 67*time.Minute + 30*time.Second},
		{"the highest draw stays below 75%", 0.999999, 75 * time.Minute},
		{"a draw out of range is clamped", 7, 75 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := NextRefresh(issued, expires, tc.r).Sub(issued)
			if diff := got - tc.want; diff > time.Millisecond || diff < -time.Millisecond {
				t.Errorf("NextRefresh() = +%v, want +%v", got, tc.want)
			}
		})
	}
}

func TestBackoffDoublesToItsCapWithJitter(t *testing.T) {
	b := Backoff{Base: time.Second, Max: time.Minute}
	cases := []struct {
		name     string
		attempt  int
		r        float64
		min, max time.Duration
	}{
		{"the first retry waits half a second to a second", 0, 0, 500 * time.Millisecond, time.Second},
		{"the fourth retry waits four to eight seconds", 3, 0.99, 4 * time.Second, 8 * time.Second},
		{"late retries stay under the cap", 10, 0.99, 30 * time.Second, time.Minute},
		{"huge attempt numbers do not overflow", 400, 0.5, 30 * time.Second, time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := b.Delay(tc.attempt, tc.r); got < tc.min || got > tc.max {
				t.Errorf("Delay(%d) = %v, want within [%v, %v]", tc.attempt, got, tc.min, tc.max)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	limited, err := status.New(codes.ResourceExhausted, "slow down").WithDetails(
		&errdetails.RetryInfo{RetryDelay: durationpb.New(42 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		err   error
		class Class
		hint  time.Duration
	}{
		{"an unreachable broker is transient", status.Error(codes.Unavailable, "x"), Transient, 0},
		{"a deadline is transient", status.Error(codes.DeadlineExceeded, "x"), Transient, 0},
		{"a refused caller token is transient while it rotates",
			status.Error(codes.Unauthenticated, "x"), Transient, 0},
		{"a denied role is refused", status.Error(codes.PermissionDenied, "x"), Refused, 0},
		{"an unknown role is refused", status.Error(codes.NotFound, "x"), Refused, 0},
		{"a bad ttl is refused", status.Error(codes.InvalidArgument, "x"), Refused, 0},
		{"rate limiting carries the broker's delay", limited.Err(), RateLimited, 42 * time.Second},
		{"an unreadable token file is local", &LocalError{errString("x")}, Local, 0},
		{"an error without a status is transient", errString("x"), Transient, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			class, hint := Classify(tc.err)
			if class != tc.class || hint != tc.hint {
				t.Errorf("Classify() = %v, %v; want %v, %v", class, hint, tc.class, tc.hint)
			}
		})
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// Package agenttest provides fakes for testing the agent: a clock that tests
// move by hand and a broker served over real gRPC with TLS.
package agenttest

import (
	"sync"
	"time"
)

// Clock is a fake clock. Time moves only when the test calls Advance or
// FireNext; a test waits for the code under test to block with NextTimer.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []timer
	added  chan struct{}
}

type timer struct {
	at time.Time
	ch chan time.Time
}

// NewClock returns a clock reading now.
func NewClock(now time.Time) *Clock {
	return &Clock{now: now, added: make(chan struct{}, 1)}
}

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives once the clock reaches now + d.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, timer{at: c.now.Add(d), ch: ch})
	select {
	case c.added <- struct{}{}:
	default:
	}
	return ch
}

// Pending returns the number of timers not yet fired.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// NextTimer waits until a timer is pending, up to limit of real time, and
// returns the earliest deadline; ok is false on timeout.
func (c *Clock) NextTimer(limit time.Duration) (at time.Time, ok bool) {
	deadline := time.After(limit)
	for {
		c.mu.Lock()
		if len(c.timers) > 0 {
			at = c.timers[0].at
			for _, t := range c.timers[1:] {
				if t.at.Before(at) {
					at = t.at
				}
			}
			c.mu.Unlock()
			return at, true
		}
		c.mu.Unlock()
		select {
		case <-c.added:
		case <-deadline:
			return time.Time{}, false
		}
	}
}

// Advance moves the clock by d and fires every timer due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.now) {
			kept = append(kept, t)
			continue
		}
		t.ch <- c.now
	}
	c.timers = kept
}

// FireNext waits for the next timer, moves the clock to its deadline and
// fires it; it returns the wait the timer asked for, and false on timeout.
func (c *Clock) FireNext(limit time.Duration) (time.Duration, bool) {
	at, ok := c.NextTimer(limit)
	if !ok {
		return 0, false
	}
	d := at.Sub(c.Now())
	c.Advance(d)
	return d, true
}

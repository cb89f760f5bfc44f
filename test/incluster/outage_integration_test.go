//go:build integration

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanyard-dev/lanyard/agent"
	"github.com/lanyard-dev/lanyard/agent/agenttest"
	"github.com/lanyard-dev/lanyard/agent/brokerclient"
	"github.com/lanyard-dev/lanyard/agent/renew"
	"github.com/lanyard-dev/lanyard/test/brokertest"
)

// TestBrokerOutageKeepsTheCredentialWithoutBusyLooping stops the real broker
// right after the agent's first credential and keeps it down, in fake time,
// for longer than the refresh interval. The agent (agent.Run with a fake
// clock, reaching the broker through a proxy that counts connections) must
// keep the valid credential published and ready, retry with growing waits,
// and recover once the broker is back.
func TestBrokerOutageKeepsTheCredentialWithoutBusyLooping(t *testing.T) {
	sc := newScene(t, "outage")
	proxy := brokertest.StartProxy(t, sc.broker.Addr)
	out := filepath.Join(t.TempDir(), "creds")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	health := "http://" + l.Addr().String()
	clock := agenttest.NewClock(time.Now())
	cfg := agent.Config{OutputDir: out, Broker: brokerclient.Options{Addr: proxy.Addr,
		CAFile: sc.broker.CAFile, TokenFile: sc.caller.TokenFile, Role: brokertest.RolePodReader}}
	deps := agent.Deps{Clock: clock, HealthListener: l, Rand: func() float64 { return 0.5 }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx, cfg, deps) }()
	stop := sync.OnceValue(func() error { cancel(); return <-done })
	defer func() { _ = stop() }()

	refreshAt, ok := clock.NextTimer(time.Minute)
	if !ok {
		t.Fatal("the agent never published a first credential")
	}
	first := sc.publishedToken(t, out)
	refreshInterval := refreshAt.Sub(clock.Now())

	sc.broker.Stop(t)
	conns, start, startReal := proxy.Connections(), clock.Now(), time.Now()
	waits := outage(t, clock, refreshInterval+time.Minute)
	conns, realElapsed := proxy.Connections()-conns, time.Since(startReal)
	t.Logf("broker down for %s of fake time (refresh interval %s, %s real): %d attempts "+
		"after waits %v, %d connections", clock.Now().Sub(start).Round(time.Second),
		refreshInterval.Round(time.Second), realElapsed.Round(time.Second), len(waits), waits, conns)
	assertBackoff(t, waits[1:], renew.DefaultBackoff)
	if limit := 2*int64(len(waits)) + int64(realElapsed/time.Second) + 5; conns > limit {
		t.Errorf("%d connections to the stopped broker in %s, want at most %d", conns,
			realElapsed.Round(time.Second), limit)
	}
	assertQuiet(t, proxy, 3*time.Second)
	if got := sc.publishedToken(t, out); got != first {
		t.Fatal("the published credential changed while the broker was down")
	}
	listPods(t, sc.stack, first, sc.ns)
	assertHealth(t, health, http.StatusOK, fmt.Sprintf("lanyard_agent_refresh_failures_total %d",
		len(waits)))

	sc.broker.Start(t)
	second := recoverAfterOutage(t, clock, sc, out, first)
	listPods(t, sc.stack, second, sc.ns)
	assertHealth(t, health, http.StatusOK, "")
	waitRefused(t, sc.stack, first, sc.ns)
	if err := stop(); err != nil {
		t.Errorf("agent.Run() = %v", err)
	}
}

// outage fires the agent's timers while the broker is down until length of
// fake time has passed, checking after each failed attempt that the agent
// stays ready. It returns the wait before each attempt, the first being the
// refresh point.
func outage(t *testing.T, clock *agenttest.Clock, length time.Duration) []time.Duration {
	t.Helper()
	start := clock.Now()
	var waits []time.Duration
	for clock.Now().Sub(start) < length {
		if len(waits) > 100 {
			t.Fatalf("more than 100 attempts in %s of fake time: %v", length, waits)
		}
		d, ok := clock.FireNext(time.Minute)
		if !ok {
			t.Fatalf("attempt %d: the agent set no timer", len(waits)+1)
		}
		waits = append(waits, d)
	}
	if _, ok := clock.NextTimer(time.Minute); !ok { // the last attempt has failed
		t.Fatal("the agent set no timer after its last attempt")
	}
	return waits
}

// assertBackoff checks that the waits between retries never shrink, never
// drop below half the backoff's base, and reach its cap only by doubling.
func assertBackoff(t *testing.T, waits []time.Duration, b renew.Backoff) {
	t.Helper()
	if len(waits) < 3 {
		t.Fatalf("only %d retries: the outage was too short to judge the backoff", len(waits))
	}
	for i, w := range waits {
		if w < b.Base/2 || w > b.Max {
			t.Errorf("retry %d waited %s, want within [%s, %s]", i+1, w, b.Base/2, b.Max)
		}
		if i > 0 && w < waits[i-1] {
			t.Errorf("retry %d waited %s, less than the %s before it", i+1, w, waits[i-1])
		}
	}
}

// assertQuiet holds the fake clock still for a moment of real time, in which
// the agent may not try the stopped broker on its own: only gRPC's
// reconnects, which back off from a second, may reach the proxy.
func assertQuiet(t *testing.T, proxy *brokertest.Proxy, quiet time.Duration) {
	t.Helper()
	before := proxy.Connections()
	time.Sleep(quiet)
	if n := proxy.Connections() - before; n > int64(quiet/time.Second)+2 {
		t.Errorf("%d connections in %s without a timer firing: the agent is looping", n, quiet)
	}
}

// recoverAfterOutage fires the agent's retries, giving its connection a
// moment of real time to come back between them, until it publishes a new
// credential; it returns the new token.
func recoverAfterOutage(
	t *testing.T,
	clock *agenttest.Clock,
	sc *scene,
	out, old string,
) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if _, ok := clock.FireNext(time.Minute); !ok {
			t.Fatal("the agent set no timer")
		}
		if _, ok := clock.NextTimer(time.Minute); !ok {
			t.Fatal("the agent did not settle after a retry")
		}
		if got := sc.publishedToken(t, out); got != old {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatal("no new credential a minute after the broker came back")
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// assertHealth checks /readyz and, when metric is set, that /metrics has it.
func assertHealth(t *testing.T, base string, wantReady int, metric string) {
	t.Helper()
	if code, _ := get(t, base+"/readyz"); code != wantReady {
		t.Errorf("/readyz = %d, want %d", code, wantReady)
	}
	if metric == "" {
		return
	}
	if _, body := get(t, base+"/metrics"); !strings.Contains(body, metric) {
		t.Errorf("/metrics lacks %q:\n%s", metric, body)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

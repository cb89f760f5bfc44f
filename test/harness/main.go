package harness

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

var shared *Stack

// Main starts one stack for a package's tests and stops it afterwards; call
// it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(harness.Main(m, harness.Options{})) }
//
// An interrupt (SIGINT, SIGTERM) stops the stack before the binary exits, and
// the kernel kills the servers if the test binary dies any other way.
func Main(m *testing.M, opts Options) int {
	stopOnSignal()
	s, err := Start(context.Background(), opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: start test stack: %v\n", err)
		return 1
	}
	shared = s
	defer s.Stop()
	return m.Run()
}

// Shared returns the stack started by Main, failing the test when there is none.
func Shared(t testing.TB) *Stack {
	t.Helper()
	if shared == nil {
		t.Fatal("harness: no shared stack; call harness.Main from TestMain")
	}
	return shared
}

// New starts a stack owned by one test and stopped in its cleanup.
func New(t testing.TB, opts Options) *Stack {
	t.Helper()
	stopOnSignal()
	s, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("harness: start test stack: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

var signalOnce = make(chan struct{}, 1)

// stopOnSignal installs, once, a handler that stops every started process
// when the test binary is interrupted, then exits.
func stopOnSignal() {
	select {
	case signalOnce <- struct{}{}:
	default:
		return
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-ch
		fmt.Fprintf(os.Stderr, "harness: %v: stopping the test stack\n", sig)
		stopAll()
		os.Exit(130)
	}()
}

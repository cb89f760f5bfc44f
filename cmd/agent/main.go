// Command lanyard-agent runs in a pod, fetches a credential from the lanyard
// broker, writes it where Kubernetes clients look for one, and re-issues it
// before it expires.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		os.Exit(1)
	}
}

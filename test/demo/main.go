// Command demo runs lanyard end to end on one machine: it starts a real
// Kubernetes control plane and Vault on loopback, configures Vault the way
// the README tells a user to, starts the broker with the example catalog, and
// shows what a pod's credential can and cannot do. `make demo` runs it.
//
// Every lanyard step uses the product's own binaries and documented commands
// (deploy/vault/setup.sh, lanyard-broker serve, lanyard-agent once and run),
// so the demo doubles as an executable walkthrough.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.BinDir, "bin", "bin", "directory holding lanyard-broker and lanyard-agent")
	flag.StringVar(&cfg.RepoRoot, "repo", ".", "root of the lanyard repository")
	flag.Parse()
	cfg.Keep = os.Getenv("DEMO_KEEP") == "1"

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		stop()
		os.Exit(1)
	}
}

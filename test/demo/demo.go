package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/lanyard-dev/lanyard/test/harness"
)

// config says where the demo finds what it runs.
type config struct {
	BinDir   string // lanyard-broker and lanyard-agent
	RepoRoot string // examples/ and deploy/
	Keep     bool   // leave everything running until interrupted
}

// demo holds the running stack and the paths of one demo run.
type demo struct {
	cfg   config
	w     io.Writer
	stack *harness.Stack
	dir   string // work directory inside the stack directory

	brokerAddr string
	brokerCA   string
	procs      []*proc
}

func (d *demo) path(name string) string { return filepath.Join(d.dir, name) }

func (d *demo) bin(name string) string { return filepath.Join(d.cfg.BinDir, name) }

func (d *demo) step(format string, args ...any) {
	fmt.Fprintf(d.w, "==> "+format+"\n", args...)
}

func run(ctx context.Context, w io.Writer, cfg config) error {
	for _, p := range []*string{&cfg.BinDir, &cfg.RepoRoot} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return fmt.Errorf("resolve %s: %w", *p, err)
		}
		*p = abs
	}
	d := &demo{cfg: cfg, w: w}
	d.step("starting etcd, kube-apiserver, kube-controller-manager and Vault on loopback")
	start := time.Now()
	stack, err := harness.Start(ctx, harness.Options{BareVault: true})
	if err != nil {
		return fmt.Errorf("start the local stack (run `make tools` first): %w", err)
	}
	d.stack = stack
	defer d.stop()
	d.dir = filepath.Join(stack.Dir, "demo")
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return fmt.Errorf("demo directory: %w", err)
	}
	fmt.Fprintf(w, "    ready in %s\n", time.Since(start).Round(time.Second))

	rows, err := d.walkthrough(ctx)
	if err != nil {
		return err
	}
	printTable(w, rows)
	failed := unexpected(rows)
	if cfg.Keep {
		// A stack that showed something unexpected is kept all the same: it
		// is what one wants to look at; the exit status still tells.
		if err := d.keep(ctx); err != nil {
			return err
		}
	}
	return failed
}

// unexpected returns an error naming the first row whose result was not the
// expected one.
func unexpected(rows []row) error {
	for _, r := range rows {
		if !r.ok {
			return fmt.Errorf("%s: %s: got %q, want %s", r.role, r.what, r.got, r.want)
		}
	}
	return nil
}

// walkthrough performs the demo's steps and returns the table rows.
func (d *demo) walkthrough(ctx context.Context) ([]row, error) {
	if err := d.configureVault(ctx); err != nil {
		return nil, err
	}
	if err := d.startBroker(ctx); err != nil {
		return nil, err
	}
	if err := d.createWorkloads(ctx); err != nil {
		return nil, err
	}
	var rows []row
	for _, part := range []func(context.Context) ([]row, error){
		d.podReader, d.viewer, d.deniedIdentity, d.revocation,
	} {
		r, err := part(ctx)
		if err != nil {
			return nil, err
		}
		rows = append(rows, r...)
	}
	return rows, nil
}

// stop ends everything the demo started. With DEMO_KEEP it runs only once keep
// has returned, on Ctrl-C, or when the demo failed before it got there.
func (d *demo) stop() {
	for i := len(d.procs) - 1; i >= 0; i-- {
		d.procs[i].stop()
	}
	d.stack.Stop()
}

// keep starts an agent that keeps a fresh pod-reader credential, prints how
// to explore the running stack, and waits for Ctrl-C.
func (d *demo) keep(ctx context.Context) error {
	tokenFile, err := d.podToken(ctx, webPod, appAccount)
	if err != nil {
		return err
	}
	live := d.path("live")
	args := append([]string{"run"}, d.agentArgs(tokenFile, podReader, live)...)
	if _, err := d.start("agent-live", d.bin("lanyard-agent"), args); err != nil {
		return err
	}
	fmt.Fprintf(d.w, "\nThe stack keeps running (DEMO_KEEP=1); press Ctrl-C to stop it.\n")
	fmt.Fprintf(d.w, "  API server    %s\n", d.stack.APIServerURL)
	fmt.Fprintf(d.w, "  Vault         %s\n", d.stack.VaultAddr)
	fmt.Fprintf(d.w, "  broker        %s (CA %s)\n", d.brokerAddr, d.brokerCA)
	fmt.Fprintf(d.w, "  files         %s\n", d.dir)
	fmt.Fprintf(d.w, "Explore as the pod, with the credential a running agent keeps fresh (pod-reader):\n")
	fmt.Fprintf(d.w, "  %s/kubectl --kubeconfig %s get pods -n team-a\n",
		d.stack.BinDir, filepath.Join(live, "kubeconfig"))
	<-ctx.Done()
	return nil
}

package main

import (
	"github.com/spf13/cobra"

	"github.com/lanyard-dev/lanyard/internal/cli"
)

// globalOptions are the flags every subcommand accepts.
type globalOptions struct {
	log cli.LogOptions
}

func newRootCommand() *cobra.Command {
	var g globalOptions
	root := &cobra.Command{
		Use:          "lanyard-agent",
		Short:        "Keep a short-lived Kubernetes credential from the lanyard broker in a pod",
		SilenceUsage: true,
	}
	g.log.AddFlags(root.PersistentFlags())
	cli.BindEnv(root)
	root.AddCommand(
		cli.NewVersionCommand("lanyard-agent"),
		newRunCommand(&g),
		newOnceCommand(&g),
	)
	return root
}

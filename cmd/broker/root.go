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
		Use:           "lanyard-broker",
		Short:         "Mint short-lived Kubernetes credentials for pods through Vault",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	g.log.AddFlags(root.PersistentFlags())
	cli.BindEnv(root)
	root.AddCommand(
		cli.NewVersionCommand("lanyard-broker"),
		newCatalogCommand(&g),
		newWebhookCommand(&g),
		newVaultCommand(&g),
		newServeCommand(&g),
	)
	return root
}

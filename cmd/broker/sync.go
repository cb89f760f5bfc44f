package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lanyard-dev/lanyard/broker/catalog"
	"github.com/lanyard-dev/lanyard/broker/issuer"
)

func newCatalogSyncCommand(g *globalOptions) *cobra.Command {
	var (
		file   string
		dryRun bool
		vf     vaultFlags
	)
	cmd := &cobra.Command{
		Use:   "sync --catalog FILE [--dry-run]",
		Short: "Make the lanyard-* Vault roles match the catalog",
		Long: "Create, update and delete the lanyard-* roles of Vault's Kubernetes secrets engine\n" +
			"so that they match the catalog, and print one line per change. Roles without the\n" +
			"lanyard- prefix are never touched. With --dry-run, print what would change.",
		Example: "  lanyard-broker catalog sync --catalog catalog.yaml --dry-run \\\n" +
			"    --vault-addr https://vault:8200 --vault-auth token --vault-token-file ~/.vault-token",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := g.log.NewLogger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			cat, err := catalog.Load(file)
			if err != nil {
				return err
			}
			cfg := vf.config()
			cfg.Logger = logger
			iss, err := issuer.New(cfg)
			if err != nil {
				return err
			}
			if err := iss.Login(cmd.Context()); err != nil {
				return err
			}
			changes, err := iss.Sync(cmd.Context(), cat, dryRun)
			for _, c := range changes {
				if _, werr := fmt.Fprintln(cmd.OutOrStdout(), syncLine(c, dryRun)); werr != nil {
					return werr
				}
			}
			if err == nil && len(changes) == 0 {
				_, err = fmt.Fprintln(cmd.ErrOrStderr(), "The lanyard roles in Vault match the catalog.")
			}
			return err
		},
	}
	cmd.Flags().StringVar(&file, "catalog", "", "role catalog file")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the changes without making them")
	_ = cmd.MarkFlagRequired("catalog")
	vf.addFlags(cmd.Flags())
	return cmd
}

func syncLine(c issuer.Change, dryRun bool) string {
	if dryRun {
		return c.String() + " (dry run)"
	}
	return c.String()
}

package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/lanyard-dev/lanyard/agent"
)

func newRunCommand(g *globalOptions) *cobra.Command {
	var f agentFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Keep a credential published, re-issue it before expiry, revoke it on exit",
		Long: "run issues a credential, writes it into --output-dir, re-issues it between 60% and 75%\n" +
			"of its lifetime and revokes the one it replaced. On SIGTERM or SIGINT it revokes the\n" +
			"current credential and exits 0. Every flag can also be set as LANYARD_<FLAG>.",
		Example: "  lanyard-agent run --broker-addr lanyard-broker.lanyard.svc:8443 \\\n" +
			"    --broker-ca-file /etc/lanyard/ca.crt --role pod-reader",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.require(); err != nil {
				return err
			}
			log, err := g.log.NewLogger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return agent.Run(cmd.Context(), f.config(), agent.Deps{Log: log})
		},
	}
	f.addFlags(cmd.Flags())
	f.addRunFlags(cmd.Flags())
	return cmd
}

func newOnceCommand(g *globalOptions) *cobra.Command {
	var f agentFlags
	cmd := &cobra.Command{
		Use:   "once",
		Short: "Issue one credential, write it and exit (for init containers and Jobs)",
		Long: "once issues a credential, writes it into --output-dir and exits 0. It never revokes:\n" +
			"the credential lives until it expires. A refusal by the broker exits 1 with its reason.",
		Example: "  lanyard-agent once --broker-addr lanyard-broker.lanyard.svc:8443 \\\n" +
			"    --broker-ca-file /etc/lanyard/ca.crt --role pod-reader --output-dir /creds",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.require(); err != nil {
				return err
			}
			log, err := g.log.NewLogger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			_, err = agent.Once(cmd.Context(), f.config(), agent.Deps{Log: log})
			return err
		},
	}
	f.addFlags(cmd.Flags())
	return cmd
}

// require checks the flags without a default.
func (f *agentFlags) require() error {
	var errs []error
	if f.brokerAddr == "" {
		errs = append(errs, errors.New("--broker-addr (or LANYARD_BROKER_ADDR) is required"))
	}
	if f.role == "" {
		errs = append(errs, errors.New("--role (or LANYARD_ROLE) is required"))
	}
	return errors.Join(errs...)
}

package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lanyard-dev/lanyard/broker/catalog"
)

// errLintFailed says that lint found problems. They are already printed, one
// a line, so the command silences cobra's own "Error:" line for it.
var errLintFailed = errors.New("catalog has problems")

// namespaceNameLabel is the label the API server sets on every namespace,
// so that a selector can name a namespace.
const namespaceNameLabel = "kubernetes.io/metadata.name"

// newCatalogCommand is the parent of the catalog subcommands; add new ones
// to its AddCommand list.
func newCatalogCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "catalog",
		Short: "Check the role catalog and explain its decisions",
		Example: "  lanyard-broker catalog lint catalog.yaml\n" +
			"  lanyard-broker catalog explain --catalog catalog.yaml --namespace team-a \\\n" +
			"    --service-account app",
		Args: cobra.NoArgs,
	}
	_ = g // for subcommands that need the global options, such as a logger
	cmd.AddCommand(
		newCatalogLintCommand(),
		newCatalogExplainCommand(),
		newCatalogSyncCommand(g),
	)
	return cmd
}

func newCatalogLintCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "lint FILE...",
		Short: "Check catalog files and print every problem",
		Long: "Check catalog files as the broker loads them. When all are valid, print a line\n" +
			"per file and exit 0; otherwise print one line per problem, naming the file, the\n" +
			"field path and what is wrong, and exit 1.",
		Example: "  lanyard-broker catalog lint catalog.yaml\n" +
			"  lanyard-broker catalog lint team-a.yaml team-b.yaml",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			ok, err := lintFiles(cmd.OutOrStdout(), files)
			if err != nil {
				return err
			}
			if !ok {
				cmd.SilenceErrors = true
				return errLintFailed
			}
			return nil
		},
	}
}

// lintFiles prints the result of checking each file and tells whether all
// were valid.
func lintFiles(w io.Writer, files []string) (bool, error) {
	allOK := true
	for _, file := range files {
		lines, ok := lintFile(file)
		allOK = allOK && ok
		for _, line := range lines {
			if _, err := fmt.Fprintln(w, line); err != nil {
				return false, err
			}
		}
	}
	return allOK, nil
}

func lintFile(file string) ([]string, bool) {
	c, err := catalog.Load(file)
	if cerr, ok := errors.AsType[*catalog.Error](err); ok {
		lines := make([]string, len(cerr.Problems))
		for i, p := range cerr.Problems {
			lines[i] = p.String()
		}
		return lines, false
	}
	if perr, ok := errors.AsType[*fs.PathError](err); ok {
		return []string{fmt.Sprintf("%s: cannot read: %v", file, perr.Err)}, false
	}
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", file, err)}, false
	}
	return []string{fmt.Sprintf("%s: ok, %d roles", file, len(c.Roles))}, true
}

type explainOptions struct {
	catalog         string
	namespace       string
	serviceAccount  string
	namespaceLabels []string
	podLabels       []string
}

func newCatalogExplainCommand() *cobra.Command {
	var o explainOptions
	cmd := &cobra.Command{
		Use:   "explain",
		Short: "Show which roles an identity may request, and why not",
		Long: "Decide every role of a catalog for one caller, as the broker would, and print\n" +
			"a table of the role, whether the caller may request it, and the reason.\n" +
			"Namespace and pod labels come from the flags; the namespace always carries\n" +
			namespaceNameLabel + "=<namespace>, as in a cluster.",
		Example: "  lanyard-broker catalog explain --catalog catalog.yaml --namespace team-a \\\n" +
			"    --service-account app --pod-label app=web --namespace-label team=a",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runExplain(cmd, o)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&o.catalog, "catalog", "", "catalog file (required)")
	flags.StringVar(&o.namespace, "namespace", "", "namespace of the caller (required)")
	flags.StringVar(&o.serviceAccount, "service-account", "",
		"service account of the caller (required)")
	flags.StringArrayVar(&o.namespaceLabels, "namespace-label", nil,
		"label key=value of the caller's namespace (repeatable)")
	flags.StringArrayVar(&o.podLabels, "pod-label", nil,
		"label key=value of the caller's pod (repeatable)")
	return cmd
}

func runExplain(cmd *cobra.Command, o explainOptions) error {
	facts, err := o.facts()
	if err != nil {
		return err
	}
	c, err := catalog.Load(o.catalog)
	if err != nil {
		return err
	}
	caller := catalog.Caller{Namespace: o.namespace, ServiceAccount: o.serviceAccount}
	decisions, err := c.Explain(cmd.Context(), caller, facts)
	if err != nil {
		return err
	}
	return writeDecisions(cmd.OutOrStdout(), decisions)
}

// facts checks the flags and turns the labels they give into facts.
func (o explainOptions) facts() (catalog.StaticFacts, error) {
	for flag, value := range map[string]string{
		"catalog": o.catalog, "namespace": o.namespace, "service-account": o.serviceAccount,
	} {
		if value == "" {
			return catalog.StaticFacts{}, fmt.Errorf("--%s is required", flag)
		}
	}
	ns, err := parseLabels("namespace-label", o.namespaceLabels)
	if err != nil {
		return catalog.StaticFacts{}, err
	}
	if _, set := ns[namespaceNameLabel]; !set {
		ns[namespaceNameLabel] = o.namespace
	}
	pod, err := parseLabels("pod-label", o.podLabels)
	if err != nil {
		return catalog.StaticFacts{}, err
	}
	return catalog.StaticFacts{Namespace: ns, Pod: pod}, nil
}

func parseLabels(flag string, values []string) (map[string]string, error) {
	labels := make(map[string]string, len(values))
	for _, v := range values {
		key, value, ok := strings.Cut(v, "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("--%s %q: want key=value", flag, v)
		}
		labels[key] = value
	}
	return labels, nil
}

func writeDecisions(w io.Writer, decisions []catalog.Decision) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "ROLE\tALLOWED\tREASON")
	for _, d := range decisions {
		allowed := "no"
		if d.Allowed {
			allowed = "yes"
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\n", d.Role, allowed, d.Reason)
	}
	return tw.Flush()
}

// Package cli holds what the lanyard commands share: build information, the
// global logging flags and the environment-variable fallback for flags.
package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Build information, set with -ldflags -X by make build.
var (
	Version = "dev"
	Commit  = "unknown"
)

// EnvPrefix prefixes the environment variable read for every flag.
const EnvPrefix = "LANYARD_"

// LogOptions are the global logging flags.
type LogOptions struct {
	Level  string
	Format string
}

// AddFlags registers --log-level and --log-format on fs.
func (o *LogOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.Format, "log-format", "json", "log format: json or text")
}

// NewLogger returns a logger writing to w as the options ask.
func (o *LogOptions) NewLogger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.Level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", o.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch o.Format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want json or text", o.Format)
	}
}

// EnvName is the environment variable that backs the flag called name.
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// ApplyEnv sets every flag of fs that was not given on the command line from
// its LANYARD_* environment variable, when that is set.
//
// Precedence is flags > environment > defaults: a flag on the command line
// always wins, the environment fills in what the command line left out, and
// the flag's default applies when neither says anything.
func ApplyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	var errs []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		v, ok := lookup(EnvName(f.Name))
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", EnvName(f.Name), err))
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("invalid environment: %s", strings.Join(errs, "; "))
	}
	return nil
}

// BindEnv makes cmd and its subcommands read unset flags from the
// environment before they run.
func BindEnv(cmd *cobra.Command) {
	prev := cmd.PersistentPreRunE
	cmd.PersistentPreRunE = func(c *cobra.Command, args []string) error {
		if err := ApplyEnv(c.Flags(), os.LookupEnv); err != nil {
			return err
		}
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
}

// NewVersionCommand returns the version subcommand of the binary called name.
func NewVersionCommand(name string) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit and Go version",
		Example: "  " + name + " version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s %s (commit %s, %s %s/%s)\n",
				name, Version, Commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}

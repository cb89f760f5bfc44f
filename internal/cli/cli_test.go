package cli

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestApplyEnvLetsFlagsBeatEnvironmentBeatDefaults(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    string
		wantErr string
	}{
		{name: "the default applies when neither says anything", want: "default"},
		{name: "the environment fills in an unset flag",
			env: map[string]string{"LANYARD_BROKER_ADDR": "env"}, want: "env"},
		{name: "a flag on the command line wins over the environment",
			args: []string{"--broker-addr=flag"}, env: map[string]string{"LANYARD_BROKER_ADDR": "env"},
			want: "flag"},
		{name: "a flag set to its default still wins",
			args: []string{"--broker-addr=default"}, env: map[string]string{"LANYARD_BROKER_ADDR": "env"},
			want: "default"},
		{name: "a malformed environment value is an error naming the variable",
			env: map[string]string{"LANYARD_COUNT": "many"}, want: "default",
			wantErr: "LANYARD_COUNT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			addr := fs.String("broker-addr", "default", "")
			fs.Int("count", 1, "")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := ApplyEnv(fs, func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if tt.wantErr == "" && err != nil {
				t.Fatalf("ApplyEnv: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("ApplyEnv error = %v, want one naming %s", err, tt.wantErr)
			}
			if *addr != tt.want {
				t.Errorf("broker-addr = %q, want %q", *addr, tt.want)
			}
		})
	}
}

func TestNewLoggerRefusesUnknownSettings(t *testing.T) {
	tests := []struct {
		name    string
		opts    LogOptions
		wantErr bool
	}{
		{name: "json at info is accepted", opts: LogOptions{Level: "info", Format: "json"}},
		{name: "text at debug is accepted", opts: LogOptions{Level: "debug", Format: "text"}},
		{name: "an unknown level is refused", opts: LogOptions{Level: "loud", Format: "json"}, wantErr: true},
		{name: "an unknown format is refused", opts: LogOptions{Level: "info", Format: "xml"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger, err := tt.opts.NewLogger(&buf)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewLogger error = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil {
				logger.Info("Hello")
				if !strings.Contains(buf.String(), "Hello") {
					t.Errorf("logger wrote %q", buf.String())
				}
			}
		})
	}
}

func TestEnvNameIsUpperSnakeCase(t *testing.T) {
	if got := EnvName("vault-token-file"); got != "LANYARD_VAULT_TOKEN_FILE" {
		t.Errorf("EnvName = %q", got)
	}
}

func TestVersionPrintsVersionCommitAndGo(t *testing.T) {
	defer func(v, c string) { Version, Commit = v, c }(Version, Commit)
	Version, Commit = "v1.2.3", "abc1234"
	cmd := NewVersionCommand("lanyard-test")
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs(nil)

	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}

	for _, want := range []string{"lanyard-test v1.2.3", "commit abc1234", runtime.Version()} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("version printed %q, want it to contain %q", out.String(), want)
		}
	}
}

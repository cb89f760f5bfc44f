package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lanyard-dev/lanyard/agent/agenttest/fakebroker"
)

const callerToken = "projected-caller-token"

type fixture struct {
	broker    *fakebroker.Broker
	ep        fakebroker.Endpoint
	tokenFile string
	dir       string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{broker: &fakebroker.Broker{}, dir: t.TempDir()}
	f.broker.SetCallerToken(callerToken)
	f.ep = fakebroker.Start(t, f.broker)
	f.tokenFile = filepath.Join(f.dir, "caller-token")
	if err := os.WriteFile(f.tokenFile, []byte(callerToken), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// execute runs the root command in-process with args and returns its output.
func execute(ctx context.Context, args ...string) (string, error) {
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// TestFlagsBeatEnvironmentBeatsDefaults runs `once` end to end: the broker
// records the role it was asked for and the files land where the winning
// setting says.
func TestFlagsBeatEnvironmentBeatsDefaults(t *testing.T) {
	cases := []struct {
		name     string
		env      map[string]string
		args     []string
		wantRole string
		wantDir  string // relative to the fixture's directory
		wantErr  string
	}{
		{name: "a flag alone is used",
			args: []string{"--role", "from-flag", "--output-dir", "{dir}/flag"}, wantRole: "from-flag",
			wantDir: "flag"},
		{name: "the environment fills in a flag not given",
			env:  map[string]string{"LANYARD_ROLE": "from-env", "LANYARD_OUTPUT_DIR": "{dir}/env"},
			args: []string{}, wantRole: "from-env", wantDir: "env"},
		{name: "a flag beats the environment",
			env:  map[string]string{"LANYARD_ROLE": "from-env", "LANYARD_OUTPUT_DIR": "{dir}/env"},
			args: []string{"--role", "from-flag", "--output-dir", "{dir}/flag"}, wantRole: "from-flag",
			wantDir: "flag"},
		{name: "an invalid environment value is named",
			env:     map[string]string{"LANYARD_TTL": "soon"},
			args:    []string{"--role", "r", "--output-dir", "{dir}/x"},
			wantErr: "LANYARD_TTL"},
		{name: "a missing role is required by name",
			args: []string{"--output-dir", "{dir}/x"}, wantErr: "--role (or LANYARD_ROLE) is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			t.Setenv("LANYARD_BROKER_ADDR", f.ep.Addr)
			t.Setenv("LANYARD_BROKER_CA_FILE", f.ep.CAFile)
			t.Setenv("LANYARD_TOKEN_FILE", f.tokenFile)
			for k, v := range tc.env {
				t.Setenv(k, strings.ReplaceAll(v, "{dir}", f.dir))
			}
			args := []string{"once", "--log-level", "error"}
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "{dir}", f.dir))
			}
			out, err := execute(context.Background(), args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q; output:\n%s", err, tc.wantErr, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("once: %v\n%s", err, out)
			}
			calls := f.broker.Calls()
			if len(calls) != 1 || calls[0].Role != tc.wantRole {
				t.Errorf("broker saw %+v, want one issue for %s", calls, tc.wantRole)
			}
			if _, err := os.Stat(filepath.Join(f.dir, tc.wantDir, "token")); err != nil {
				t.Errorf("token not written into %s: %v", tc.wantDir, err)
			}
		})
	}
}

func TestTheDefaultTokenFileIsTheProjectedOne(t *testing.T) {
	f := newFixture(t)
	_, err := execute(context.Background(), "once", "--broker-addr", f.ep.Addr,
		"--broker-ca-file", f.ep.CAFile, "--role", "r", "--output-dir", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), defaultTokenFile) {
		t.Fatalf("error = %v, want it to name %s", err, defaultTokenFile)
	}
	if strings.Contains(err.Error(), callerToken) {
		t.Error("error leaks the token")
	}
}

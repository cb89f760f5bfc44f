package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var (
	exampleCatalog = filepath.Join("..", "..", "examples", "catalog.yaml")
	brokenCatalog  = filepath.Join("..", "..", "examples", "broken-catalog.yaml")
)

// execute runs the broker's root command with args and returns its output.
func execute(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func TestCatalogLintAcceptsTheExample(t *testing.T) {
	stdout, stderr, err := execute(t, "catalog", "lint", exampleCatalog)
	if err != nil {
		t.Fatalf("lint failed: %v\n%s%s", err, stdout, stderr)
	}
	if want := exampleCatalog + ": ok, 5 roles\n"; stdout != want || stderr != "" {
		t.Errorf("stdout %q stderr %q, want %q and nothing", stdout, stderr, want)
	}
}

func TestCatalogLintReportsEveryProblem(t *testing.T) {
	stdout, stderr, err := execute(t, "catalog", "lint", brokenCatalog)
	if !errors.Is(err, errLintFailed) {
		t.Fatalf("err = %v, want errLintFailed", err)
	}
	if stderr != "" {
		t.Errorf("stderr = %q, want nothing: the problems are the report", stderr)
	}
	want := []string{
		`roles[1].name: duplicate role name "pod-reader", first declared at roles[0]`,
		"roles[2].grant: exactly one of rules, clusterRole, role, serviceAccount",
		"roles[3].grant: exactly one of rules, clusterRole, role, serviceAccount",
		`roles[4].name: invalid role name "Bad_Name": use lower case letters, digits and '-', ` +
			"starting and ending with a letter or digit",
		`roles[5].name: "a-role-name-that-is-much-too-long-for-vault-roles" is longer than 40 characters`,
		"roles[6].subjects[0].serviceAccount: unknown field",
		"roles[7].ttl: 5m is shorter than 10m, the shortest token lifetime Kubernetes issues",
		"roles[8].ttl: 2h is longer than maxTTL 1h",
		`roles[9].maxTTL: invalid duration "one hour": want a Go duration such as 10m or 1h30m`,
		"roles[10].grant.clusterWide: allowed only with rules or clusterRole",
		`roles[11].grant.namespace: required: "caller" or a namespace name`,
		"roles[12].subjects: at least one subject is required",
		"roles[13].subjects[0]: exactly one of namespace, namespaceSelector",
		`roles[14].subjects[0].serviceAccounts: at least one service account is required; "*" means any`,
		`roles[15].subjects[0].namespaceSelector.matchLabels: invalid label key "team a": ` +
			"name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end " +
			"with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', " +
			"regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
		`roles[16].subjects[0].podSelector.matchExpressions[0].operator: "Equals" is not one of ` +
			"In, NotIn, Exists, DoesNotExist",
		"roles[17].grant.rules[0].verbs: at least one verb is required",
		"roles[18].grant.audiences[0]: empty audience",
		"roles[19].grant.clusterWide: want true or false, got string",
	}
	for i := range want {
		want[i] = brokenCatalog + ": " + want[i]
	}
	if wantOut := strings.Join(want, "\n") + "\n"; stdout != wantOut {
		t.Errorf("lint printed:\n%s\nwant:\n%s", stdout, wantOut)
	}
}

func TestCatalogLintChecksEveryFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "absent.yaml")
	stdout, stderr, err := execute(t, "catalog", "lint", missing, exampleCatalog)
	if !errors.Is(err, errLintFailed) || stderr != "" {
		t.Fatalf("err = %v, stderr %q; want errLintFailed and nothing", err, stderr)
	}
	want := missing + ": cannot read: no such file or directory\n" + exampleCatalog + ": ok, 5 roles\n"
	if stdout != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}
}

func TestCatalogLintNeedsAFile(t *testing.T) {
	_, stderr, err := execute(t, "catalog", "lint")
	if err == nil || !strings.Contains(stderr, "Error:") {
		t.Errorf("err = %v, stderr %q; want a usage error that is printed", err, stderr)
	}
}

func TestCatalogExplain(t *testing.T) {
	stdout, _, err := execute(t, "catalog", "explain", "--catalog", exampleCatalog,
		"--namespace", "team-a", "--service-account", "app", "--pod-label", "app=web",
		"--namespace-label", "team=a")
	if err != nil {
		t.Fatal(err)
	}
	want := `ROLE           ALLOWED  REASON
pod-reader     yes      service account team-a/app matches subjects[0] of role pod-reader
viewer         yes      service account team-a/app matches subjects[0] of role viewer
config-editor  yes      service account team-a/app matches subjects[0] of role config-editor
reporter       yes      service account team-a/app matches subjects[0] of role reporter
node-lister    no       namespace team-a does not match any subject of role node-lister
`
	if stdout != want {
		t.Errorf("explain printed:\n%s\nwant:\n%s", stdout, want)
	}
}

func TestCatalogExplainSaysWhyNot(t *testing.T) {
	stdout, _, err := execute(t, "catalog", "explain", "--catalog", exampleCatalog,
		"--namespace", "team-b", "--service-account", "app", "--pod-label", "app=api")
	if err != nil {
		t.Fatal(err)
	}
	for _, reason := range []string{
		"namespace team-b does not match any subject of role pod-reader",
		"namespace team-b labels {kubernetes.io/metadata.name=team-b} " +
			"do not match namespaceSelector team=a of role viewer",
		"service account team-b/app is not a subject of role config-editor",
	} {
		if !strings.Contains(stdout, reason) {
			t.Errorf("explain output lacks %q:\n%s", reason, stdout)
		}
	}
}

func TestCatalogExplainRefusesBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a missing service account is named", []string{"--catalog", exampleCatalog, "--namespace", "a"},
			"--service-account is required"},
		{"a label without = is refused",
			[]string{"--catalog", exampleCatalog, "--namespace", "a", "--service-account", "b",
				"--pod-label", "app"},
			`--pod-label "app": want key=value`},
		{"a broken catalog is reported",
			[]string{"--catalog", brokenCatalog, "--namespace", "a", "--service-account", "b"},
			"invalid catalog, 19 problems"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := execute(t, append([]string{"catalog", "explain"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// mainArgsEnv makes the test binary run main with these arguments, one per
// line, so that a test can see the real exit code and streams.
const mainArgsEnv = "CATALOG_TEST_MAIN_ARGS"

func TestCatalogLintExitCodes(t *testing.T) {
	if args, ok := os.LookupEnv(mainArgsEnv); ok {
		os.Args = append([]string{"lanyard-broker"}, strings.Split(args, "\n")...)
		main()
		os.Exit(0)
	}
	tests := []struct {
		name     string
		file     string
		exitCode int
		lines    int
	}{
		{"a valid catalog exits 0 with one line", exampleCatalog, 0, 1},
		{"a broken catalog exits 1 with a line per problem", brokenCatalog, 1, 19},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestCatalogLintExitCodes$")
			cmd.Env = append(os.Environ(), mainArgsEnv+"=catalog\nlint\n"+tt.file)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if exit, ok := errors.AsType[*exec.ExitError](err); ok {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.exitCode || stderr.Len() != 0 {
				t.Errorf("exit code %d, stderr %q; want %d and nothing", code, stderr.String(), tt.exitCode)
			}
			if n := strings.Count(stdout.String(), "\n"); n != tt.lines {
				t.Errorf("%d lines on stdout, want %d:\n%s", n, tt.lines, stdout.String())
			}
		})
	}
}

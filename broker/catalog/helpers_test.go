package catalog

import (
	"errors"
	"strings"
	"testing"
)

const header = "apiVersion: lanyard.dev/v1alpha1\nkind: RoleCatalog\n"

// withRoles makes a catalog file of header and the roles YAML given.
func withRoles(roles string) []byte {
	return []byte(header + "roles:\n" + roles)
}

// okRole is a valid role in flow style, to combine with broken ones.
const okRole = "- {name: ok, subjects: [{namespace: team-a, serviceAccounts: [app]}], " +
	"grant: {namespace: caller, clusterRole: view}}\n"

// problemLines parses data and returns its problems as "path: message".
func problemLines(t *testing.T, data []byte) []string {
	t.Helper()
	_, err := Parse("f.yaml", data)
	if err == nil {
		return nil
	}
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Parse error is %T (%v), want *Error", err, err)
	}
	lines := make([]string, len(cerr.Problems))
	for i, p := range cerr.Problems {
		if p.Source != "f.yaml" {
			t.Errorf("problem %q has source %q, want f.yaml", p, p.Source)
		}
		lines[i] = strings.TrimPrefix(p.String(), "f.yaml: ")
	}
	return lines
}

// assertProblems compares problem lines; a wanted line ending in "..." matches
// any line it is a prefix of, for messages quoted from Kubernetes.
func assertProblems(t *testing.T, got, want []string) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		if prefix, cut := strings.CutSuffix(want[i], "..."); cut {
			ok = strings.HasPrefix(got[i], prefix)
		} else {
			ok = got[i] == want[i]
		}
	}
	if !ok {
		t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

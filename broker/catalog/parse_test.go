package catalog

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseFile(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []string
	}{
		{"a valid catalog has no problems", header + "roles:\n" + okRole, nil},
		{
			"an empty file lacks apiVersion, kind and roles", "",
			[]string{`apiVersion: want lanyard.dev/v1alpha1, got ""`,
				`kind: want RoleCatalog, got ""`, "roles: at least one role is required"},
		},
		{
			"an older apiVersion and another kind are named",
			"apiVersion: lanyard.dev/v1\nkind: ConfigMap\nroles:\n" + okRole,
			[]string{`apiVersion: want lanyard.dev/v1alpha1, got "lanyard.dev/v1"`,
				`kind: want RoleCatalog, got "ConfigMap"`},
		},
		{
			"an empty roles list is refused", header + "roles: []\n",
			[]string{"roles: at least one role is required"},
		},
		{
			"invalid YAML is reported with its line", header + "roles:\n  - name: [x\n",
			[]string{"invalid YAML: yaml: line 4: did not find expected ',' or ']'"},
		},
		{
			"a duplicate YAML key is refused", header + "kind: RoleCatalog\nroles:\n" + okRole,
			[]string{`invalid YAML: yaml: unmarshal errors:...`},
		},
		{
			"a list at the top is the wrong type", "- a\n- b\n",
			[]string{"want an object, got array"},
		},
		{
			"an unknown top-level field is reported", header + "role: []\nroles:\n" + okRole,
			[]string{"role: unknown field"},
		},
		{
			"a role that is not an object names its index", header + "roles:\n" + okRole + "- just-a-name\n",
			[]string{"roles[1]: want an object, got string"},
		},
		{
			"an unknown field deep in a role names its whole path",
			string(withRoles(strings.Replace(okRole, "caller", "caller, verbs: [get]", 1))),
			[]string{"roles[0].grant.verbs: unknown field"},
		},
		{
			"a wrong type in a subject names the subject",
			header + "roles:\n" + strings.Replace(okRole, "[app]", "app", 1),
			[]string{"roles[0].subjects[0].serviceAccounts: want a list, got string"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertProblems(t, problemLines(t, []byte(tt.data)), tt.want)
		})
	}
}

func TestParseRefusesAbsurdInput(t *testing.T) {
	t.Run("a file over the size limit is refused without parsing", func(t *testing.T) {
		data := append(withRoles(okRole), []byte("#"+strings.Repeat("x", MaxFileSize))...)
		assertProblems(t, problemLines(t, data),
			[]string{"file is larger than the limit of 1048576 bytes"})
	})
	t.Run("more roles than the limit are refused", func(t *testing.T) {
		data := withRoles(strings.Repeat("- {}\n", MaxRoles+1))
		assertProblems(t, problemLines(t, data),
			[]string{"roles: 1001 roles, more than the limit of 1000"})
	})
}

func TestLoadReadsExampleCatalog(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "examples", "catalog.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]GrantKind{
		"pod-reader": GrantRules, "viewer": GrantClusterRole, "config-editor": GrantRole,
		"reporter": GrantServiceAccount, "node-lister": GrantRules,
	}
	if len(c.Roles) != len(want) {
		t.Fatalf("%d roles, want %d", len(c.Roles), len(want))
	}
	for name, kind := range want {
		r, ok := c.Role(name)
		if !ok {
			t.Fatalf("role %s missing", name)
		}
		if r.Grant.Kind() != kind {
			t.Errorf("role %s grant kind %q, want %q", name, r.Grant.Kind(), kind)
		}
	}
	nodes, _ := c.Role("node-lister")
	if target := nodes.TargetNamespace("team-a"); !nodes.Grant.ClusterWide || target != "platform" {
		t.Errorf("node-lister: clusterWide %v, target %q", nodes.Grant.ClusterWide, target)
	}
	reader, _ := c.Role("pod-reader")
	if !reader.NeedsPod() || reader.NeedsNamespaceLabels() {
		t.Errorf("pod-reader: needs pod %v, needs namespace labels %v",
			reader.NeedsPod(), reader.NeedsNamespaceLabels())
	}
	if viewer, _ := c.Role("viewer"); viewer.NeedsPod() || !viewer.NeedsNamespaceLabels() {
		t.Errorf("viewer: needs pod %v, needs namespace labels %v",
			viewer.NeedsPod(), viewer.NeedsNamespaceLabels())
	}
	if editor, _ := c.Role("config-editor"); editor.TTL != MinTTL || editor.MaxTTL != MinTTL {
		t.Errorf("config-editor ttl %v maxTTL %v, want the 10m defaults", editor.TTL, editor.MaxTTL)
	}
}

func TestLoadMissingFileIsNotACatalogError(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.yaml"))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want a not-exist error", err)
	}
	if _, ok := errors.AsType[*Error](err); ok {
		t.Errorf("a read failure is reported as catalog problems: %v", err)
	}
}

func TestRoleLookupOfUnknownName(t *testing.T) {
	c, err := Parse("f.yaml", withRoles(okRole))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Role("absent"); ok {
		t.Error("Role found a role that is not there")
	}
}

func TestProblemAndErrorFormat(t *testing.T) {
	const kinds = "exactly one of rules, clusterRole, role, serviceAccount"
	one := Problem{Source: "c.yaml", Path: "roles[2].grant", Message: kinds}
	whole := Problem{Source: "c.yaml", Message: "invalid YAML: bad"}
	tests := []struct{ name, got, want string }{
		{"a problem names file, path and message", one.String(), "c.yaml: roles[2].grant: " + kinds},
		{"a problem of the whole file has no path", whole.String(), "c.yaml: invalid YAML: bad"},
		{"an error of one problem is that problem", (&Error{Problems: []Problem{whole}}).Error(),
			"invalid catalog: c.yaml: invalid YAML: bad"},
		{"an error of several problems counts them on one line",
			(&Error{Problems: []Problem{one, whole}}).Error(),
			"invalid catalog, 2 problems: c.yaml: roles[2].grant: " + kinds +
				"; c.yaml: invalid YAML: bad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Minute: "10m", time.Hour: "1h", 90 * time.Minute: "1h30m", 61 * time.Second: "1m1s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

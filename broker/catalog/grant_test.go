package catalog

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

const exactlyOne = ": exactly one of rules, clusterRole, role, serviceAccount"

func TestValidateGrants(t *testing.T) {
	tests := []struct {
		name  string
		grant string
		want  []string // after "roles[1].grant"
	}{
		{"a clusterRole grant is accepted", "{namespace: caller, clusterRole: view}", nil},
		{"a role grant in a fixed namespace is accepted",
			"{namespace: team-a, role: config-editor}", nil},
		{"a serviceAccount grant is accepted",
			"{namespace: reports, serviceAccount: reporter}", nil},
		{"a rules grant is accepted",
			`{namespace: caller, rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]}`, nil},
		{"clusterWide with rules is accepted",
			`{namespace: p, clusterWide: true, rules: [{apiGroups: [""], resources: [nodes], verbs: [list]}]}`, nil},
		{"clusterWide with clusterRole is accepted",
			"{namespace: p, clusterWide: true, clusterRole: view}", nil},
		{"a missing grant is refused", "", []string{": required"}},
		{"a grant with two kinds is refused",
			"{namespace: caller, clusterRole: view, serviceAccount: x}",
			[]string{exactlyOne}},
		{"a grant with no kind is refused", "{namespace: caller}", []string{exactlyOne}},
		{"an empty rules list is a kind that needs a rule", "{namespace: caller, rules: []}",
			[]string{".rules: at least one rule is required"}},
		{"an empty rules list next to a clusterRole is two kinds",
			"{namespace: caller, rules: [], clusterRole: view}",
			[]string{exactlyOne, ".rules: at least one rule is required"}},
		{"clusterWide with a role is refused", "{namespace: caller, role: r, clusterWide: true}",
			[]string{".clusterWide: allowed only with rules or clusterRole"}},
		{"clusterWide with a serviceAccount is refused",
			"{namespace: caller, serviceAccount: s, clusterWide: true}",
			[]string{".clusterWide: allowed only with rules or clusterRole"}},
		{"a missing grant namespace is refused", "{clusterRole: view}",
			[]string{`.namespace: required: "caller" or a namespace name`}},
		{"an invalid grant namespace is refused", "{namespace: Caller, clusterRole: view}",
			[]string{`.namespace: invalid namespace name "Caller": use at most 63 lower case letters...`}},
		{"a cluster role name with a slash is refused", "{namespace: caller, clusterRole: a/b}",
			[]string{`.clusterRole: invalid cluster role name "a/b": may not contain '/'`}},
		{"a role name of .. is refused", `{namespace: caller, role: ".."}`,
			[]string{`.role: invalid role name "..": may not be '..'`}},
		{"an invalid grant service account is refused",
			"{namespace: caller, serviceAccount: Reporter}",
			[]string{`.serviceAccount: invalid service account name "Reporter": use at most 253 lower case...`}},
		{"an empty audience is refused",
			`{namespace: caller, clusterRole: view, audiences: [vault, ""]}`,
			[]string{".audiences[1]: empty audience"}},
		{"a repeated audience is refused",
			`{namespace: caller, clusterRole: view, audiences: [a, a]}`,
			[]string{`.audiences[1]: duplicate audience "a"`}},
		{"a wrong type names the field",
			`{namespace: caller, clusterRole: view, clusterWide: "yes"}`,
			[]string{".clusterWide: want true or false, got string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			role := "- {name: r, subjects: " + teamA + "}\n"
			if tt.grant != "" {
				role = flowRole("r", teamA, tt.grant, "")
			}
			assertProblems(t, problemLines(t, withRoles(okRole+role)), prefixed("roles[1].grant", tt.want))
		})
	}
}

func TestValidateRules(t *testing.T) {
	tests := []struct {
		name        string
		rule        string
		clusterWide bool
		want        []string // after "roles[1].grant.rules[0]"
	}{
		{"a rule without verbs is refused", `{apiGroups: [""], resources: [pods]}`, false,
			[]string{".verbs: at least one verb is required"}},
		{"an empty verb is refused",
			`{apiGroups: [""], resources: [pods], verbs: [get, ""]}`, false,
			[]string{".verbs[1]: empty verb"}},
		{"a rule without resources is refused", `{apiGroups: [""], verbs: [get]}`, false,
			[]string{".resources: at least one resource is required"}},
		{"an empty resource is refused", `{apiGroups: [""], resources: [""], verbs: [get]}`, false,
			[]string{".resources[0]: empty resource"}},
		{"an empty resource name is refused",
			`{apiGroups: [""], resources: [pods], resourceNames: [""], verbs: [get]}`, false,
			[]string{".resourceNames[0]: empty resource name"}},
		{"a rule without apiGroups is refused", `{resources: [pods], verbs: [get]}`, false,
			[]string{`.apiGroups: at least one API group is required; "" is the core group`}},
		{"wildcards are accepted",
			`{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}`, false, nil},
		{"nonResourceURLs without clusterWide are refused",
			`{nonResourceURLs: [/healthz], verbs: [get]}`, false,
			[]string{".nonResourceURLs: allowed only with clusterWide: true"}},
		{"nonResourceURLs with clusterWide are accepted",
			`{nonResourceURLs: [/healthz], verbs: [get]}`, true, nil},
		{"a nonResourceURL must be a path", `{nonResourceURLs: [healthz], verbs: [get]}`, true,
			[]string{`.nonResourceURLs[0]: "healthz" does not start with /`}},
		{"nonResourceURLs with apiGroups are refused",
			`{apiGroups: [""], nonResourceURLs: [/x], verbs: [get]}`, true,
			[]string{": apiGroups and resourceNames do not apply to nonResourceURLs"}},
		{"resources and nonResourceURLs together are refused",
			`{apiGroups: [""], resources: [pods], nonResourceURLs: [/x], verbs: [get]}`, true,
			[]string{": either resources or nonResourceURLs, not both"}},
		{"an unknown rule field is refused",
			`{apiGroups: [""], resources: [pods], verb: [get]}`, false,
			[]string{".verb: unknown field",
				".verbs: at least one verb is required"}},
		{"a rule of the wrong type names its index", `[get]`, false,
			[]string{": want an object, got array"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			grant := "{namespace: caller, rules: [" + tt.rule + "]"
			if tt.clusterWide {
				grant += ", clusterWide: true"
			}
			data := withRoles(okRole + flowRole("r", teamA, grant+"}", ""))
			assertProblems(t, problemLines(t, data), prefixed("roles[1].grant.rules[0]", tt.want))
		})
	}
}

func TestGrantKindAndTarget(t *testing.T) {
	tests := []struct {
		name   string
		grant  Grant
		kind   GrantKind
		target string
	}{
		{"rules in the caller namespace",
			Grant{Namespace: "caller", Rules: make([]rbacv1.PolicyRule, 1)}, GrantRules, "team-a"},
		{"a cluster role in a fixed namespace",
			Grant{Namespace: "ops", ClusterRole: "view"}, GrantClusterRole, "ops"},
		{"a role", Grant{Namespace: "caller", Role: "r"}, GrantRole, "team-a"},
		{"a service account",
			Grant{Namespace: "reports", ServiceAccount: "s"}, GrantServiceAccount, "reports"},
		{"nothing", Grant{Namespace: "caller"}, GrantNone, "team-a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Role{Grant: tt.grant}
			if got := tt.grant.Kind(); got != tt.kind {
				t.Errorf("Kind() = %q, want %q", got, tt.kind)
			}
			if got := r.TargetNamespace("team-a"); got != tt.target {
				t.Errorf("TargetNamespace = %q, want %q", got, tt.target)
			}
		})
	}
}

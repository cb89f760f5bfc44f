package catalog

import (
	"strings"
	"testing"
	"time"
)

// flowRole writes one role in flow style from its parts.
func flowRole(name, subjects, grant, extra string) string {
	s := "- {name: " + name + ", subjects: " + subjects + ", grant: " + grant
	if extra != "" {
		s += ", " + extra
	}
	return s + "}\n"
}

const (
	teamA     = "[{namespace: team-a, serviceAccounts: [app]}]"
	viewGrant = "{namespace: caller, clusterRole: view}"
)

const tooShort = " is shorter than 10m, the shortest token lifetime Kubernetes issues"

func TestValidateRoleNames(t *testing.T) {
	long := strings.Repeat("a", 41)
	tests := []struct {
		name     string
		roleName string
		want     []string
	}{
		{"a role without a name is refused", `""`, []string{"roles[1].name: required"}},
		{"an upper-case role name is invalid", "Reader", []string{`roles[1].name: ` +
			`invalid role name "Reader": use lower case letters, digits and '-', ` +
			`starting and ending with a letter or digit`}},
		{"a role name with a dot is invalid", "pod.reader",
			[]string{`roles[1].name: invalid role name "pod.reader": use lower case letters...`}},
		{"a 41-character role name is too long", long,
			[]string{`roles[1].name: "` + long + `" is longer than 40 characters`}},
		{"a 40-character role name is accepted", strings.Repeat("a", 40), nil},
		{"a duplicate role name points at the first", "ok",
			[]string{`roles[1].name: duplicate role name "ok", first declared at roles[0]`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := withRoles(okRole + flowRole(tt.roleName, teamA, viewGrant, ""))
			assertProblems(t, problemLines(t, data), tt.want)
		})
	}
}

func TestValidateTTLs(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		want  []string
	}{
		{"a ttl below Kubernetes' minimum is refused", "ttl: 9m59s",
			[]string{"roles[1].ttl: 9m59s" + tooShort}},
		{"a maxTTL below the minimum is refused", "maxTTL: 5m",
			[]string{"roles[1].maxTTL: 5m" + tooShort}},
		{"a negative maxTTL is refused", "maxTTL: -1h",
			[]string{"roles[1].maxTTL: -1h" + tooShort}},
		{"a ttl above maxTTL is refused", "ttl: 1h, maxTTL: 30m",
			[]string{"roles[1].ttl: 1h is longer than maxTTL 30m"}},
		{"a ttl without maxTTL may be long, as maxTTL follows it", "ttl: 1h", nil},
		{"a ttl that is not a duration is refused", "ttl: 10",
			[]string{`roles[1].ttl: invalid duration "10": want a Go duration such as 10m or 1h30m`}},
		{"a ttl with a fraction of a second is refused", "ttl: 10m500ms",
			[]string{`roles[1].ttl: "10m500ms" is not a whole number of seconds`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := withRoles(okRole + flowRole("r", teamA, viewGrant, tt.extra))
			assertProblems(t, problemLines(t, data), tt.want)
		})
	}
}

// prefixed puts path before each wanted line.
func prefixed(path string, want []string) []string {
	out := make([]string, len(want))
	for i, w := range want {
		out[i] = path + w
	}
	return out
}

func TestValidateSubjects(t *testing.T) {
	tests := []struct {
		name     string
		subjects string
		want     []string // after "roles[1].subjects"
	}{
		{"a role without subjects is refused", "[]",
			[]string{": at least one subject is required"}},
		{"a subject with neither namespace nor selector is refused", "[{serviceAccounts: [app]}]",
			[]string{"[0]: exactly one of namespace, namespaceSelector"}},
		{"a subject with both namespace and selector is refused",
			"[{namespace: a, namespaceSelector: {}, serviceAccounts: [app]}]",
			[]string{"[0]: exactly one of namespace, namespaceSelector"}},
		{"an invalid namespace name is refused", "[{namespace: Team_A, serviceAccounts: [app]}]",
			[]string{`[0].namespace: invalid namespace name "Team_A": use at most 63 lower case...`}},
		{"a subject without service accounts is refused", "[{namespace: team-a}]",
			[]string{`[0].serviceAccounts: at least one service account is required; "*" means any`}},
		{"an invalid service account name names its index",
			`[{namespace: team-a, serviceAccounts: [app, "a b"]}]`,
			[]string{`[0].serviceAccounts[1]: invalid service account name "a b": use at most 253...`}},
		{"a wildcard service account is accepted",
			`[{namespace: team-a, serviceAccounts: ["*"]}]`, nil},
		{"an empty namespace selector is accepted",
			`[{namespaceSelector: {}, serviceAccounts: ["*"]}]`, nil},
		{"every broken subject is reported, not only the first",
			`[{namespace: team-a}, {serviceAccounts: [app]}]`,
			[]string{`[0].serviceAccounts: at least one service account is required; "*" means any`,
				"[1]: exactly one of namespace, namespaceSelector"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := withRoles(okRole + flowRole("r", tt.subjects, viewGrant, ""))
			assertProblems(t, problemLines(t, data), prefixed("roles[1].subjects", tt.want))
		})
	}
}

func TestValidateSelectors(t *testing.T) {
	tests := []struct {
		name     string
		selector string
		want     []string // after "roles[1].subjects[0].podSelector."
	}{
		{"matchLabels are accepted", "{matchLabels: {app: web, example.com/tier: db}}", nil},
		{"an expression is accepted",
			"{matchExpressions: [{key: team, operator: In, values: [a, b]}]}", nil},
		{"a malformed matchLabels key is refused", `{matchLabels: {"a/b/c": x}}`,
			[]string{`matchLabels: invalid label key "a/b/c": ...`}},
		{"a malformed matchLabels value is refused", `{matchLabels: {app: "-web"}}`,
			[]string{`matchLabels: invalid value "-web" for label app: ...`}},
		{"an unknown operator is refused", "{matchExpressions: [{key: app, operator: Equals}]}",
			[]string{`matchExpressions[0].operator: "Equals" is not one of In, NotIn, Exists, DoesNotExist`}},
		{"operator In without values is refused", "{matchExpressions: [{key: app, operator: In}]}",
			[]string{"matchExpressions[0].values: at least one value is required with operator In"}},
		{"operator Exists with values is refused",
			"{matchExpressions: [{key: app, operator: Exists, values: [x]}]}",
			[]string{"matchExpressions[0].values: must be empty with operator Exists"}},
		{"a malformed expression key and value are both refused",
			`{matchExpressions: [{key: "", operator: In, values: ["a b"]}]}`,
			[]string{`matchExpressions[0].key: invalid label key "": ...`,
				`matchExpressions[0].values[0]: invalid label value "a b": ...`}},
		{"an unknown selector field is refused", "{matchLabel: {app: web}}",
			[]string{"matchLabel: unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subjects := "[{namespace: a, serviceAccounts: [app], podSelector: " + tt.selector + "}]"
			data := withRoles(okRole + flowRole("r", subjects, viewGrant, ""))
			want := prefixed("roles[1].subjects[0].podSelector.", tt.want)
			assertProblems(t, problemLines(t, data), want)
		})
	}
	t.Run("a namespaceSelector is checked the same way", func(t *testing.T) {
		subjects := `[{namespaceSelector: {matchLabels: {"a b": x}}, serviceAccounts: [app]}]`
		data := withRoles(okRole + flowRole("r", subjects, viewGrant, ""))
		assertProblems(t, problemLines(t, data), []string{
			`roles[1].subjects[0].namespaceSelector.matchLabels: invalid label key "a b": ...`})
	})
}

func TestTTLDefaults(t *testing.T) {
	tests := []struct {
		name        string
		extra       string
		ttl, maxTTL time.Duration
	}{
		{"both omitted default to the minimum", "", MinTTL, MinTTL},
		{"an omitted maxTTL defaults to the ttl", "ttl: 30m", 30 * time.Minute, 30 * time.Minute},
		{"an omitted ttl defaults to the minimum", "maxTTL: 1h", MinTTL, time.Hour},
		{"both given are kept", "ttl: 15m, maxTTL: 2h", 15 * time.Minute, 2 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("f.yaml", withRoles(flowRole("r", teamA, viewGrant, tt.extra)))
			if err != nil {
				t.Fatal(err)
			}
			if r := c.Roles[0]; r.TTL != tt.ttl || r.MaxTTL != tt.maxTTL {
				t.Errorf("ttl %v maxTTL %v, want %v and %v", r.TTL, r.MaxTTL, tt.ttl, tt.maxTTL)
			}
		})
	}
}

func TestEveryProblemOfEveryRoleIsReported(t *testing.T) {
	data := withRoles(flowRole("Bad", "[]", "{namespace: caller}", "ttl: 1m") +
		flowRole("good", teamA, viewGrant, "") +
		flowRole("also-bad", teamA, "{clusterRole: view, role: x}", ""))
	assertProblems(t, problemLines(t, data), []string{
		`roles[0].name: invalid role name "Bad": use lower case letters...`,
		"roles[0].subjects: at least one subject is required",
		"roles[0].grant: exactly one of rules, clusterRole, role, serviceAccount",
		"roles[0].ttl: 1m is shorter than 10m, the shortest token lifetime Kubernetes issues",
		`roles[2].grant.namespace: required: "caller" or a namespace name`,
		"roles[2].grant: exactly one of rules, clusterRole, role, serviceAccount",
	})
}

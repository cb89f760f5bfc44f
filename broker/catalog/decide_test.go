package catalog

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// countingFacts is a fake Facts that counts its lookups.
type countingFacts struct {
	ns, pod           map[string]string
	err               error
	nsCalls, podCalls int
}

func (f *countingFacts) NamespaceLabels(context.Context) (map[string]string, error) {
	f.nsCalls++
	return f.ns, f.err
}

func (f *countingFacts) PodLabels(context.Context) (map[string]string, error) {
	f.podCalls++
	return f.pod, f.err
}

const decideCatalog = header + `roles:
- name: pod-reader
  subjects:
  - {namespace: team-a, serviceAccounts: [app], podSelector: {matchLabels: {app: web}}}
  grant: {namespace: caller, rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]}
- name: viewer
  subjects: [{namespaceSelector: {matchLabels: {team: a}}, serviceAccounts: ["*"]}]
  grant: {namespace: caller, clusterRole: view}
- name: db-admin
  subjects: [{namespace: team-a, serviceAccounts: [dba]}]
  grant: {namespace: db, clusterRole: admin}
- name: batch
  subjects:
  - {namespace: team-b, serviceAccounts: [cron]}
  - namespaceSelector: {matchLabels: {team: a}}
    serviceAccounts: [app]
    podSelector: {matchLabels: {tier: batch}}
  grant: {namespace: caller, clusterRole: edit}
`

func mustParse(t *testing.T, data string) *Catalog {
	t.Helper()
	c, err := Parse("f.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// set parses "k=v,k2=v2" into labels; "" is no labels.
func set(s string) map[string]string {
	if s == "" {
		return nil
	}
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name    string
		role    string
		caller  string // namespace/service-account
		ns, pod string // labels as k=v,k=v
		reason  string
		code    DenyCode // "" for allowed
		lookups [2]int   // namespace and pod label lookups
	}{{
		name: "the web pod of team-a may read pods",
		role: "pod-reader", caller: "team-a/app", pod: "app=web,x=y",
		reason:  "service account team-a/app matches subjects[0] of role pod-reader",
		lookups: [2]int{0, 1},
	}, {
		name: "a pod with other labels is told which selector it misses",
		role: "pod-reader", caller: "team-a/app", pod: "app=api",
		reason:  "pod labels {app=api} do not match podSelector app=web of role pod-reader",
		code:    DenyPodLabels,
		lookups: [2]int{0, 1},
	}, {
		name: "a pod without labels is told so",
		role: "pod-reader", caller: "team-a/app",
		reason:  "pod labels {} do not match podSelector app=web of role pod-reader",
		code:    DenyPodLabels,
		lookups: [2]int{0, 1},
	}, {
		name: "another service account is not a subject and costs no lookup",
		role: "pod-reader", caller: "team-a/other",
		reason: "service account team-a/other is not a subject of role pod-reader",
		code:   DenyNotSubject,
	}, {
		name: "another namespace matches no subject and costs no lookup",
		role: "pod-reader", caller: "team-b/app",
		reason: "namespace team-b does not match any subject of role pod-reader",
		code:   DenyNamespace,
	}, {
		name: "any service account of a labelled namespace may view",
		role: "viewer", caller: "team-a2/anyone", ns: "team=a",
		reason:  "service account team-a2/anyone matches subjects[0] of role viewer",
		lookups: [2]int{1, 0},
	}, {
		name: "a namespace with other labels is told which selector it misses",
		role: "viewer", caller: "team-b/app", ns: "team=b",
		reason:  "namespace team-b labels {team=b} do not match namespaceSelector team=a of role viewer",
		code:    DenyNamespace,
		lookups: [2]int{1, 0},
	}, {
		name: "a service account that is not listed is told so",
		role: "db-admin", caller: "team-a/app",
		reason: "service account team-a/app is not a subject of role db-admin",
		code:   DenyNotSubject,
	}, {
		name: "a misspelt role is not in the catalog",
		role: "db-admn", caller: "team-a/app",
		reason: "role db-admn is not in the catalog",
		code:   DenyUnknownRole,
	}, {
		name: "the second subject may allow what the first does not",
		role: "batch", caller: "team-a/app", ns: "team=a", pod: "tier=batch",
		reason:  "service account team-a/app matches subjects[1] of role batch",
		lookups: [2]int{1, 1},
	}, {
		name: "the nearest miss over all subjects gives the reason",
		role: "batch", caller: "team-a/app", ns: "team=a", pod: "tier=web",
		reason:  "pod labels {tier=web} do not match podSelector tier=batch of role batch",
		code:    DenyPodLabels,
		lookups: [2]int{1, 1},
	}, {
		name: "pod labels are not fetched when the namespace selector already fails",
		role: "batch", caller: "team-c/app", ns: "team=c",
		reason:  "namespace team-c labels {team=c} do not match namespaceSelector team=a of role batch",
		code:    DenyNamespace,
		lookups: [2]int{1, 0},
	}, {
		name: "a caller without a service account matches nothing",
		role: "viewer", caller: "team-a/", ns: "team=a",
		reason: "service account team-a/ is not a subject of role viewer",
		code:   DenyNotSubject,
	}}
	c := mustParse(t, decideCatalog)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			facts := &countingFacts{ns: set(tt.ns), pod: set(tt.pod)}
			ns, sa, _ := strings.Cut(tt.caller, "/")
			got, err := c.Decide(context.Background(), tt.role, Caller{ns, sa, "pod-1"}, facts)
			if err != nil {
				t.Fatal(err)
			}
			want := Decision{Role: tt.role, Allowed: tt.code == "", Reason: tt.reason, Code: tt.code}
			if got != want {
				t.Errorf("Decide =\n  %+v\nwant\n  %+v", got, want)
			}
			if lookups := [2]int{facts.nsCalls, facts.podCalls}; lookups != tt.lookups {
				t.Errorf("namespace and pod lookups %v, want %v", lookups, tt.lookups)
			}
		})
	}
}

func TestExplainLooksUpEachFactAtMostOnce(t *testing.T) {
	c := mustParse(t, decideCatalog)
	facts := &countingFacts{ns: map[string]string{"team": "a"}, pod: map[string]string{"app": "web"}}
	got, err := c.Explain(context.Background(), Caller{"team-a", "app", "web-1"}, facts)
	if err != nil {
		t.Fatal(err)
	}
	if facts.nsCalls != 1 || facts.podCalls != 1 {
		t.Errorf("lookups: namespace %d, pod %d; want one each", facts.nsCalls, facts.podCalls)
	}
	want := []struct {
		role    string
		allowed bool
	}{{"pod-reader", true}, {"viewer", true}, {"db-admin", false}, {"batch", false}}
	if len(got) != len(want) {
		t.Fatalf("%d decisions, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Role != w.role || got[i].Allowed != w.allowed {
			t.Errorf("decision %d = %+v, want role %s allowed %v", i, got[i], w.role, w.allowed)
		}
	}
}

func TestDecideReportsFailedLookups(t *testing.T) {
	c := mustParse(t, decideCatalog)
	ctx := context.Background()
	boom := errors.New("api server unreachable")
	facts := &countingFacts{err: boom}
	app := Caller{"team-a", "app", "p"}
	if _, err := c.Decide(ctx, "viewer", app, facts); !errors.Is(err, boom) {
		t.Errorf("Decide error = %v, want it to wrap the lookup failure", err)
	}
	dba := Caller{"team-a", "dba", "p"}
	if d, err := c.Decide(ctx, "db-admin", dba, facts); err != nil || !d.Allowed {
		t.Errorf("a role that needs no lookup: %+v, %v", d, err)
	}
	if _, err := c.Explain(ctx, app, facts); !errors.Is(err, boom) {
		t.Errorf("Explain error = %v, want it to wrap the lookup failure", err)
	}
	if _, err := c.Decide(ctx, "viewer", app, nil); err == nil {
		t.Error("Decide without facts for a role that needs them did not fail")
	}
}

func TestStaticFactsAnswerTheirLabels(t *testing.T) {
	c := mustParse(t, decideCatalog)
	facts := StaticFacts{Namespace: set("team=a"), Pod: set("tier=batch")}
	d, err := c.Decide(context.Background(), "batch", Caller{"team-a", "app", "p"}, facts)
	if err != nil || !d.Allowed {
		t.Errorf("Decide = %+v, %v; want allowed", d, err)
	}
}

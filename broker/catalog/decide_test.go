package catalog

import (
	"context"
	"errors"
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
  - {namespaceSelector: {matchLabels: {team: a}}, serviceAccounts: [app], podSelector: {matchLabels: {tier: batch}}}
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

func TestDecide(t *testing.T) {
	teamA := map[string]string{"team": "a"}
	tests := []struct {
		name              string
		role              string
		caller            Caller
		ns, pod           map[string]string
		want              Decision
		nsCalls, podCalls int
	}{
		{"the web pod of team-a may read pods", "pod-reader", Caller{"team-a", "app", "web-1"}, nil,
			map[string]string{"app": "web", "x": "y"},
			Decision{"pod-reader", true, "service account team-a/app matches subjects[0] of role pod-reader", ""}, 0, 1},
		{"a pod with other labels is told which selector it misses", "pod-reader", Caller{"team-a", "app", "api-1"},
			nil, map[string]string{"app": "api"},
			Decision{"pod-reader", false, "pod labels {app=api} do not match podSelector app=web of role pod-reader", DenyPodLabels}, 0, 1},
		{"a pod without labels is told so", "pod-reader", Caller{"team-a", "app", "p"}, nil, nil,
			Decision{"pod-reader", false, "pod labels {} do not match podSelector app=web of role pod-reader", DenyPodLabels}, 0, 1},
		{"another service account is not a subject and costs no lookup", "pod-reader", Caller{"team-a", "other", "p"},
			nil, nil,
			Decision{"pod-reader", false, "service account team-a/other is not a subject of role pod-reader", DenyNotSubject}, 0, 0},
		{"another namespace matches no subject and costs no lookup", "pod-reader", Caller{"team-b", "app", "p"}, nil, nil,
			Decision{"pod-reader", false, "namespace team-b does not match any subject of role pod-reader", DenyNamespace}, 0, 0},
		{"any service account of a labelled namespace may view", "viewer", Caller{"team-a2", "anyone", "p"}, teamA, nil,
			Decision{"viewer", true, "service account team-a2/anyone matches subjects[0] of role viewer", ""}, 1, 0},
		{"a namespace with other labels is told which selector it misses", "viewer", Caller{"team-b", "app", "p"},
			map[string]string{"team": "b"}, nil,
			Decision{"viewer", false, "namespace team-b labels {team=b} do not match namespaceSelector team=a of role viewer", DenyNamespace}, 1, 0},
		{"a service account that is not listed is told so", "db-admin", Caller{"team-a", "app", "p"}, nil, nil,
			Decision{"db-admin", false, "service account team-a/app is not a subject of role db-admin", DenyNotSubject}, 0, 0},
		{"a misspelt role is not in the catalog", "db-admn", Caller{"team-a", "app", "p"}, nil, nil,
			Decision{"db-admn", false, "role db-admn is not in the catalog", DenyUnknownRole}, 0, 0},
		{"the second subject may allow what the first does not", "batch", Caller{"team-a", "app", "p"}, teamA,
			map[string]string{"tier": "batch"},
			Decision{"batch", true, "service account team-a/app matches subjects[1] of role batch", ""}, 1, 1},
		{"the nearest miss over all subjects gives the reason", "batch", Caller{"team-a", "app", "p"}, teamA,
			map[string]string{"tier": "web"},
			Decision{"batch", false, "pod labels {tier=web} do not match podSelector tier=batch of role batch", DenyPodLabels}, 1, 1},
		{"pod labels are not fetched when the namespace selector already fails", "batch", Caller{"team-c", "app", "p"},
			map[string]string{"team": "c"}, nil,
			Decision{"batch", false, "namespace team-c labels {team=c} do not match namespaceSelector team=a of role batch", DenyNamespace}, 1, 0},
		{"a caller without a service account matches nothing", "viewer", Caller{"team-a", "", "p"}, teamA, nil,
			Decision{"viewer", false, "service account team-a/ is not a subject of role viewer", DenyNotSubject}, 0, 0},
	}
	c := mustParse(t, decideCatalog)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			facts := &countingFacts{ns: tt.ns, pod: tt.pod}
			got, err := c.Decide(context.Background(), tt.role, tt.caller, facts)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Decide =\n  %+v\nwant\n  %+v", got, tt.want)
			}
			if facts.nsCalls != tt.nsCalls || facts.podCalls != tt.podCalls {
				t.Errorf("lookups: namespace %d, pod %d; want %d and %d",
					facts.nsCalls, facts.podCalls, tt.nsCalls, tt.podCalls)
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
	boom := errors.New("api server unreachable")
	facts := &countingFacts{err: boom}
	if _, err := c.Decide(context.Background(), "viewer", Caller{"team-a", "app", "p"}, facts); !errors.Is(err, boom) {
		t.Errorf("Decide error = %v, want it to wrap the lookup failure", err)
	}
	if d, err := c.Decide(context.Background(), "db-admin", Caller{"team-a", "dba", "p"}, facts); err != nil || !d.Allowed {
		t.Errorf("a role that needs no lookup: %+v, %v", d, err)
	}
	if _, err := c.Explain(context.Background(), Caller{"team-a", "app", "p"}, facts); !errors.Is(err, boom) {
		t.Errorf("Explain error = %v, want it to wrap the lookup failure", err)
	}
	if _, err := c.Decide(context.Background(), "viewer", Caller{"team-a", "app", "p"}, nil); err == nil {
		t.Error("Decide without facts for a role that needs them did not fail")
	}
}

func TestStaticFactsAnswerTheirLabels(t *testing.T) {
	c := mustParse(t, decideCatalog)
	facts := StaticFacts{Namespace: map[string]string{"team": "a"}, Pod: map[string]string{"tier": "batch"}}
	d, err := c.Decide(context.Background(), "batch", Caller{"team-a", "app", "p"}, facts)
	if err != nil || !d.Allowed {
		t.Errorf("Decide = %+v, %v; want allowed", d, err)
	}
}

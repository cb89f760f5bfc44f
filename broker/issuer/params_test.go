package issuer

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/lanyard-dev/lanyard/broker/catalog"
)

var podReadRules = []rbacv1.PolicyRule{{
	APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"},
}}

const podReadDocument = `{"rules":[{"verbs":["get","list"],"apiGroups":[""],"resources":["pods"]}]}`

func testRole(name string, grant catalog.Grant, subjects ...catalog.Subject) *catalog.Role {
	if subjects == nil {
		subjects = []catalog.Subject{{Namespace: "team-a", ServiceAccounts: []string{"app"}}}
	}
	return &catalog.Role{
		Name: name, Subjects: subjects, Grant: grant, TTL: 10 * time.Minute, MaxTTL: time.Hour,
	}
}

func mustSelector(t *testing.T, s string) labels.Selector {
	t.Helper()
	sel, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

func TestRoleParamsForEveryGrantKind(t *testing.T) {
	caller := catalog.CallerNamespace
	tests := []struct {
		name  string
		grant catalog.Grant
		want  map[string]any // fields that differ from the empty defaults
	}{
		{
			"rules generate a Role", catalog.Grant{Namespace: caller, Rules: podReadRules},
			map[string]any{"generated_role_rules": podReadDocument},
		},
		{
			"cluster-wide rules generate a ClusterRole",
			catalog.Grant{Namespace: caller, Rules: podReadRules, ClusterWide: true},
			map[string]any{"generated_role_rules": podReadDocument, "kubernetes_role_type": "ClusterRole"},
		},
		{
			"a clusterRole is bound by name", catalog.Grant{Namespace: caller, ClusterRole: "view"},
			map[string]any{"kubernetes_role_name": "view", "kubernetes_role_type": "ClusterRole"},
		},
		{
			"a cluster-wide clusterRole is bound by name",
			catalog.Grant{Namespace: caller, ClusterRole: "view", ClusterWide: true},
			map[string]any{"kubernetes_role_name": "view", "kubernetes_role_type": "ClusterRole"},
		},
		{
			"a role is bound by name", catalog.Grant{Namespace: caller, Role: "config-editor"},
			map[string]any{"kubernetes_role_name": "config-editor"},
		},
		{
			"a serviceAccount is used as it is", catalog.Grant{Namespace: caller, ServiceAccount: "reporter"},
			map[string]any{"service_account_name": "reporter"},
		},
		{
			"a fixed namespace is the only one allowed",
			catalog.Grant{Namespace: "reports", ServiceAccount: "reporter"},
			map[string]any{"service_account_name": "reporter", "allowed_kubernetes_namespaces": []string{"reports"}},
		},
		{
			"audiences are sorted and deduplicated",
			catalog.Grant{Namespace: caller, Role: "r", Audiences: []string{"b", "a", "b", ""}},
			map[string]any{"kubernetes_role_name": "r", "token_default_audiences": []string{"a", "b"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := map[string]any{
				"allowed_kubernetes_namespaces":         []string{"team-a"},
				"allowed_kubernetes_namespace_selector": "",
				"token_default_ttl":                     int64(600),
				"token_max_ttl":                         int64(3600),
				"token_default_audiences":               []string{},
				"service_account_name":                  "",
				"kubernetes_role_name":                  "",
				"kubernetes_role_type":                  "Role",
				"generated_role_rules":                  "",
				"name_template":                         NameTemplate,
				"extra_labels": map[string]string{
					"app.kubernetes.io/part-of": "lanyard", "lanyard.dev/role": "reader",
				},
				"extra_annotations": map[string]string{},
			}
			for k, v := range tt.want {
				want[k] = v
			}
			got := RoleParams(testRole("reader", tt.grant))
			if !reflect.DeepEqual(got, want) {
				gotJSON, _ := json.MarshalIndent(got, "", " ")
				t.Fatalf("RoleParams =\n%s", gotJSON)
			}
		})
	}
}

func TestAllowedNamespacesForCallerGrants(t *testing.T) {
	prod := mustSelector(t, "env=prod")
	tests := []struct {
		name         string
		subjects     []catalog.Subject
		wantNS       []string
		wantSelector string
	}{
		{
			"exact subject namespaces are united and sorted",
			[]catalog.Subject{{Namespace: "b"}, {Namespace: "a"}, {Namespace: "b"}},
			[]string{"a", "b"}, "",
		},
		{
			"one selector is passed to Vault beside the exact names",
			[]catalog.Subject{{Namespace: "a"}, {NamespaceSelector: prod}},
			[]string{"a"}, `{"matchExpressions":[{"key":"env","operator":"In","values":["prod"]}]}`,
		},
		{
			"the same selector twice is one selector",
			[]catalog.Subject{{NamespaceSelector: prod}, {NamespaceSelector: mustSelector(t, "env in (prod)")}},
			[]string{}, `{"matchExpressions":[{"key":"env","operator":"In","values":["prod"]}]}`,
		},
		{
			"existence and negation survive the translation",
			[]catalog.Subject{{NamespaceSelector: mustSelector(t, "team,!legacy,tier notin (dev)")}},
			[]string{},
			`{"matchExpressions":[{"key":"legacy","operator":"DoesNotExist"},` +
				`{"key":"team","operator":"Exists"},{"key":"tier","operator":"NotIn","values":["dev"]}]}`,
		},
		{
			"two different selectors allow every namespace",
			[]catalog.Subject{{NamespaceSelector: prod}, {NamespaceSelector: mustSelector(t, "env=dev")}},
			[]string{"*"}, "",
		},
		{
			"a selector Vault cannot express allows every namespace",
			[]catalog.Subject{{NamespaceSelector: mustSelector(t, "rank>3")}},
			[]string{"*"}, "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			role := testRole("r", catalog.Grant{Namespace: catalog.CallerNamespace, Role: "x"}, tt.subjects...)
			ns, sel := allowedNamespaces(role)
			if !reflect.DeepEqual(ns, tt.wantNS) || sel != tt.wantSelector {
				t.Fatalf("allowedNamespaces = %q, %s; want %q, %s", ns, sel, tt.wantNS, tt.wantSelector)
			}
		})
	}
}

func TestRoleName(t *testing.T) {
	if got := RoleName("pod-reader"); got != "lanyard-pod-reader" {
		t.Fatalf("RoleName = %q", got)
	}
}

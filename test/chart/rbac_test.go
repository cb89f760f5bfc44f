package chart

import (
	"os"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// brokerRules are the broker's Kubernetes permissions: review caller tokens,
// read and watch pods (selectors; revocation on pod deletion), read
// namespaces (selectors). Nothing more.
var brokerRules = []any{
	map[string]any{"apiGroups": []any{"authentication.k8s.io"}, "resources": []any{"tokenreviews"},
		"verbs": []any{"create"}},
	map[string]any{"apiGroups": []any{""}, "resources": []any{"pods"},
		"verbs": []any{"get", "list", "watch"}},
	map[string]any{"apiGroups": []any{""}, "resources": []any{"namespaces"},
		"verbs": []any{"get"}},
}

func TestBrokerClusterRoleGrantsExactlyWhatTheBrokerUses(t *testing.T) {
	sources := map[string]func(t *testing.T) []*unstructured.Unstructured{
		"the chart": func(t *testing.T) []*unstructured.Unstructured {
			return render(t, "lanyard", "lanyard", "-f", allFeatures)
		},
		"the example for installs without the chart": func(t *testing.T) []*unstructured.Unstructured {
			data, err := os.ReadFile("../../examples/broker-rbac.yaml")
			if err != nil {
				t.Fatal(err)
			}
			return parseManifests(t, string(data))
		},
	}
	for name, objects := range sources {
		t.Run(name, func(t *testing.T) {
			role := find(objects(t), "ClusterRole", "lanyard-broker")
			if role == nil {
				t.Fatal("no ClusterRole lanyard-broker")
			}
			if got := role.Object["rules"]; !reflect.DeepEqual(got, brokerRules) {
				t.Errorf("rules = %v\nwant %v", got, brokerRules)
			}
		})
	}
}

package catalog

import (
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The file structs mirror the YAML as written. Lists of objects are kept raw
// and decoded one element at a time, so that a problem in one element names
// its index and does not stop the check of its siblings.

type catalogFile struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Roles      []json.RawMessage `json:"roles"`
}

type roleFile struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Subjects    []json.RawMessage `json:"subjects"`
	Grant       *grantFile        `json:"grant"`
	TTL         string            `json:"ttl"`
	MaxTTL      string            `json:"maxTTL"`
}

type subjectFile struct {
	Namespace         string                `json:"namespace"`
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector"`
	ServiceAccounts   []string              `json:"serviceAccounts"`
	PodSelector       *metav1.LabelSelector `json:"podSelector"`
}

type grantFile struct {
	Namespace      string            `json:"namespace"`
	Rules          []json.RawMessage `json:"rules"`
	ClusterRole    string            `json:"clusterRole"`
	Role           string            `json:"role"`
	ServiceAccount string            `json:"serviceAccount"`
	ClusterWide    bool              `json:"clusterWide"`
	Audiences      []string          `json:"audiences"`
}

// ruleFile has the fields of rbacv1.PolicyRule, in its order so that it
// converts; declared here so that the accepted fields do not change silently
// when the API type grows (the conversion then stops compiling).
type ruleFile struct {
	Verbs           []string `json:"verbs"`
	APIGroups       []string `json:"apiGroups"`
	Resources       []string `json:"resources"`
	ResourceNames   []string `json:"resourceNames"`
	NonResourceURLs []string `json:"nonResourceURLs"`
}

package catalog

import (
	"bytes"
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
	TTL         durationText      `json:"ttl"`
	MaxTTL      durationText      `json:"maxTTL"`
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

// durationText holds a duration as written. A bare number (ttl: 600) is kept
// as its text, so that the problem says how to write a duration instead of
// only that a string was expected.
type durationText string

// UnmarshalJSON keeps strings unquoted and anything else as written.
func (d *durationText) UnmarshalJSON(data []byte) error {
	if bytes.Equal(data, []byte("null")) {
		*d = ""
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		*d = durationText(s)
		return nil
	}
	*d = durationText(data)
	return nil
}

package catalog

import (
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// The output structs write a catalog back in the file format, with defaults
// spelled out.

type catalogOut struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Roles      []roleOut `json:"roles"`
}

type roleOut struct {
	Name        string       `json:"name"`
	Description string       `json:"description,omitempty"`
	Subjects    []subjectOut `json:"subjects"`
	Grant       grantOut     `json:"grant"`
	TTL         string       `json:"ttl"`
	MaxTTL      string       `json:"maxTTL"`
}

type subjectOut struct {
	Namespace         string                `json:"namespace,omitempty"`
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	ServiceAccounts   []string              `json:"serviceAccounts"`
	PodSelector       *metav1.LabelSelector `json:"podSelector,omitempty"`
}

type grantOut struct {
	Namespace      string              `json:"namespace"`
	Rules          []rbacv1.PolicyRule `json:"rules,omitempty"`
	ClusterRole    string              `json:"clusterRole,omitempty"`
	Role           string              `json:"role,omitempty"`
	ServiceAccount string              `json:"serviceAccount,omitempty"`
	ClusterWide    bool                `json:"clusterWide,omitempty"`
	Audiences      []string            `json:"audiences,omitempty"`
}

// Encode writes the catalog in the file format, with every default spelled
// out. Parsing the result yields an equal catalog.
func (c *Catalog) Encode() ([]byte, error) {
	out := catalogOut{APIVersion: APIVersion, Kind: Kind, Roles: make([]roleOut, len(c.Roles))}
	for i := range c.Roles {
		r, err := encodeRole(&c.Roles[i])
		if err != nil {
			return nil, err
		}
		out.Roles[i] = r
	}
	data, err := yaml.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode catalog: %w", err)
	}
	return data, nil
}

func encodeRole(r *Role) (roleOut, error) {
	out := roleOut{
		Name:        r.Name,
		Description: r.Description,
		Subjects:    make([]subjectOut, len(r.Subjects)),
		Grant:       grantOut(r.Grant),
		TTL:         FormatDuration(r.TTL),
		MaxTTL:      FormatDuration(r.MaxTTL),
	}
	for i, s := range r.Subjects {
		ns, err := writtenSelector(s.namespaceSelector, s.NamespaceSelector)
		if err != nil {
			return roleOut{}, fmt.Errorf("encode role %s: %w", r.Name, err)
		}
		pod, err := writtenSelector(s.podSelector, s.PodSelector)
		if err != nil {
			return roleOut{}, fmt.Errorf("encode role %s: %w", r.Name, err)
		}
		out.Subjects[i] = subjectOut{
			Namespace:         s.Namespace,
			NamespaceSelector: ns,
			ServiceAccounts:   s.ServiceAccounts,
			PodSelector:       pod,
		}
	}
	return out, nil
}

// writtenSelector prefers the selector as it was written; a Subject built in
// code has only the parsed form, which is converted back.
func writtenSelector(
	written *metav1.LabelSelector,
	sel labels.Selector,
) (*metav1.LabelSelector, error) {
	if written != nil || sel == nil {
		return written, nil
	}
	ls, err := metav1.ParseToLabelSelector(sel.String())
	if err != nil {
		return nil, fmt.Errorf("selector %s: %w", sel, err)
	}
	return ls, nil
}

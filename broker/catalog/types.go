package catalog

import (
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// File format identifiers that a catalog must declare.
const (
	APIVersion = "lanyard.dev/v1alpha1"
	Kind       = "RoleCatalog"
)

// Limits that refuse absurd input before it costs memory or time.
const (
	// MaxFileSize is the largest catalog file accepted, in bytes.
	MaxFileSize = 1 << 20
	// MaxRoles is the largest number of roles a catalog may declare.
	MaxRoles = 1000
	// MaxRoleNameLength keeps "lanyard-<name>" and the names Vault derives
	// from it within Kubernetes' limits.
	MaxRoleNameLength = 40
)

// MinTTL is Kubernetes' minimum token lifetime.
const MinTTL = 10 * time.Minute

// CallerNamespace is the grant namespace that stands for the namespace of the
// requesting pod.
const CallerNamespace = "caller"

// AnyServiceAccount in a subject's serviceAccounts matches every service
// account of the subject's namespaces.
const AnyServiceAccount = "*"

// Catalog is a validated role catalog.
type Catalog struct {
	Source string // file it was loaded from
	Roles  []Role // in file order
}

// Role is one entry of the catalog: who may request it and what it grants.
type Role struct {
	Name, Description string
	Subjects          []Subject
	Grant             Grant
	TTL, MaxTTL       time.Duration
}

// Subject describes callers allowed to request a role. A caller matches when
// its namespace, its service account and, when set, its pod labels all match.
type Subject struct {
	Namespace         string          // exact name, or ""
	NamespaceSelector labels.Selector // nil unless set
	ServiceAccounts   []string        // ["*"] = any
	PodSelector       labels.Selector // nil unless set

	// The selectors as written, kept so that Encode can write them back.
	namespaceSelector *metav1.LabelSelector
	podSelector       *metav1.LabelSelector
}

// Grant is what a credential for the role may do, and where.
type Grant struct {
	Namespace      string              // "caller" or a fixed namespace name
	Rules          []rbacv1.PolicyRule // exactly one of Rules|ClusterRole|Role|ServiceAccount
	ClusterRole    string
	Role           string
	ServiceAccount string
	ClusterWide    bool
	Audiences      []string
}

// GrantKind names the way a grant gives permissions.
type GrantKind string

// The grant kinds, named as their catalog fields.
const (
	GrantNone           GrantKind = ""
	GrantRules          GrantKind = "rules"
	GrantClusterRole    GrantKind = "clusterRole"
	GrantRole           GrantKind = "role"
	GrantServiceAccount GrantKind = "serviceAccount"
)

// Kind tells which of rules, clusterRole, role or serviceAccount the grant
// uses. It returns GrantNone only for a grant that did not pass validation.
func (g Grant) Kind() GrantKind {
	switch {
	case len(g.Rules) > 0:
		return GrantRules
	case g.ClusterRole != "":
		return GrantClusterRole
	case g.Role != "":
		return GrantRole
	case g.ServiceAccount != "":
		return GrantServiceAccount
	default:
		return GrantNone
	}
}

// TargetNamespace is the namespace the credential is minted in for a caller
// from callerNamespace.
func (r *Role) TargetNamespace(callerNamespace string) string {
	if r.Grant.Namespace == CallerNamespace {
		return callerNamespace
	}
	return r.Grant.Namespace
}

// NeedsPod tells whether some subject has a podSelector, so that deciding
// needs the caller pod's labels.
func (r *Role) NeedsPod() bool {
	for _, s := range r.Subjects {
		if s.PodSelector != nil {
			return true
		}
	}
	return false
}

// NeedsNamespaceLabels tells whether some subject has a namespaceSelector, so
// that deciding may need the caller namespace's labels.
func (r *Role) NeedsNamespaceLabels() bool {
	for _, s := range r.Subjects {
		if s.NamespaceSelector != nil {
			return true
		}
	}
	return false
}

// Role returns the role called name.
func (c *Catalog) Role(name string) (*Role, bool) {
	for i := range c.Roles {
		if c.Roles[i].Name == name {
			return &c.Roles[i], true
		}
	}
	return nil, false
}

package issuer

import (
	"encoding/json"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/lanyard-dev/lanyard/broker/catalog"
)

// RolePrefix starts the name of every Vault role the broker owns.
const RolePrefix = "lanyard-"

// Labels set on every object Vault generates for a lanyard credential.
// Vault itself sets app.kubernetes.io/managed-by (to HashiCorp-Vault) after
// the role's extra labels, so lanyard marks its objects with part-of.
const (
	LabelPartOf = "app.kubernetes.io/part-of"
	LabelRole   = "lanyard.dev/role"
	partOf      = "lanyard"
)

// NameTemplate names the service account, role and binding Vault generates
// for each credential: the Vault role name and 10 random characters, e.g.
// lanyard-pod-reader-q3k9x0m2ab, so that an operator recognises them.
// Catalog role names have at most 40 characters, so nothing is cut.
const NameTemplate = `{{ printf "%s-%s" .RoleName (random 10) | truncate 62 | lowercase }}`

// RoleName is the Vault role of a catalog role.
func RoleName(catalogRole string) string { return RolePrefix + catalogRole }

// RoleParams returns the Vault role body for a catalog role. It sets every
// field the engine knows, the unused ones empty, because a write to an
// existing role merges into it: a role that changed from rules to
// clusterRole must lose its rules.
//
// Vault's namespace allow-list is a second line of defence: the broker
// decides who may ask for what from the catalog, but should its Vault token
// leak, Vault still refuses namespaces the role's grant cannot reach. See
// allowedNamespaces.
func RoleParams(r *catalog.Role) map[string]any {
	namespaces, selector := allowedNamespaces(r)
	p := map[string]any{
		"allowed_kubernetes_namespaces":         namespaces,
		"allowed_kubernetes_namespace_selector": selector,
		"token_default_ttl":                     int64(r.TTL.Seconds()),
		"token_max_ttl":                         int64(r.MaxTTL.Seconds()),
		"token_default_audiences":               audiences(r.Grant.Audiences),
		"service_account_name":                  "",
		"kubernetes_role_name":                  "",
		"kubernetes_role_type":                  "Role",
		"generated_role_rules":                  "",
		"name_template":                         NameTemplate,
		"extra_labels":                          generatedLabels(r.Name),
		"extra_annotations":                     map[string]string{},
	}
	g := r.Grant
	switch g.Kind() {
	case catalog.GrantRules:
		p["generated_role_rules"] = rulesDocument(g.Rules)
		if g.ClusterWide {
			p["kubernetes_role_type"] = "ClusterRole"
		}
	case catalog.GrantClusterRole:
		p["kubernetes_role_name"] = g.ClusterRole
		p["kubernetes_role_type"] = "ClusterRole"
	case catalog.GrantRole:
		p["kubernetes_role_name"] = g.Role
	case catalog.GrantServiceAccount:
		p["service_account_name"] = g.ServiceAccount
	}
	return p
}

// generatedLabels mark the objects Vault generates for a role.
func generatedLabels(catalogRole string) map[string]string {
	return map[string]string{LabelPartOf: partOf, LabelRole: catalogRole}
}

// rulesDocument is the generated_role_rules value: a JSON object with the
// rules, which Vault accepts as JSON or YAML.
func rulesDocument(rules []rbacv1.PolicyRule) string {
	doc, err := json.Marshal(struct {
		Rules []rbacv1.PolicyRule `json:"rules"`
	}{rules})
	if err != nil {
		// PolicyRule holds only strings and string slices.
		panic("issuer: marshal policy rules: " + err.Error())
	}
	return string(doc)
}

// allowedNamespaces returns Vault's allow-list for a role: the namespaces a
// credential may be minted in.
//
// A fixed grant namespace is the only one allowed. For "caller", the target
// is the caller's own namespace, so the allowed namespaces are the
// subjects': their exact names, plus their namespace selector when all
// selector subjects share one that Vault can express. Vault allows a
// namespace that is in the list OR matches the selector, and "*" in the list
// allows every namespace before the selector is looked at, so "*" is used
// only when no single selector describes the subjects (several different
// selectors, Gt/Lt operators, or a subject without any namespace). Checking
// the selector costs Vault one namespace read, through its throttled
// Kubernetes client, for each credential minted for a selector-matched caller.
func allowedNamespaces(r *catalog.Role) ([]string, string) {
	if r.Grant.Namespace != catalog.CallerNamespace {
		return []string{r.Grant.Namespace}, ""
	}
	names, selectors := []string{}, []string{}
	for _, s := range r.Subjects {
		switch {
		case s.Namespace != "":
			names = append(names, s.Namespace)
		case s.NamespaceSelector != nil:
			sel, ok := selectorDocument(s.NamespaceSelector)
			if !ok {
				return []string{"*"}, ""
			}
			selectors = append(selectors, sel)
		default:
			return []string{"*"}, ""
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	slices.Sort(selectors)
	selectors = slices.Compact(selectors)
	switch len(selectors) {
	case 0:
		return names, ""
	case 1:
		return names, selectors[0]
	default:
		return []string{"*"}, ""
	}
}

// selectorDocument writes sel as a metav1.LabelSelector in JSON, the form
// allowed_kubernetes_namespace_selector takes; false when it cannot.
func selectorDocument(sel labels.Selector) (string, bool) {
	reqs, selectable := sel.Requirements()
	if !selectable {
		return "", false
	}
	ls := metav1.LabelSelector{}
	for _, req := range reqs {
		expr, ok := selectorRequirement(req)
		if !ok {
			return "", false
		}
		ls.MatchExpressions = append(ls.MatchExpressions, expr)
	}
	doc, err := json.Marshal(ls)
	if err != nil {
		return "", false
	}
	return string(doc), true
}

func selectorRequirement(req labels.Requirement) (metav1.LabelSelectorRequirement, bool) {
	values := req.ValuesUnsorted()
	slices.Sort(values)
	expr := metav1.LabelSelectorRequirement{Key: req.Key(), Values: values}
	switch req.Operator() {
	case selection.In, selection.Equals, selection.DoubleEquals:
		expr.Operator = metav1.LabelSelectorOpIn
	case selection.NotIn, selection.NotEquals:
		expr.Operator = metav1.LabelSelectorOpNotIn
	case selection.Exists:
		expr.Operator, expr.Values = metav1.LabelSelectorOpExists, nil
	case selection.DoesNotExist:
		expr.Operator, expr.Values = metav1.LabelSelectorOpDoesNotExist, nil
	default:
		return expr, false
	}
	return expr, true
}

// audiences returns the audiences sorted and without duplicates or empty
// entries, as Vault stores them; never nil, so that JSON says [].
func audiences(in []string) []string {
	out := make([]string, 0, len(in))
	for _, a := range in {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

package catalog

import (
	"encoding/json"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
)

func parseGrant(p *problems, at string, f *grantFile) Grant {
	if f == nil {
		p.add(at, "required")
		return Grant{}
	}
	g := Grant{
		Namespace:      f.Namespace,
		ClusterRole:    f.ClusterRole,
		Role:           f.Role,
		ServiceAccount: f.ServiceAccount,
		ClusterWide:    f.ClusterWide,
		Audiences:      f.Audiences,
	}
	checkGrantNamespace(p, field(at, "namespace"), f.Namespace)
	if countKinds(f) != 1 {
		p.add(at, "exactly one of rules, clusterRole, role, serviceAccount")
	}
	if f.Rules != nil {
		g.Rules = parseRules(p, field(at, "rules"), f.Rules, f.ClusterWide)
	}
	checkReferences(p, at, f)
	if f.ClusterWide && (f.Role != "" || f.ServiceAccount != "") {
		p.add(field(at, "clusterWide"), "allowed only with rules or clusterRole")
	}
	checkAudiences(p, field(at, "audiences"), f.Audiences)
	return g
}

// countKinds counts the grant kinds present; rules count when the list is
// written, even empty, so that "rules: []" is not mistaken for no rules.
func countKinds(f *grantFile) int {
	n := 0
	for _, present := range []bool{
		f.Rules != nil, f.ClusterRole != "", f.Role != "", f.ServiceAccount != "",
	} {
		if present {
			n++
		}
	}
	return n
}

func checkGrantNamespace(p *problems, at, ns string) {
	switch ns {
	case "":
		p.add(at, `required: "caller" or a namespace name`)
	case CallerNamespace:
	default:
		checkNamespaceName(p, at, ns)
	}
}

// checkReferences checks the names of the existing objects a grant refers to.
func checkReferences(p *problems, at string, f *grantFile) {
	if f.ClusterRole != "" {
		checkObjectName(p, field(at, "clusterRole"), "cluster role", f.ClusterRole)
	}
	if f.Role != "" {
		checkObjectName(p, field(at, "role"), "role", f.Role)
	}
	if f.ServiceAccount != "" {
		checkServiceAccountName(p, field(at, "serviceAccount"), f.ServiceAccount)
	}
}

func checkObjectName(p *problems, at, what, name string) {
	if errs := content.IsPathSegmentName(name); len(errs) > 0 {
		p.add(at, "invalid %s name %q: %s", what, name, strings.Join(errs, "; "))
	}
}

func checkAudiences(p *problems, at string, audiences []string) {
	seen := make(map[string]bool, len(audiences))
	for i, a := range audiences {
		switch {
		case a == "":
			p.add(index(at, i), "empty audience")
		case seen[a]:
			p.add(index(at, i), "duplicate audience %q", a)
		}
		seen[a] = true
	}
}

func parseRules(p *problems, at string, raws []json.RawMessage, clusterWide bool) []rbacv1.PolicyRule {
	if len(raws) == 0 {
		p.add(at, "at least one rule is required")
		return nil
	}
	rules := make([]rbacv1.PolicyRule, 0, len(raws))
	for i, raw := range raws {
		var f ruleFile
		if !decodeStrict(p, index(at, i), raw, &f) {
			continue
		}
		checkRule(p, index(at, i), f, clusterWide)
		rules = append(rules, rbacv1.PolicyRule(f))
	}
	return rules
}

func checkRule(p *problems, at string, r ruleFile, clusterWide bool) {
	if len(r.Verbs) == 0 {
		p.add(field(at, "verbs"), "at least one verb is required")
	}
	checkNonEmpty(p, field(at, "verbs"), "verb", r.Verbs)
	switch {
	case len(r.Resources) > 0 && len(r.NonResourceURLs) > 0:
		p.add(at, "either resources or nonResourceURLs, not both")
	case len(r.NonResourceURLs) > 0:
		checkNonResourceRule(p, at, r, clusterWide)
	case len(r.Resources) == 0:
		p.add(field(at, "resources"), "at least one resource is required")
	case len(r.APIGroups) == 0:
		p.add(field(at, "apiGroups"), `at least one API group is required; "" is the core group`)
	}
	checkNonEmpty(p, field(at, "resources"), "resource", r.Resources)
	checkNonEmpty(p, field(at, "resourceNames"), "resource name", r.ResourceNames)
}

// checkNonResourceRule: Kubernetes accepts non-resource URLs only in a
// ClusterRole bound cluster-wide.
func checkNonResourceRule(p *problems, at string, r ruleFile, clusterWide bool) {
	if !clusterWide {
		p.add(field(at, "nonResourceURLs"), "allowed only with clusterWide: true")
	}
	for i, u := range r.NonResourceURLs {
		if !strings.HasPrefix(u, "/") {
			p.add(index(field(at, "nonResourceURLs"), i), "%q does not start with /", u)
		}
	}
	if len(r.APIGroups) > 0 || len(r.ResourceNames) > 0 {
		p.add(at, "apiGroups and resourceNames do not apply to nonResourceURLs")
	}
}

func checkNonEmpty(p *problems, at, what string, values []string) {
	for i, v := range values {
		if v == "" {
			p.add(index(at, i), "empty %s", what)
		}
	}
}

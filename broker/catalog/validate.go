package catalog

import (
	"encoding/json"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// The rules of Kubernetes object names, in words for problem messages.
const (
	labelRule     = "lower case letters, digits and '-', starting and ending with a letter or digit"
	subdomainRule = "lower case letters, digits, '-' and '.', " +
		"starting and ending with a letter or digit"
)

// parseRole decodes and checks one role. It returns false only when the role
// could not be decoded at all; problems are reported through p either way.
func parseRole(p *problems, path string, raw json.RawMessage) (Role, bool) {
	var f roleFile
	if !decodeStrict(p, path, raw, &f) {
		return Role{}, false
	}
	r := Role{Name: f.Name, Description: f.Description}
	checkRoleName(p, field(path, "name"), f.Name)
	r.Subjects = parseSubjects(p, field(path, "subjects"), f.Subjects)
	r.Grant = parseGrant(p, field(path, "grant"), f.Grant)
	r.TTL, r.MaxTTL = parseTTLs(p, path, f.TTL, f.MaxTTL)
	return r, true
}

// ValidRoleName reports whether name can name a role: a DNS-1123 label of at most
// MaxRoleNameLength characters.
func ValidRoleName(name string) bool {
	return name != "" && len(name) <= MaxRoleNameLength &&
		len(validation.IsDNS1123Label(name)) == 0
}

func checkRoleName(p *problems, path, name string) {
	switch {
	case name == "":
		p.add(path, "required")
	case len(name) > MaxRoleNameLength:
		p.add(path, "%q is longer than %d characters", name, MaxRoleNameLength)
	default:
		if len(validation.IsDNS1123Label(name)) > 0 {
			p.add(path, "invalid role name %q: use %s", name, labelRule)
		}
	}
}

func parseSubjects(p *problems, path string, raws []json.RawMessage) []Subject {
	if len(raws) == 0 {
		p.add(path, "at least one subject is required")
		return nil
	}
	subjects := make([]Subject, 0, len(raws))
	for i, raw := range raws {
		if s, ok := parseSubject(p, index(path, i), raw); ok {
			subjects = append(subjects, s)
		}
	}
	return subjects
}

func parseSubject(p *problems, path string, raw json.RawMessage) (Subject, bool) {
	var f subjectFile
	if !decodeStrict(p, path, raw, &f) {
		return Subject{}, false
	}
	if (f.Namespace == "") == (f.NamespaceSelector == nil) {
		p.add(path, "exactly one of namespace, namespaceSelector")
	}
	if f.Namespace != "" {
		checkNamespaceName(p, field(path, "namespace"), f.Namespace)
	}
	checkServiceAccounts(p, field(path, "serviceAccounts"), f.ServiceAccounts)
	return Subject{
		Namespace:         f.Namespace,
		NamespaceSelector: parseSelector(p, field(path, "namespaceSelector"), f.NamespaceSelector),
		ServiceAccounts:   f.ServiceAccounts,
		PodSelector:       parseSelector(p, field(path, "podSelector"), f.PodSelector),
		namespaceSelector: f.NamespaceSelector,
		podSelector:       f.PodSelector,
	}, true
}

func checkServiceAccounts(p *problems, path string, names []string) {
	if len(names) == 0 {
		p.add(path, `at least one service account is required; "*" means any`)
		return
	}
	for i, name := range names {
		if name == AnyServiceAccount {
			continue
		}
		checkServiceAccountName(p, index(path, i), name)
	}
}

func checkServiceAccountName(p *problems, path, name string) {
	if len(validation.IsDNS1123Subdomain(name)) > 0 {
		p.add(path, "invalid service account name %q: use at most 253 %s", name, subdomainRule)
	}
}

func checkNamespaceName(p *problems, path, name string) {
	if len(validation.IsDNS1123Label(name)) > 0 {
		p.add(path, "invalid namespace name %q: use at most 63 %s", name, labelRule)
	}
}

// parseTTLs applies the defaults: ttl is MinTTL and maxTTL is ttl when
// omitted.
func parseTTLs(
	p *problems,
	path string,
	ttlText, maxText durationText,
) (ttl, maxTTL time.Duration) {
	ttl, ttlOK := parseTTL(p, field(path, "ttl"), ttlText, MinTTL)
	maxTTL, maxOK := parseTTL(p, field(path, "maxTTL"), maxText, ttl)
	if ttlOK && maxOK && ttl > maxTTL {
		p.add(field(path, "ttl"), "%s is longer than maxTTL %s",
			FormatDuration(ttl), FormatDuration(maxTTL))
	}
	return ttl, maxTTL
}

func parseTTL(
	p *problems,
	path string,
	text durationText,
	def time.Duration,
) (time.Duration, bool) {
	if text == "" {
		return def, true
	}
	d, err := time.ParseDuration(string(text))
	switch {
	case err != nil:
		p.add(path, "invalid duration %q: want a Go duration such as 10m or 1h30m", text)
		return 0, false
	case d%time.Second != 0:
		p.add(path, "%q is not a whole number of seconds", text)
		return 0, false
	case d < MinTTL:
		p.add(path, "%s is shorter than %s, the shortest token lifetime Kubernetes issues",
			FormatDuration(d), FormatDuration(MinTTL))
		return 0, false
	}
	return d, true
}

// FormatDuration writes d without zero minutes and seconds: 1h, 1h30m, 10m.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

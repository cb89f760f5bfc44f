package catalog

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/labels"
)

// Caller is who asks; labels are fetched lazily by Facts only when a role needs them.
type Caller struct{ Namespace, ServiceAccount, Pod string }

// Facts looks up what the catalog may need to know about a caller beyond its
// identity. Implementations answer for one caller; a Decide or Explain call
// asks each question at most once, and only when a subject needs the answer.
type Facts interface {
	NamespaceLabels(ctx context.Context) (map[string]string, error)
	PodLabels(ctx context.Context) (map[string]string, error)
}

// StaticFacts answers from fixed label sets; for the explain command and tests.
type StaticFacts struct{ Namespace, Pod map[string]string }

// NamespaceLabels returns f.Namespace.
func (f StaticFacts) NamespaceLabels(context.Context) (map[string]string, error) {
	return f.Namespace, nil
}

// PodLabels returns f.Pod.
func (f StaticFacts) PodLabels(context.Context) (map[string]string, error) {
	return f.Pod, nil
}

// DenyCode classifies a denial for machines; it is used as a metric label.
type DenyCode string

// The deny codes. An allowed decision has the empty code.
const (
	DenyUnknownRole DenyCode = "unknown_role"
	DenyNotSubject  DenyCode = "not_subject"
	DenyNamespace   DenyCode = "namespace"
	DenyPodLabels   DenyCode = "pod_labels"
)

// Decision says whether a caller may request a role, and why not.
type Decision struct {
	Role    string
	Allowed bool
	Reason  string   // human: "service account team-a/app is not a subject of role db-admin"
	Code    DenyCode // machine: "" when allowed
}

// errNoFacts is returned when a role needs labels and the caller gave no Facts.
var errNoFacts = errors.New("no facts to look up labels")

// Decide tells whether caller may request role. An unknown role is a denial
// with code unknown_role, not an error; errors come only from facts.
func (c *Catalog) Decide(
	ctx context.Context,
	role string,
	caller Caller,
	facts Facts,
) (Decision, error) {
	r, ok := c.Role(role)
	if !ok {
		return Decision{
			Role:   role,
			Reason: fmt.Sprintf("role %s is not in the catalog", role),
			Code:   DenyUnknownRole,
		}, nil
	}
	return decide(ctx, r, caller, &lazyFacts{facts: facts})
}

// Explain decides every role of the catalog for caller, in file order.
func (c *Catalog) Explain(ctx context.Context, caller Caller, facts Facts) ([]Decision, error) {
	lf := &lazyFacts{facts: facts}
	out := make([]Decision, 0, len(c.Roles))
	for i := range c.Roles {
		d, err := decide(ctx, &c.Roles[i], caller, lf)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// stage is how far a caller got through a subject's checks, cheapest first:
// free comparisons before label lookups. The furthest stage reached over all
// subjects gives the reason of a denial, as it is the nearest miss.
type stage int

const (
	missNamespace stage = iota
	missServiceAccount
	missNamespaceSelector
	missPodSelector
	matched
)

// outcome is the result of checking one subject.
type outcome struct {
	stage   stage
	subject int
	labels  map[string]string // the labels that did not match
}

func decide(ctx context.Context, r *Role, caller Caller, lf *lazyFacts) (Decision, error) {
	best := outcome{stage: missNamespace, subject: -1}
	for i := range r.Subjects {
		o, err := evaluate(ctx, &r.Subjects[i], caller, lf)
		if err != nil {
			return Decision{}, fmt.Errorf("decide role %s: %w", r.Name, err)
		}
		o.subject = i
		if o.stage == matched {
			return Decision{Role: r.Name, Allowed: true, Reason: fmt.Sprintf(
				"service account %s/%s matches subjects[%d] of role %s",
				caller.Namespace, caller.ServiceAccount, i, r.Name)}, nil
		}
		if best.subject < 0 || o.stage > best.stage {
			best = o
		}
	}
	return denial(r, caller, best), nil
}

func evaluate(ctx context.Context, s *Subject, caller Caller, lf *lazyFacts) (outcome, error) {
	if s.NamespaceSelector == nil && (s.Namespace == "" || s.Namespace != caller.Namespace) {
		return outcome{stage: missNamespace}, nil
	}
	if !s.allowsServiceAccount(caller.ServiceAccount) {
		return outcome{stage: missServiceAccount}, nil
	}
	if s.NamespaceSelector != nil {
		ns, err := lf.namespaceLabels(ctx)
		if err != nil {
			return outcome{}, err
		}
		if !s.NamespaceSelector.Matches(labels.Set(ns)) {
			return outcome{stage: missNamespaceSelector, labels: ns}, nil
		}
	}
	if s.PodSelector != nil {
		pod, err := lf.podLabels(ctx)
		if err != nil {
			return outcome{}, err
		}
		if !s.PodSelector.Matches(labels.Set(pod)) {
			return outcome{stage: missPodSelector, labels: pod}, nil
		}
	}
	return outcome{stage: matched}, nil
}

func (s *Subject) allowsServiceAccount(name string) bool {
	if name == "" {
		return false
	}
	for _, sa := range s.ServiceAccounts {
		if sa == AnyServiceAccount || sa == name {
			return true
		}
	}
	return false
}

// denial words the nearest miss so that the developer of the calling app
// knows what to change, or whom to ask.
func denial(r *Role, caller Caller, o outcome) Decision {
	d := Decision{Role: r.Name}
	switch o.stage {
	case missNamespace:
		d.Code = DenyNamespace
		d.Reason = fmt.Sprintf("namespace %s does not match any subject of role %s",
			caller.Namespace, r.Name)
	case missServiceAccount:
		d.Code = DenyNotSubject
		d.Reason = fmt.Sprintf("service account %s/%s is not a subject of role %s",
			caller.Namespace, caller.ServiceAccount, r.Name)
	case missNamespaceSelector:
		d.Code = DenyNamespace
		d.Reason = fmt.Sprintf("namespace %s labels %s do not match namespaceSelector %s of role %s",
			caller.Namespace, formatLabels(o.labels),
			r.Subjects[o.subject].NamespaceSelector, r.Name)
	default:
		d.Code = DenyPodLabels
		d.Reason = fmt.Sprintf("pod labels %s do not match podSelector %s of role %s",
			formatLabels(o.labels), r.Subjects[o.subject].PodSelector, r.Name)
	}
	return d
}

func formatLabels(m map[string]string) string {
	return "{" + labels.Set(m).String() + "}"
}

// lazyFacts asks for each kind of label at most once, and only when asked.
// Failed lookups are not remembered.
type lazyFacts struct {
	facts       Facts
	ns, pod     map[string]string
	nsOK, podOK bool
}

func (l *lazyFacts) namespaceLabels(ctx context.Context) (map[string]string, error) {
	if l.nsOK {
		return l.ns, nil
	}
	if l.facts == nil {
		return nil, errNoFacts
	}
	ns, err := l.facts.NamespaceLabels(ctx)
	if err != nil {
		return nil, fmt.Errorf("look up namespace labels: %w", err)
	}
	l.ns, l.nsOK = ns, true
	return ns, nil
}

func (l *lazyFacts) podLabels(ctx context.Context) (map[string]string, error) {
	if l.podOK {
		return l.pod, nil
	}
	if l.facts == nil {
		return nil, errNoFacts
	}
	pod, err := l.facts.PodLabels(ctx)
	if err != nil {
		return nil, fmt.Errorf("look up pod labels: %w", err)
	}
	l.pod, l.podOK = pod, true
	return pod, nil
}

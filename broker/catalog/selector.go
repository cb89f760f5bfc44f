package catalog

import (
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// parseSelector checks a label selector element by element, so that each
// problem names its place, and returns it as a labels.Selector; nil when
// ls is nil or invalid.
func parseSelector(p *problems, at string, ls *metav1.LabelSelector) labels.Selector {
	if ls == nil {
		return nil
	}
	before := len(p.list)
	checkMatchLabels(p, field(at, "matchLabels"), ls.MatchLabels)
	for i, req := range ls.MatchExpressions {
		checkRequirement(p, index(field(at, "matchExpressions"), i), req)
	}
	if len(p.list) > before {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		p.add(at, "%v", err)
		return nil
	}
	return sel
}

func checkMatchLabels(p *problems, at string, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			p.add(at, "invalid label key %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(m[k]); len(errs) > 0 {
			p.add(at, "invalid value %q for label %s: %s", m[k], k, strings.Join(errs, "; "))
		}
	}
}

func checkRequirement(p *problems, at string, req metav1.LabelSelectorRequirement) {
	if errs := validation.IsQualifiedName(req.Key); len(errs) > 0 {
		p.add(field(at, "key"), "invalid label key %q: %s", req.Key, strings.Join(errs, "; "))
	}
	switch req.Operator {
	case metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn:
		if len(req.Values) == 0 {
			p.add(field(at, "values"), "at least one value is required with operator %s", req.Operator)
		}
	case metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist:
		if len(req.Values) > 0 {
			p.add(field(at, "values"), "must be empty with operator %s", req.Operator)
		}
	default:
		p.add(field(at, "operator"), "%q is not one of In, NotIn, Exists, DoesNotExist", req.Operator)
	}
	for i, v := range req.Values {
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			p.add(index(field(at, "values"), i), "invalid label value %q: %s", v, strings.Join(errs, "; "))
		}
	}
}

package webhook

import (
	"encoding/json"
	"reflect"
	"strings"
)

// Op is one JSON Patch (RFC 6902) operation.
type Op struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

func add(path string, v any) Op     { return Op{Op: "add", Path: path, Value: v} }
func replace(path string, v any) Op { return Op{Op: "replace", Path: path, Value: v} }
func remove(path string) Op         { return Op{Op: "remove", Path: path} }

// escape turns a map key into a JSON Pointer segment (RFC 6901).
func escape(key string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(key)
}

// covers reports whether actual already holds everything desired sets. The API server
// fills defaults into what the injector wrote, and other webhooks may add fields, so a
// strict comparison would re-patch an injected pod forever; a field the injector sets
// but that differs, or a list of another length, still counts as a difference.
func covers(actual, desired any) bool {
	a, errA := toJSONValue(actual)
	d, errD := toJSONValue(desired)
	if errA != nil || errD != nil {
		return false
	}
	return subset(a, d)
}

func toJSONValue(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	err = json.Unmarshal(b, &out)
	return out, err
}

func subset(actual, desired any) bool {
	switch d := desired.(type) {
	case map[string]any:
		a, ok := actual.(map[string]any)
		if !ok {
			return false
		}
		for k, dv := range d {
			if !subset(a[k], dv) {
				return false
			}
		}
		return true
	case []any:
		a, ok := actual.([]any)
		if !ok || len(a) != len(d) {
			return false
		}
		for i := range d {
			if !subset(a[i], d[i]) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(actual, desired)
	}
}

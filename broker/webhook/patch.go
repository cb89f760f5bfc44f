package webhook

import "strings"

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

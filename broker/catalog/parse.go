package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	sjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Load reads and parses the catalog file at path. The error is an *Error when
// the file was read but is not a valid catalog.
func Load(path string) (*Catalog, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// readLimited reads at most one byte more than MaxFileSize, so that Parse can
// refuse an oversized file without the whole of it ever being in memory.
func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path) // #nosec G304 -- the operator names the catalog file
	if err != nil {
		return nil, fmt.Errorf("read catalog: %w", err)
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read catalog %s: %w", path, err)
	}
	return data, nil
}

// Parse validates the catalog in data; source names it in problems. The
// error is an *Error listing every problem found.
func Parse(source string, data []byte) (*Catalog, error) {
	p := &problems{source: source}
	roles := parseFile(p, data)
	if err := p.err(); err != nil {
		return nil, err
	}
	return &Catalog{Source: source, Roles: roles}, nil
}

func parseFile(p *problems, data []byte) []Role {
	if len(data) > MaxFileSize {
		p.add("", "file is larger than the limit of %d bytes", MaxFileSize)
		return nil
	}
	doc, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		p.add("", "invalid YAML: %s", strings.TrimPrefix(err.Error(), "error converting YAML to JSON: "))
		return nil
	}
	var f catalogFile
	if !decodeStrict(p, "", doc, &f) {
		return nil
	}
	checkHeader(p, f)
	return parseRoles(p, f.Roles)
}

func checkHeader(p *problems, f catalogFile) {
	if f.APIVersion != APIVersion {
		p.add("apiVersion", "want %s, got %q", APIVersion, f.APIVersion)
	}
	if f.Kind != Kind {
		p.add("kind", "want %s, got %q", Kind, f.Kind)
	}
}

func parseRoles(p *problems, raws []json.RawMessage) []Role {
	switch {
	case len(raws) == 0:
		p.add("roles", "at least one role is required")
		return nil
	case len(raws) > MaxRoles:
		p.add("roles", "%d roles, more than the limit of %d", len(raws), MaxRoles)
		return nil
	}
	roles := make([]Role, 0, len(raws))
	first := make(map[string]int, len(raws))
	for i, raw := range raws {
		path := index("roles", i)
		r, ok := parseRole(p, path, raw)
		if !ok {
			continue
		}
		if j, dup := first[r.Name]; dup && r.Name != "" {
			p.add(field(path, "name"), "duplicate role name %q, first declared at roles[%d]", r.Name, j)
		} else {
			first[r.Name] = i
		}
		roles = append(roles, r)
	}
	return roles
}

// fieldError is how sigs.k8s.io/json reports an unknown or duplicate field.
type fieldError interface {
	error
	FieldPath() string
}

// decodeStrict decodes one JSON element into v, reporting unknown and
// duplicate fields and wrong types under path. It returns false when v could
// not be decoded and must not be checked further.
func decodeStrict(p *problems, path string, data []byte, v any) bool {
	strict, err := sjson.UnmarshalStrict(data, v)
	if err != nil {
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			p.add(field(path, te.Field), "want %s, got %s", describeType(te.Type), te.Value)
		} else {
			p.add(path, "cannot decode: %v", err)
		}
		return false
	}
	for _, e := range strict {
		fe, ok := errors.AsType[fieldError](e)
		if !ok {
			p.add(path, "%v", e)
			continue
		}
		kind := "unknown field"
		if strings.HasPrefix(e.Error(), "duplicate field") {
			kind = "duplicate field"
		}
		p.add(field(path, fe.FieldPath()), "%s", kind)
	}
	return true
}

// describeType says in catalog words what a Go type expects.
func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map, reflect.Pointer:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	default:
		return t.String()
	}
}

package catalog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that the loader never panics, and that whatever it accepts
// is a valid catalog: written back with Encode, it parses again to the same.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"catalog.yaml", "broken-catalog.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "examples", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(decideCatalog))
	f.Add(withRoles(okRole))
	f.Add([]byte(""))
	f.Add([]byte("roles: [{ttl: 600, grant: {rules: [[]]}}]"))

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			if _, ok := errors.AsType[*Error](err); !ok {
				t.Fatalf("error %T is not an *Error: %v", err, err)
			}
			return
		}
		first, err := c.Encode()
		if err != nil {
			t.Fatalf("encode accepted catalog: %v", err)
		}
		again, err := Parse("fuzz.yaml", first)
		if err != nil {
			t.Fatalf("accepted catalog does not re-validate: %v\n%s", err, first)
		}
		second, err := again.Encode()
		if err != nil {
			t.Fatalf("encode re-parsed catalog: %v", err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("catalog changed on a round trip:\n%s\nthen\n%s", first, second)
		}
	})
}

package issuer

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestPolicyMatchesGolden(t *testing.T) {
	tests := []struct{ name, mount, authMount, golden string }{
		{"default mounts", "kubernetes", "kubernetes", "policy-default.hcl"},
		{"custom mounts", "k8s-prod", "k8s-auth", "policy-custom.hcl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Policy(tt.mount, tt.authMount)
			path := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Fatalf("Policy differs from %s (run with -update to accept):\n%s", path, got)
			}
		})
	}
}

package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestTheAgentLinksNoKubernetesOrVaultClient keeps the agent small: it runs
// in every pod and talks only to the broker.
func TestTheAgentLinksNoKubernetesOrVaultClient(t *testing.T) {
	forbidden := []string{"k8s.io/client-go", "k8s.io/apimachinery", "github.com/hashicorp/vault"}
	for _, pkg := range []string{".", "../../internal/cli"} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range forbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}

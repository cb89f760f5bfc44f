package main

import (
	"bytes"
	"testing"

	"github.com/lanyard-dev/lanyard/broker/issuer"
)

func TestVaultPolicyPrintsThePolicyForTheGivenMounts(t *testing.T) {
	tests := []struct {
		name             string
		args             []string
		mount, authMount string
	}{
		{"default mounts", nil, "kubernetes", "kubernetes"},
		{"custom mounts", []string{"--mount", "k8s-prod", "--auth-mount", "k8s-auth"}, "k8s-prod", "k8s-auth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			root := newRootCommand()
			root.SetOut(&out)
			root.SetArgs(append([]string{"vault", "policy"}, tt.args...))
			if err := root.Execute(); err != nil {
				t.Fatal(err)
			}
			if out.String() != issuer.Policy(tt.mount, tt.authMount) {
				t.Fatalf("printed:\n%s", out.String())
			}
		})
	}
}

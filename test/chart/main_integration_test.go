//go:build integration

package chart

import (
	"os"
	"testing"

	"github.com/lanyard-dev/lanyard/test/harness"
)

// TestMain starts one control plane (no Vault: nothing here mints credentials).
func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Options{SkipVault: true}))
}

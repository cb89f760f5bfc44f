//go:build tools

// Package tools records the Vault command the test stack builds.
package tools

import _ "github.com/hashicorp/vault"

//go:build tools

// Package tools records the helm command the chart tests use.
package tools

import _ "helm.sh/helm/v4/cmd/helm"

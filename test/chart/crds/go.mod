// Module crds pins the projects whose CustomResourceDefinitions the chart's custom
// resources (cert-manager's Certificate and Issuer, the Prometheus Operator's
// ServiceMonitor) are created against in test/chart's integration tests. The tests
// run `go mod download -json` here and read the CRD files from the module zips; no
// code is built from these modules, so there is no Go file, and `go mod tidy` would
// drop the requirements: edit versions with `go mod edit -require` and refresh go.sum
// with `go mod download <module>`.
module github.com/lanyard-dev/lanyard/test/chart/crds

go 1.26.0

require (
	github.com/cert-manager/cert-manager v1.21.2
	github.com/prometheus-operator/prometheus-operator v0.85.0
)

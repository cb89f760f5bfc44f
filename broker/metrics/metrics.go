// Package metrics holds the broker's Prometheus metrics, on a registry of
// its own rather than the process-global one.
package metrics

import (
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// OtherReason is the denial label used for any reason outside the known set,
// so that the label's values stay bounded whatever a caller sends.
const OtherReason = "other"

// Metrics are the broker's metrics as SPEC names them.
type Metrics struct {
	Registry *prometheus.Registry

	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	denials       *prometheus.CounterVec
	vault         *prometheus.HistogramVec
	catalogRoles  prometheus.Gauge
	reloadFailure prometheus.Counter

	reasons []string
}

// New registers the broker's metrics and the Go and process collectors on a
// new registry. reasons is the complete set of denial reasons; any other
// value is counted as OtherReason.
func New(reasons []string) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lanyard_broker_requests_total",
			Help: "gRPC requests by method and status code.",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lanyard_broker_request_duration_seconds",
			Help:    "gRPC request latency by method.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"method"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lanyard_broker_denials_total",
			Help: "Refused requests by reason.",
		}, []string{"reason"}),
		vault: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lanyard_broker_vault_request_duration_seconds",
			Help:    "Vault call latency by operation (issue, revoke, sync).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"op"}),
		catalogRoles: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lanyard_broker_catalog_roles",
			Help: "Roles in the catalog being served.",
		}),
		reloadFailure: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lanyard_broker_catalog_reload_failures_total",
			Help: "Catalog loads refused as invalid; the last good catalog stays in use.",
		}),
		reasons: append(slices.Clone(reasons), OtherReason),
	}
	m.Registry.MustRegister(m.requests, m.duration, m.denials, m.vault, m.catalogRoles,
		m.reloadFailure, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range m.reasons {
		m.denials.WithLabelValues(r)
	}
	return m
}

// Request counts one finished gRPC call.
func (m *Metrics) Request(method, code string, d time.Duration) {
	m.requests.WithLabelValues(method, code).Inc()
	m.duration.WithLabelValues(method).Observe(d.Seconds())
}

// Denial counts one refused request. A reason outside the known set counts
// as OtherReason.
func (m *Metrics) Denial(reason string) {
	if !slices.Contains(m.reasons, reason) {
		reason = OtherReason
	}
	m.denials.WithLabelValues(reason).Inc()
}

// Vault records the latency of one Vault operation.
func (m *Metrics) Vault(op string, d time.Duration) {
	m.vault.WithLabelValues(op).Observe(d.Seconds())
}

// CatalogLoaded records the size of a newly served catalog.
func (m *Metrics) CatalogLoaded(roles int) { m.catalogRoles.Set(float64(roles)) }

// CatalogRejected counts a refused catalog reload.
func (m *Metrics) CatalogRejected() { m.reloadFailure.Inc() }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

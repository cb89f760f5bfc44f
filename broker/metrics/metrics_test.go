package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDenialKeepsTheLabelSetBounded(t *testing.T) {
	m := New([]string{"not_subject", "unknown_role"})
	m.Denial("not_subject")
	m.Denial("eyJhbGciOi.a-token-someone-sent")
	m.Denial("free text from anywhere")
	if got := testutil.ToFloat64(m.denials.WithLabelValues("not_subject")); got != 1 {
		t.Errorf("not_subject = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.denials.WithLabelValues(OtherReason)); got != 2 {
		t.Errorf("other = %v, want 2", got)
	}
	if n := testutil.CollectAndCount(m.denials); n != 3 {
		t.Errorf("denial series = %d, want 3", n)
	}
}

func TestHandlerServesEveryBrokerMetric(t *testing.T) {
	m := New(nil)
	m.Request("IssueCredential", "OK", time.Second)
	m.Vault("issue", time.Second)
	m.CatalogLoaded(3)
	m.CatalogRejected()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, name := range []string{
		`lanyard_broker_requests_total{code="OK",method="IssueCredential"} 1`,
		`lanyard_broker_request_duration_seconds_count{method="IssueCredential"} 1`,
		`lanyard_broker_denials_total{reason="other"} 0`,
		`lanyard_broker_vault_request_duration_seconds_count{op="issue"} 1`,
		`lanyard_broker_catalog_roles 3`,
		`lanyard_broker_catalog_reload_failures_total 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, name) {
			t.Errorf("metrics lack %s", name)
		}
	}
}

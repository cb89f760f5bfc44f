package health

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lanyard-dev/lanyard/agent/credential"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, string(body)
}

func TestReadinessFollowsThePublishedCredential(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := NewState(func() time.Time { return now })
	h := s.Handler()
	steps := []struct {
		name  string
		do    func()
		ready int
	}{
		{"before the first credential the agent is not ready", func() {}, 503},
		{"a published credential makes it ready",
			func() { s.Published(credential.Credential{ExpiresAt: now.Add(time.Minute)}) }, 200},
		{"failed refreshes keep it ready while the credential lives", s.RefreshFailed, 200},
		{"an expired credential makes it unready", func() { now = now.Add(2 * time.Minute) }, 503},
	}
	for _, st := range steps {
		st.do()
		if code, _ := get(t, h, "/readyz"); code != st.ready {
			t.Errorf("%s: /readyz = %d, want %d", st.name, code, st.ready)
		}
		if code, _ := get(t, h, "/healthz"); code != 200 {
			t.Errorf("%s: /healthz = %d, want 200", st.name, code)
		}
	}
}

func TestMetricsUseThePrometheusTextFormat(t *testing.T) {
	s := NewState(time.Now)
	s.Published(credential.Credential{ExpiresAt: time.Unix(1_800_000_600, 500_000_000)})
	s.RefreshFailed()
	s.RefreshFailed()
	_, body := get(t, s.Handler(), "/metrics")
	for _, want := range []string{
		"# TYPE lanyard_agent_credential_expiry_timestamp_seconds gauge\n",
		"\nlanyard_agent_credential_expiry_timestamp_seconds 1.8000006005e+09\n",
		"# TYPE lanyard_agent_refresh_failures_total counter\n",
		"\nlanyard_agent_refresh_failures_total 2\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

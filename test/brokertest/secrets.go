package brokertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/lanyard-dev/lanyard/broker/audit"
)

// secrets are the tokens a broker must never write to its logs or audit.
type secrets struct {
	mu   sync.Mutex
	list []string
}

// remember records s and, for a JWT, its signature, which alone identifies
// the token.
func (s *secrets) remember(secret string) {
	if len(secret) < 16 {
		return // too short to search for without false alarms
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, secret)
	if parts := strings.Split(secret, "."); len(parts) == 3 && len(parts[2]) >= 16 {
		s.list = append(s.list, parts[2])
	}
}

// find returns the index of the first remembered secret in text, or -1.
func (s *secrets) find(text string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, secret := range s.list {
		if strings.Contains(text, secret) {
			return i
		}
	}
	return -1
}

// Remember records a token (a caller's, or a credential the broker issued)
// that must not appear in the broker's logs or audit log; the test fails at
// its end if it does.
func (b *Broker) Remember(token string) { b.secrets.remember(token) }

// Leaked says where a remembered token appears in the broker's output so
// far, without the token, or returns "" when it appears nowhere.
func (b *Broker) Leaked() string {
	if i := b.secrets.find(b.Logs()); i >= 0 {
		return fmt.Sprintf("remembered secret #%d appears in the broker's log", i)
	}
	auditLines, err := os.ReadFile(b.AuditFile)
	if err == nil {
		if i := b.secrets.find(string(auditLines)); i >= 0 {
			return fmt.Sprintf("remembered secret #%d appears in the audit log", i)
		}
	}
	return ""
}

func (b *Broker) checkNoSecrets(t testing.TB) {
	t.Helper()
	if where := b.Leaked(); where != "" {
		t.Error("brokertest: a token leaked: " + where)
	}
}

// Audit returns the audit events written so far, oldest first.
func (b *Broker) Audit(t testing.TB) []audit.Event {
	t.Helper()
	data, err := os.ReadFile(b.AuditFile)
	if err != nil {
		t.Fatalf("brokertest: read audit log: %v", err)
	}
	var events []audit.Event
	for line := range bytes.Lines(data) {
		var e audit.Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("brokertest: audit line is not an event: %v", err)
		}
		events = append(events, e)
	}
	return events
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

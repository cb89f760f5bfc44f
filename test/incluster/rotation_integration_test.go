//go:build integration

package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/agent/agenttest"
	"github.com/lanyard-dev/lanyard/agent/brokerclient"
	"github.com/lanyard-dev/lanyard/agent/credential"
	"github.com/lanyard-dev/lanyard/agent/renew"
	"github.com/lanyard-dev/lanyard/agent/writer"
	"github.com/lanyard-dev/lanyard/broker/audit"
	"github.com/lanyard-dev/lanyard/test/brokertest"
)

// TestRotationPublishesCompleteSetsAndRevokesTheOldCredential drives the
// agent's renewal loop, with its real broker client and writer, through
// three rotations against the real broker. The fake clock jumps to each
// refresh point; the API server still runs on real time, so an old token
// stops working only because the broker revoked it.
func TestRotationPublishesCompleteSetsAndRevokesTheOldCredential(t *testing.T) {
	sc := newScene(t, "rotation")
	out := filepath.Join(t.TempDir(), "creds")
	client, err := brokerclient.New(brokerclient.Options{Addr: sc.broker.Addr,
		CAFile: sc.broker.CAFile, TokenFile: sc.caller.TokenFile, Role: brokertest.RolePodReader})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	issuer := &checkedIssuer{Client: client, dir: out, remember: sc.broker.Remember,
		tokens: map[string]string{}}
	clock := agenttest.NewClock(time.Now())
	runner := &renew.Runner{Issuer: issuer, Publisher: &writer.Writer{Dir: out}, Clock: clock}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx) }()
	stop := sync.OnceValue(func() error { cancel(); return <-done })
	defer func() { _ = stop() }()

	rd := newReader(out, expectedSet{namespace: sc.ns, apiServer: sc.stack.APIServerURL,
		ca: sc.stack.CA.CertPEM})
	stopReader := make(chan struct{})
	readerErr := make(chan error, 1)
	go func() { readerErr <- rd.run(stopReader) }()

	const rotations = 3
	var previous string
	for gen := 1; gen <= rotations+1; gen++ {
		if _, ok := clock.NextTimer(time.Minute); !ok {
			t.Fatalf("generation %d: the agent never settled", gen)
		}
		previous = checkGeneration(t, sc, issuer, out, gen, previous)
		if gen <= rotations {
			clock.FireNext(time.Minute)
		}
	}
	issuer.stopping.Store(true)
	if err := stop(); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	close(stopReader)
	if err := <-readerErr; err != nil {
		t.Error(err)
	}
	issuer.check(t, rd)
	assertAuditOrder(t, sc.broker.Audit(t), issuer.issuedIDs())
	waitRefused(t, sc.stack, previous, sc.ns) // revoked at shutdown
}

// checkGeneration checks the set published for credential number gen and
// that the credential it replaced, previous, is refused by the API server.
// It returns the new token.
func checkGeneration(
	t *testing.T,
	sc *scene,
	issuer *checkedIssuer,
	out string,
	gen int,
	previous string,
) string {
	t.Helper()
	ids := issuer.issuedIDs()
	if len(ids) != gen {
		t.Fatalf("generation %d: %d credentials issued", gen, len(ids))
	}
	token := sc.publishedToken(t, out)
	if token != issuer.token(ids[gen-1]) {
		t.Fatalf("generation %d: the published token is not the latest credential's", gen)
	}
	set, err := readSet(filepath.Join(out, "..data"))
	if err != nil {
		t.Fatal(err)
	}
	want := expectedSet{namespace: sc.ns, apiServer: sc.stack.APIServerURL, ca: sc.stack.CA.CertPEM}
	if err := want.check(set); err != nil {
		t.Fatalf("generation %d: %v", gen, err)
	}
	if _, err := kubeconfigClient(t, out).CoreV1().Pods(sc.ns).List(context.Background(),
		metav1.ListOptions{}); err != nil {
		t.Fatalf("generation %d: the kubeconfig does not work: %v", gen, err)
	}
	if previous != "" {
		waitRefused(t, sc.stack, previous, sc.ns)
	}
	return token
}

// checkedIssuer is the agent's broker client with a check before every
// revocation: unless the agent is stopping, the credential it revokes must
// not be the one published in dir.
type checkedIssuer struct {
	*brokerclient.Client
	dir      string
	remember func(token string)
	stopping atomic.Bool

	mu     sync.Mutex
	tokens map[string]string // by credential id
	ids    []string          // in the order issued
	errs   []string
}

func (c *checkedIssuer) Issue(ctx context.Context) (credential.Credential, error) {
	cred, err := c.Client.Issue(ctx)
	if err == nil {
		c.remember(cred.Token.Reveal())
		c.mu.Lock()
		c.tokens[cred.ID] = cred.Token.Reveal()
		c.ids = append(c.ids, cred.ID)
		c.mu.Unlock()
	}
	return cred, err
}

func (c *checkedIssuer) Revoke(ctx context.Context, id string) error {
	published, err := os.ReadFile(filepath.Join(c.dir, "token"))
	c.mu.Lock()
	n := len(c.ids)
	for i, issued := range c.ids {
		if issued == id {
			n = i + 1
		}
	}
	switch {
	case err != nil:
		c.errs = append(c.errs, fmt.Sprintf("credential %d revoked with nothing published: %v", n, err))
	case !c.stopping.Load() && string(published) == c.tokens[id]:
		c.errs = append(c.errs, fmt.Sprintf("credential %d revoked while still published", n))
	}
	c.mu.Unlock()
	return c.Client.Revoke(ctx, id)
}

func (c *checkedIssuer) issuedIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.ids...)
}

func (c *checkedIssuer) token(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokens[id]
}

// check reports the revocations that came too early, and any token the
// reader saw that the broker never issued.
func (c *checkedIssuer) check(t *testing.T, rd *reader) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.errs {
		t.Error(e)
	}
	issued := map[[sha256.Size]byte]bool{}
	for _, tok := range c.tokens {
		issued[sha256.Sum256([]byte(tok))] = true
	}
	seen, reads := rd.seen()
	for digest, set := range seen {
		if !issued[digest] {
			t.Errorf("the reader saw a token in set %s that the broker never issued", set)
		}
	}
	if reads == 0 || len(seen) < 2 {
		t.Errorf("the reader made %d reads of %d sets; it must read across a rotation", reads,
			len(seen))
	}
	t.Logf("%d consistent reads of %d sets", reads, len(seen))
}

// assertAuditOrder checks the broker's view: each credential is revoked
// only after its successor was issued, the last one at shutdown.
func assertAuditOrder(t *testing.T, events []audit.Event, ids []string) {
	t.Helper()
	name := map[string]string{}
	for i, id := range ids {
		name[id] = fmt.Sprint(i + 1)
	}
	var got []string
	for _, e := range events {
		switch e.Event {
		case audit.CredentialIssued, audit.CredentialRevoked:
			got = append(got, strings.TrimPrefix(e.Event, "credential.")+" "+name[e.CredentialID])
		}
	}
	want := []string{"issued 1"}
	for i := 2; i <= len(ids); i++ {
		want = append(want, fmt.Sprintf("issued %d", i), fmt.Sprintf("revoked %d", i-1))
	}
	want = append(want, fmt.Sprintf("revoked %d", len(ids)))
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("audit order:\n got %s\nwant %s", strings.Join(got, ", "), strings.Join(want, ", "))
	}
}

//go:build integration

package server

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lanyard-dev/lanyard/broker/audit"
	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

const brokenCatalog = `apiVersion: lanyard.dev/v1alpha1
kind: RoleCatalog
roles:
  - name: Not_A_Name
    grant: {namespace: caller, clusterRole: view, role: edit}
`

// TestCatalogReload writes a broken catalog over the good one, then a good
// change, and checks what the broker serves and what Vault holds.
func TestCatalogReload(t *testing.T) {
	lb := sharedBroker(t)
	_, tok := newPod(t, lb, "team-a", "app", map[string]string{"app": "web"})
	t.Cleanup(func() { lb.writeCatalog(t, integrationCatalog) })

	lb.writeCatalog(t, brokenCatalog)
	if err := poll(30*time.Second, func() error { return lb.hasAudit(t, audit.CatalogRejected) }); err != nil {
		t.Fatalf("no catalog.rejected event: %v", err)
	}
	if got := lb.roleNames(t, tok); !slices.Equal(got, []string{"pod-reader", "viewer",
		"config-editor", "reporter", "ns-lister"}) {
		t.Errorf("after a broken catalog, roles = %v, want the old ones", got)
	}

	changed := strings.Replace(integrationCatalog, "name: ns-lister", "name: ns-reader", 1)
	lb.writeCatalog(t, changed)
	err := poll(60*time.Second, func() error {
		roles, err := lb.vaultRoles()
		if err != nil {
			return err
		}
		if !slices.Contains(roles, "lanyard-ns-reader") || slices.Contains(roles, "lanyard-ns-lister") {
			return errors.New("vault roles not synced: " + strings.Join(roles, ","))
		}
		return nil
	})
	if err != nil {
		t.Errorf("good change: %v", err)
	}
	if got := lb.roleNames(t, tok); !slices.Contains(got, "ns-reader") || slices.Contains(got, "ns-lister") {
		t.Errorf("after a good change, roles = %v", got)
	}
}

// writeCatalog replaces the catalog file atomically, as a ConfigMap update
// or an editor would.
func (lb *liveBroker) writeCatalog(t *testing.T, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(lb.catalog), ".catalog.tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, lb.catalog); err != nil {
		t.Fatal(err)
	}
}

func (lb *liveBroker) hasAudit(t *testing.T, event string) error {
	tb := &testBroker{audit: lb.audit}
	for _, ev := range tb.auditEvents(t) {
		if ev.Event == event {
			return nil
		}
	}
	return errors.New("no " + event + " event yet")
}

func (lb *liveBroker) roleNames(t *testing.T, tok string) []string {
	t.Helper()
	resp, err := lb.client.ListRoles(bearer(tok), &lanyardv1.ListRolesRequest{})
	if err != nil {
		t.Fatalf("ListRoles: %v", err)
	}
	var names []string
	for _, r := range resp.GetRoles() {
		names = append(names, r.GetName())
	}
	return names
}

// vaultRoles lists the roles on the secrets engine mount, with the root
// token: an assertion, not something the broker does.
func (lb *liveBroker) vaultRoles() ([]string, error) {
	root, err := lb.stack.VaultClient(lb.stack.VaultRootToken)
	if err != nil {
		return nil, err
	}
	secret, err := root.Logical().ListWithContext(context.Background(), lb.stack.VaultMount+"/roles")
	if err != nil || secret == nil {
		return nil, errors.Join(errors.New("list vault roles"), err)
	}
	var names []string
	keys, _ := secret.Data["keys"].([]any)
	for _, k := range keys {
		if s, ok := k.(string); ok {
			names = append(names, s)
		}
	}
	return names, nil
}

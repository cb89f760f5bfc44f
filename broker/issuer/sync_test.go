package issuer

import (
	"context"
	"reflect"
	"testing"

	"github.com/lanyard-dev/lanyard/broker/catalog"
)

func syncCatalog(roles ...*catalog.Role) *catalog.Catalog {
	c := &catalog.Catalog{Source: "catalog.yaml"}
	for _, r := range roles {
		c.Roles = append(c.Roles, *r)
	}
	return c
}

// foreignRole is a role of the same mount that lanyard does not own.
var foreignRole = map[string]any{
	"allowed_kubernetes_namespaces": []string{"*"}, "service_account_name": "ci",
}

func TestSyncCreatesUpdatesAndDeletesOnlyLanyardRoles(t *testing.T) {
	f := newFakeVault(t)
	i := newTestIssuer(t, f.srv.URL, nil)
	ctx := context.Background()
	f.roles["ci-deployer"] = foreignRole
	f.roles["lanyard-stale"] = vaultRoleDefaults("lanyard-stale")

	reader := testRole("reader", podReadGrant())
	viewer := testRole("viewer", catalog.Grant{Namespace: "Team-B", ClusterRole: "view"})
	changes, err := i.Sync(ctx, syncCatalog(reader, viewer), false)
	if err != nil {
		t.Fatalf("first Sync: %v", err)
	}
	want := []Change{
		{OpCreate, "lanyard-reader"}, {OpDelete, "lanyard-stale"}, {OpCreate, "lanyard-viewer"},
	}
	if !reflect.DeepEqual(changes, want) {
		t.Fatalf("first Sync = %v, want %v", changes, want)
	}
	if !reflect.DeepEqual(f.roles["ci-deployer"], foreignRole) {
		t.Fatalf("foreign role touched: %v", f.roles["ci-deployer"])
	}

	changes, err = i.Sync(ctx, syncCatalog(reader, viewer), false)
	if err != nil || len(changes) != 0 {
		t.Fatalf("Sync of an unchanged catalog = %v, %v; want no changes", changes, err)
	}

	viewer.Grant = catalog.Grant{Namespace: "team-b", Rules: podReadRules}
	changes, err = i.Sync(ctx, syncCatalog(viewer), false)
	if err != nil {
		t.Fatal(err)
	}
	want = []Change{{OpDelete, "lanyard-reader"}, {OpUpdate, "lanyard-viewer"}}
	if !reflect.DeepEqual(changes, want) {
		t.Fatalf("third Sync = %v, want %v", changes, want)
	}
	got := f.roles["lanyard-viewer"]
	if got["kubernetes_role_name"] != "" || got["generated_role_rules"] != podReadDocument {
		t.Fatalf("an update kept the old grant: %v", got)
	}
	if _, ok := f.roles["ci-deployer"]; !ok || len(f.roles) != 2 {
		t.Fatalf("roles after sync = %v", f.roles)
	}
}

func TestSyncDryRunWritesNothing(t *testing.T) {
	f := newFakeVault(t)
	i := newTestIssuer(t, f.srv.URL, nil)
	f.roles["ci-deployer"] = foreignRole
	f.roles["lanyard-stale"] = vaultRoleDefaults("lanyard-stale")
	f.roles["lanyard-reader"] = vaultRoleDefaults("lanyard-reader")
	changes, err := i.Sync(context.Background(), syncCatalog(
		testRole("reader", podReadGrant()), testRole("new", podReadGrant())), true)
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{{OpCreate, "lanyard-new"}, {OpUpdate, "lanyard-reader"}, {OpDelete, "lanyard-stale"}}
	if !reflect.DeepEqual(changes, want) {
		t.Fatalf("dry run = %v, want %v", changes, want)
	}
	if f.writes != 0 {
		t.Fatalf("dry run made %d writes", f.writes)
	}
}

func TestSyncOfAnEmptyMountCreatesEverything(t *testing.T) {
	f := newFakeVault(t)
	i := newTestIssuer(t, f.srv.URL, nil)
	changes, err := i.Sync(context.Background(), syncCatalog(testRole("reader", podReadGrant())), false)
	if err != nil || len(changes) != 1 || changes[0].String() != "create lanyard-reader" {
		t.Fatalf("Sync = %v, %v", changes, err)
	}
}

//go:build integration

package issuer

import (
	"context"
	"reflect"
	"testing"

	"github.com/lanyard-dev/lanyard/broker/catalog"
)

func TestSyncAgainstVaultLeavesForeignRolesAlone(t *testing.T) {
	env := sharedBroker(t)
	ctx := context.Background()
	root, err := env.stack.VaultClient(env.stack.VaultRootToken)
	must(t, err)
	foreignPath := env.stack.VaultMount + "/roles/ci-deployer"
	_, err = root.Logical().WriteWithContext(ctx, foreignPath, map[string]any{
		"allowed_kubernetes_namespaces": []string{"ci"}, "service_account_name": "deployer",
	})
	must(t, err)
	foreignBefore, err := root.Logical().ReadWithContext(ctx, foreignPath)
	must(t, err)

	reader := testRole("sync-reader", catalog.Grant{Namespace: catalog.CallerNamespace, Rules: podReadRules})
	viewer := testRole("sync-viewer", catalog.Grant{Namespace: "team-b", ClusterRole: "view"},
		catalog.Subject{NamespaceSelector: mustSelector(t, "env=prod")})
	sync := func(dryRun bool, roles ...*catalog.Role) []Change {
		t.Helper()
		changes, err := env.issuer.Sync(ctx, syncCatalog(roles...), dryRun)
		if err != nil {
			t.Fatalf("Sync: %v", err)
		}
		return changes
	}

	sync(false) // start from a mount without lanyard roles
	if got := sync(true, reader); !reflect.DeepEqual(got, []Change{{OpCreate, "lanyard-sync-reader"}}) {
		t.Fatalf("dry run = %v", got)
	}
	if got := sync(true, reader); len(got) != 1 {
		t.Fatalf("a dry run wrote: the second dry run = %v", got)
	}
	want := []Change{{OpCreate, "lanyard-sync-reader"}, {OpCreate, "lanyard-sync-viewer"}}
	if got := sync(false, reader, viewer); !reflect.DeepEqual(got, want) {
		t.Fatalf("Sync = %v, want %v", got, want)
	}
	if got := sync(false, reader, viewer); len(got) != 0 {
		t.Fatalf("Sync of an unchanged catalog = %v; Vault's representation was not normalised", got)
	}
	viewer.Grant = catalog.Grant{Namespace: "team-b", Role: "config-reader"}
	want = []Change{{OpDelete, "lanyard-sync-reader"}, {OpUpdate, "lanyard-sync-viewer"}}
	if got := sync(false, viewer); !reflect.DeepEqual(got, want) {
		t.Fatalf("Sync = %v, want %v", got, want)
	}
	if got := sync(false, viewer); len(got) != 0 {
		t.Fatalf("Sync after an update = %v", got)
	}

	stored, err := root.Logical().ReadWithContext(ctx, env.stack.VaultMount+"/roles/lanyard-sync-viewer")
	must(t, err)
	if stored.Data["kubernetes_role_name"] != "config-reader" || stored.Data["kubernetes_role_type"] != "Role" {
		t.Fatalf("updated role = %v", stored.Data)
	}
	foreignAfter, err := root.Logical().ReadWithContext(ctx, foreignPath)
	must(t, err)
	if foreignAfter == nil || !reflect.DeepEqual(foreignAfter.Data, foreignBefore.Data) {
		t.Fatalf("the foreign role changed: %v", foreignAfter)
	}
	sync(false)
	env.logs.assertNoSecret(t)
}

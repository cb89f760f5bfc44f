package issuer

import "strings"

// Policy returns the exact least-privilege Vault policy (HCL) of a broker
// using the secrets engine at mount and logging in through authMount.
//
// Listing roles reveals the names, not the contents, of every role on the
// mount, lanyard's or not: Vault's ACL cannot filter a list by prefix, and
// Sync must see lanyard roles that left the catalog to delete them. Run the
// broker on a mount of its own if role names are sensitive.
func Policy(mount, authMount string) string {
	r := strings.NewReplacer("{mount}", mount, "{authMount}", authMount)
	return r.Replace(policyTemplate)
}

const policyTemplate = `# Vault policy of the lanyard broker (lanyard-broker vault policy).
# The broker logs in with auth/{authMount}/login, which needs no policy.

# Mint credentials for lanyard roles only.
path "{mount}/creds/lanyard-*" {
  capabilities = ["update"]
}

# Keep the lanyard roles equal to the role catalog (catalog sync).
path "{mount}/roles/lanyard-*" {
  capabilities = ["create", "read", "update", "delete"]
}

# Find lanyard roles that left the catalog. This lists the names of every
# role on the mount, not only lanyard's; it reveals no role's content.
path "{mount}/roles/" {
  capabilities = ["list"]
}

# Revoke credentials of lanyard roles only: the lease id is in the path.
path "sys/leases/revoke/{mount}/creds/lanyard-*" {
  capabilities = ["update"]
}

# Keep the broker's own token alive.
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
`

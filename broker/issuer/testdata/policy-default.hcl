# Vault policy of the lanyard broker (lanyard-broker vault policy).
# The broker logs in with auth/kubernetes/login, which needs no policy.

# Mint credentials for lanyard roles only.
path "kubernetes/creds/lanyard-*" {
  capabilities = ["update"]
}

# Keep the lanyard roles equal to the role catalog (catalog sync).
path "kubernetes/roles/lanyard-*" {
  capabilities = ["create", "read", "update", "delete"]
}

# Find lanyard roles that left the catalog. This lists the names of every
# role on the mount, not only lanyard's; it reveals no role's content.
path "kubernetes/roles/" {
  capabilities = ["list"]
}

# Revoke credentials of lanyard roles only: the lease id is in the path.
path "sys/leases/revoke/kubernetes/creds/lanyard-*" {
  capabilities = ["update"]
}

# Keep the broker's own token alive.
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

#!/usr/bin/env bash
# Configures Vault for lanyard: the Kubernetes secrets engine that mints the
# credentials, the Kubernetes auth method the broker logs in with, the
# broker's least-privilege policy and its auth role. Idempotent: run it again
# after changing a setting.
#
# Needs: vault (logged in with a token that may configure mounts, auth
# methods and policies), lanyard-broker, and these variables:
#
#   VAULT_ADDR              Vault address (read by the vault CLI)
#   KUBERNETES_HOST         API server URL as Vault reaches it, e.g. https://10.0.0.1:443
#   KUBERNETES_CA_FILE      PEM file of the API server's CA
#   ENGINE_JWT_FILE         token of the service account the secrets engine acts as,
#                           bound to the ClusterRole in vault-engine-rbac.yaml
# Optional (the defaults match `helm install lanyard deploy/helm/lanyard -n lanyard`):
#   LANYARD_MOUNT           secrets engine mount (kubernetes; the chart's vault.mount)
#   LANYARD_AUTH_MOUNT      auth method mount (kubernetes; vault.authMount)
#   LANYARD_NAMESPACE       namespace of the broker (lanyard; the release namespace)
#   LANYARD_SERVICE_ACCOUNT service account of the broker (lanyard-broker; the chart names
#                           it <fullname>-broker, see README)
#   LANYARD_VAULT_ROLE      auth role the broker logs in with (lanyard-broker; vault.role)
#   LANYARD_AUDIENCE        audience the broker's login token must carry (vault;
#                           vault.audience). Set it empty to check no audience, for a broker
#                           that logs in with a token of the API server's audience.
#   LANYARD_TOKEN_REVIEWER_JWT_FILE
#                           token Vault calls the TokenReview API with (see README); unset:
#                           Vault's own token when it runs in a pod, else the broker's
#   LANYARD_TOKEN_TTL       lifetime of the broker's Vault token (1h)
set -euo pipefail

: "${KUBERNETES_HOST:?set KUBERNETES_HOST to the API server URL}"
: "${KUBERNETES_CA_FILE:?set KUBERNETES_CA_FILE to the API server CA file}"
: "${ENGINE_JWT_FILE:?set ENGINE_JWT_FILE to the secrets engine service account token file}"
mount=${LANYARD_MOUNT:-kubernetes}
auth_mount=${LANYARD_AUTH_MOUNT:-kubernetes}
namespace=${LANYARD_NAMESPACE:-lanyard}
account=${LANYARD_SERVICE_ACCOUNT:-lanyard-broker}
role=${LANYARD_VAULT_ROLE:-lanyard-broker}
audience=${LANYARD_AUDIENCE-vault} # unset: vault; set and empty: no audience check
reviewer_jwt_file=${LANYARD_TOKEN_REVIEWER_JWT_FILE:-}
token_ttl=${LANYARD_TOKEN_TTL:-1h}

step() { echo "vault-setup: $*" >&2; }

# mounted secrets|auth PATH tells whether PATH is mounted.
# The list is read whole first: under pipefail, grep -q leaving early would
# kill vault with SIGPIPE and turn a match into a failure.
mounted() {
	local list
	list=$(vault "$1" list -format=json)
	grep -q "\"$2/\"" <<<"$list"
}

if ! mounted secrets "$mount"; then
	step "enabling the Kubernetes secrets engine at $mount/"
	vault secrets enable -path="$mount" kubernetes
fi
step "configuring $mount/config"
vault write "$mount/config" \
	kubernetes_host="$KUBERNETES_HOST" \
	kubernetes_ca_cert=@"$KUBERNETES_CA_FILE" \
	service_account_jwt=@"$ENGINE_JWT_FILE" \
	disable_local_ca_jwt=true >/dev/null

if ! mounted auth "$auth_mount"; then
	step "enabling the Kubernetes auth method at auth/$auth_mount/"
	vault auth enable -path="$auth_mount" kubernetes
fi
# A write of auth/<mount>/config replaces the whole config: run without the reviewer
# file, it would drop a reviewer token an earlier run stored, and a broker outside
# Vault's cluster could no longer log in. Refuse rather than break it silently.
if [ -z "$reviewer_jwt_file" ] &&
	[ "$(vault read -field=token_reviewer_jwt_set "auth/$auth_mount/config" 2>/dev/null)" = "true" ]; then
	echo "vault-setup: auth/$auth_mount/config holds a token reviewer JWT that this run would" \
		"remove; set LANYARD_TOKEN_REVIEWER_JWT_FILE to it (or a fresh one) and run again" >&2
	exit 1
fi
step "configuring auth/$auth_mount/config"
vault write "auth/$auth_mount/config" \
	kubernetes_host="$KUBERNETES_HOST" \
	kubernetes_ca_cert=@"$KUBERNETES_CA_FILE" \
	${reviewer_jwt_file:+token_reviewer_jwt=@"$reviewer_jwt_file"} >/dev/null

step "writing policy lanyard-broker"
lanyard-broker vault policy --mount "$mount" --auth-mount "$auth_mount" |
	vault policy write lanyard-broker - >/dev/null

step "writing auth role auth/$auth_mount/role/$role for $namespace/$account, audience '$audience'"
vault write "auth/$auth_mount/role/$role" \
	bound_service_account_names="$account" \
	bound_service_account_namespaces="$namespace" \
	audience="$audience" \
	token_policies=lanyard-broker \
	token_no_default_policy=true \
	token_ttl="$token_ttl" \
	token_max_ttl=24h >/dev/null

step "done; the broker logs in with --vault-auth kubernetes --vault-role $role"

{{/*
Contradictory values fail the render with a message saying what to change. Included once,
from the catalog ConfigMap, which every install renders.
*/}}
{{- define "lanyard.validate" -}}
{{- $v := .Values }}
{{- if and $v.tls.certManager.enabled $v.tls.existingSecret }}
{{- fail "tls: set either tls.certManager.enabled or tls.existingSecret, not both" }}
{{- end }}
{{- if not (or $v.tls.certManager.enabled $v.tls.existingSecret) }}
{{- fail "tls: the broker and webhook need a certificate: set tls.certManager.enabled=true or tls.existingSecret" }}
{{- end }}
{{- if and $v.tls.existingSecret $v.webhook.enabled (not $v.tls.caBundle) }}
{{- fail "tls.caBundle: with tls.existingSecret the API server needs the CA that signed it for the webhook; set tls.caBundle to its PEM" }}
{{- end }}
{{- if $v.podDisruptionBudget.enabled }}
{{- $mu := toString $v.podDisruptionBudget.maxUnavailable }}
{{- if or (eq $mu "0") (eq $mu "0%") }}
{{- fail "podDisruptionBudget.maxUnavailable: 0 lets no pod be evicted, so node drains hang; set at least 1, or podDisruptionBudget.enabled=false" }}
{{- end }}
{{- end }}
{{- if lt (int $v.broker.replicas) 1 }}
{{- fail "broker.replicas must be at least 1" }}
{{- end }}
{{- if and $v.webhook.enabled (lt (int $v.webhook.replicas) 1) }}
{{- fail "webhook.replicas must be at least 1 when webhook.enabled" }}
{{- end }}
{{- if and (gt (int $v.broker.replicas) 1) (not (include "lanyard.credentialKey.enabled" .)) }}
{{- fail "broker.credentialKey: replicas > 1 must share a key; set broker.credentialKey.existingSecret or generate=true, or broker.replicas=1" }}
{{- end }}
{{- if and $v.enforcement.enabled (not $v.webhook.enabled) }}
{{- fail "enforcement.enabled refuses every pod that mounts a token in enforced namespaces, but webhook.enabled=false leaves nothing to inject the agent; enable the webhook or disable enforcement" }}
{{- end }}
{{- if and (eq $v.vault.auth "token") (not $v.vault.tokenSecret) }}
{{- fail "vault.tokenSecret: vault.auth=token needs the Secret holding the Vault token" }}
{{- end }}
{{- if and (eq $v.vault.auth "kubernetes") (not $v.vault.role) }}
{{- fail "vault.role: vault.auth=kubernetes needs the Vault role the broker logs in with" }}
{{- end }}
{{- if and $v.vault.tokenSecret (eq $v.vault.auth "kubernetes") }}
{{- fail "vault.tokenSecret is only used with vault.auth=token; remove it or set vault.auth=token" }}
{{- end }}
{{- if and $v.webhook.brokerCA.clusterTrustBundle (not $v.webhook.enabled) }}
{{- fail "webhook.brokerCA.clusterTrustBundle has no effect with webhook.enabled=false" }}
{{- end }}
{{- if and $v.tls.certManager.issuerRef (not $v.tls.certManager.issuerRef.name) }}
{{- fail "tls.certManager.issuerRef needs a name" }}
{{- end }}
{{- if ne (toString $v.catalog.kind) "RoleCatalog" }}
{{- fail "catalog.kind must be RoleCatalog (catalog is the catalog file itself)" }}
{{- end }}
{{- $actions := $v.enforcement.validationActions }}
{{- if and (has "Deny" $actions) (has "Warn" $actions) }}
{{- fail "enforcement.validationActions: the API server refuses Deny together with Warn (a denied request gets its message already); use [Deny], [Deny, Audit] or [Warn, Audit]" }}
{{- end }}
{{- $expiry := $v.webhook.agent.tokenExpiration }}
{{- if lt (include "lanyard.durationSeconds" $expiry | atoi) 600 }}
{{- fail (printf "webhook.agent.tokenExpiration %s: Kubernetes projects tokens for at least 10m, and the webhook refuses to start below that" $expiry) }}
{{- end }}
{{- include "lanyard.distinctPorts" (dict "broker.port" $v.broker.port "broker.healthPort" $v.broker.healthPort "broker.metricsPort" $v.broker.metricsPort) }}
{{- if $v.webhook.enabled }}
{{- include "lanyard.distinctPorts" (dict "webhook.port" $v.webhook.port "webhook.healthPort" $v.webhook.healthPort) }}
{{- end }}
{{- end }}

{{/*
Seconds in a duration of the form values.schema.json admits: whole numbers of h, m and s, as
in 1h30m or 600s (Go's time.ParseDuration reads the same string in the webhook).
*/}}
{{- define "lanyard.durationSeconds" -}}
{{- $unit := dict "h" 3600 "m" 60 "s" 1 }}
{{- $total := 0 }}
{{- range regexFindAll "[0-9]+[hms]" (toString .) -1 }}
{{- $total = add $total (mul (regexFind "[0-9]+" . | atoi) (get $unit (regexFind "[hms]" .))) }}
{{- end }}
{{- $total }}
{{- end }}

{{/*
Fails when two of the ports one pod listens on are equal; the second listener could not bind.
Call with a dict of value name to port.
*/}}
{{- define "lanyard.distinctPorts" -}}
{{- $seen := dict }}
{{- range $name, $port := . }}
{{- $key := toString (int $port) }}
{{- with get $seen $key }}
{{- fail (printf "%s and %s are both port %s; one pod listens on both, so give each its own port" . $name $key) }}
{{- end }}
{{- $_ := set $seen $key $name }}
{{- end }}
{{- end }}

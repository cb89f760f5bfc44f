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
{{- end }}

{{/* Chart name, at most 63 characters. */}}
{{- define "lanyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Resource name prefix, at most 63 characters. */}}
{{- define "lanyard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
A name made of the prefix and a suffix: the prefix is cut so the whole fits 63 characters and
the suffix always survives, so two components never truncate to the same name.
Call: include "lanyard.suffixed" (list . "broker")
*/}}
{{- define "lanyard.suffixed" -}}
{{- $root := index . 0 }}
{{- $suffix := index . 1 }}
{{- $prefix := include "lanyard.fullname" $root | trunc (int (sub 62 (len $suffix))) | trimSuffix "-" }}
{{- printf "%s-%s" $prefix $suffix }}
{{- end }}

{{- define "lanyard.broker.name" -}}{{ include "lanyard.suffixed" (list . "broker") }}{{- end }}
{{- define "lanyard.webhook.name" -}}{{ include "lanyard.suffixed" (list . "webhook") }}{{- end }}
{{- define "lanyard.catalog.name" -}}{{ include "lanyard.suffixed" (list . "catalog") }}{{- end }}

{{- define "lanyard.tls.secret" -}}
{{- if .Values.tls.existingSecret }}
{{- .Values.tls.existingSecret }}
{{- else }}
{{- include "lanyard.suffixed" (list . "tls") }}
{{- end }}
{{- end }}

{{- define "lanyard.credentialKey.secret" -}}
{{- if .Values.broker.credentialKey.existingSecret }}
{{- .Values.broker.credentialKey.existingSecret }}
{{- else }}
{{- include "lanyard.suffixed" (list . "credential-key") }}
{{- end }}
{{- end }}

{{/* True (non-empty) when the broker has a key shared by its replicas. */}}
{{- define "lanyard.credentialKey.enabled" -}}
{{- if or .Values.broker.credentialKey.existingSecret .Values.broker.credentialKey.generate }}true{{ end }}
{{- end }}

{{/* Standard labels. */}}
{{- define "lanyard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "lanyard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: lanyard
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "lanyard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lanyard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of one component. Call: include "lanyard.componentLabels" (list . "broker") */}}
{{- define "lanyard.componentLabels" -}}
{{ include "lanyard.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "lanyard.componentSelector" -}}
{{ include "lanyard.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* An image reference; the tag defaults to the chart's appVersion. Call with (list . image) */}}
{{- define "lanyard.image" -}}
{{- $root := index . 0 }}
{{- $img := index . 1 }}
{{- printf "%s:%s" $img.repository (default $root.Chart.AppVersion $img.tag) }}
{{- end }}

{{/* Service DNS names the serving certificate must carry. */}}
{{- define "lanyard.dnsNames" -}}
{{- range $svc := list (include "lanyard.broker.name" .) (include "lanyard.webhook.name" .) }}
- {{ $svc }}
- {{ $svc }}.{{ $.Release.Namespace }}
- {{ $svc }}.{{ $.Release.Namespace }}.svc
- {{ $svc }}.{{ $.Release.Namespace }}.svc.cluster.local
{{- end }}
{{- end }}

{{/* Preferred anti-affinity spreading a component's replicas over nodes. */}}
{{- define "lanyard.antiAffinity" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "lanyard.componentSelector" . | nindent 12 }}
{{- end }}

{{/* Peers allowed to reach health and metrics ports. */}}
{{- define "lanyard.monitoringFrom" -}}
{{- if .Values.networkPolicy.monitoringFrom }}
{{- toYaml .Values.networkPolicy.monitoringFrom }}
{{- else }}
- podSelector: {}
{{- end }}
{{- end }}

{{/*
Where the API server sends the reviews of both webhook configurations.
Call: include "lanyard.webhookClientConfig" (dict "root" . "path" "/mutate")
*/}}
{{- define "lanyard.webhookClientConfig" -}}
service:
  name: {{ include "lanyard.webhook.name" .root }}
  namespace: {{ .root.Release.Namespace }}
  path: {{ .path }}
  port: 443
{{- if .root.Values.tls.existingSecret }}
caBundle: {{ .root.Values.tls.caBundle | b64enc }}
{{- end }}
{{- end }}

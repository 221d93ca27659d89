{{/* Names, labels and shared pieces of the Lore chart. Every helper is prefixed `lore.`. */}}

{{- define "lore.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "lore.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "lore.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "lore.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: lore
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "gateway") */}}
{{- define "lore.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lore.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The three apps, in a fixed order. */}}
{{- define "lore.apps" -}}
gateway
ingest
query
{{- end -}}

{{- define "lore.appIds" -}}
{{- list .Values.gateway.appId .Values.ingest.appId .Values.query.appId | toJson -}}
{{- end -}}

{{- define "lore.image" -}}
{{- $root := .root -}}
{{- $ref := printf "%s/%s" $root.Values.image.registry .app.image.repository -}}
{{- if $root.Values.image.digest -}}
{{- printf "%s@%s" $ref $root.Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref (default $root.Chart.AppVersion $root.Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Secrets: either the user's (existingSecret) or the chart's own, generated once. */}}
{{- define "lore.daprApiTokenSecret" -}}
{{- default (printf "%s-dapr-api-token" (include "lore.fullname" .)) .Values.auth.daprApiToken.existingSecret -}}
{{- end -}}

{{- define "lore.appApiTokenSecret" -}}
{{- default (printf "%s-app-api-token" (include "lore.fullname" .)) .Values.auth.appApiToken.existingSecret -}}
{{- end -}}

{{- define "lore.adminKeySecret" -}}
{{- default (printf "%s-admin-key" (include "lore.fullname" .)) .Values.gateway.auth.existingSecret -}}
{{- end -}}

{{/* Name of the Secret holding the Redis password; empty when Redis has none. */}}
{{- define "lore.redisSecret" -}}
{{- if .Values.redis.enabled -}}
{{- default (printf "%s-redis" (include "lore.fullname" .)) .Values.redis.auth.existingSecret -}}
{{- else -}}
{{- .Values.redis.external.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "lore.redisSecretKey" -}}
{{- if .Values.redis.enabled -}}
{{- .Values.redis.auth.existingSecretPasswordKey -}}
{{- else -}}
{{- .Values.redis.external.existingSecretPasswordKey -}}
{{- end -}}
{{- end -}}

{{/* `host:port` of Redis. */}}
{{- define "lore.redisHost" -}}
{{- if .Values.redis.enabled -}}
{{- printf "%s-redis:6379" (include "lore.fullname" .) -}}
{{- else -}}
{{- required "redis.external.host is required when redis.enabled is false" .Values.redis.external.host -}}
{{- end -}}
{{- end -}}

{{- define "lore.redisUrl" -}}
{{- $tls := and (not .Values.redis.enabled) .Values.redis.external.tls -}}
{{- $db := ternary 0 (.Values.redis.external.db | int64) .Values.redis.enabled -}}
{{- printf "%s://%s/%v" (ternary "rediss" "redis" $tls) (include "lore.redisHost" .) $db -}}
{{- end -}}

{{/* Base URL of the chat model behind the HTTPEndpoint. */}}
{{- define "lore.llmBaseUrl" -}}
{{- if eq .Values.llm.mode "local" -}}
{{- printf "http://%s-llm:8080" (include "lore.fullname" .) -}}
{{- else -}}
{{- required "llm.external.baseUrl is required when llm.mode is external" .Values.llm.external.baseUrl -}}
{{- end -}}
{{- end -}}

{{/* Secrets the sidecars read through the kubernetes secret store (for the Role). */}}
{{- define "lore.readableSecrets" -}}
{{- $names := list -}}
{{- with include "lore.redisSecret" . }}{{ $names = append $names . }}{{ end -}}
{{- $names = append $names (include "lore.adminKeySecret" .) -}}
{{- if eq .Values.llm.mode "external" }}{{ with .Values.llm.external.existingSecret }}{{ $names = append $names . }}{{ end }}{{ end -}}
{{- $names | uniq | toJson -}}
{{- end -}}

{{/*
A random value kept across upgrades: the live Secret's key when it exists (`lookup` returns an
empty map without a cluster connection: helm v3.22.0 pkg/engine/funcs.go:69,
engine.go:235).
(dict "root" $ "name" secretName "key" key)
*/}}
{{- define "lore.keptRandom" -}}
{{- $live := lookup "v1" "Secret" .root.Release.Namespace .name -}}
{{- if and $live $live.data (hasKey $live.data .key) -}}
{{- index $live.data .key -}}
{{- else -}}
{{- randAlphaNum 40 | b64enc -}}
{{- end -}}
{{- end -}}

{{/* Address, password and TLS metadata shared by the Redis-backed Dapr components. */}}
{{- define "lore.daprRedisMetadata" -}}
- name: redisHost
  value: {{ include "lore.redisHost" . | quote }}
{{- with include "lore.redisSecret" . }}
- name: redisPassword
  secretKeyRef:
    name: {{ . }}
    key: {{ include "lore.redisSecretKey" $ }}
{{- end }}
{{- if and (not .Values.redis.enabled) .Values.redis.external.tls }}
- name: enableTLS
  value: "true"
{{- end }}
{{- end -}}

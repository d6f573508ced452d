{{/* Names and labels. */}}
{{- define "linkgw.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "linkgw.fullname" -}}
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

{{- define "linkgw.selectorLabels" -}}
app.kubernetes.io/name: {{ include "linkgw.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "linkgw.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "linkgw.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: linkgw
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "linkgw.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "linkgw.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "linkgw.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* host:port for a LINKGW_*_LISTEN setting; IPv6 hosts in brackets. */}}
{{- define "linkgw.listen" -}}
{{- $host := .host -}}
{{- if contains ":" $host -}}{{- $host = printf "[%s]" $host -}}{{- end -}}
{{- printf "%s:%v" $host .port -}}
{{- end -}}

{{/*
Where each piece comes from: the Secret / ConfigMap you named, or the one the chart makes from values.
A missing piece fails the render with what to set.
*/}}
{{- define "linkgw.keyringSecret" -}}
{{- if .Values.keyring.existingSecret -}}{{- .Values.keyring.existingSecret -}}
{{- else -}}{{- $_ := required "keyring: set keyring.existingSecret (a Secret you manage) or keyring.json" .Values.keyring.json -}}{{- printf "%s-keyring" (include "linkgw.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "linkgw.tlsSecret" -}}
{{- if .Values.tls.existingSecret -}}{{- .Values.tls.existingSecret -}}
{{- else -}}
{{- $_ := required "tls: set tls.existingSecret or tls.ca" .Values.tls.ca -}}
{{- $_ := required "tls: set tls.existingSecret or tls.cert" .Values.tls.cert -}}
{{- $_ := required "tls: set tls.existingSecret or tls.key" .Values.tls.key -}}
{{- printf "%s-tls" (include "linkgw.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "linkgw.recordsSecret" -}}
{{- if .Values.records.existingSecret -}}{{- .Values.records.existingSecret -}}
{{- else -}}{{- $_ := required "records: set records.existingSecret or records.url (postgres://…)" .Values.records.url -}}{{- printf "%s-records" (include "linkgw.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "linkgw.redisSecret" -}}
{{- if .Values.redis.existingSecret -}}{{- .Values.redis.existingSecret -}}
{{- else -}}{{- $_ := required "redis: set redis.existingSecret or redis.url, or redis.enabled=false" .Values.redis.url -}}{{- printf "%s-redis" (include "linkgw.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "linkgw.policyConfigMap" -}}
{{- if .Values.policy.existingConfigMap -}}{{- .Values.policy.existingConfigMap -}}
{{- else -}}
{{- $_ := required "policy: set policy.existingConfigMap or policy.agencies" .Values.policy.agencies -}}
{{- $_ := required "policy: set policy.existingConfigMap or policy.legalBasis" .Values.policy.legalBasis -}}
{{- printf "%s-policy" (include "linkgw.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/*
The migration hook runs before the release's own Secrets exist (pre-install), so it reads a Secret that is
there already (one you manage), or a hook Secret the chart makes for it just before (weight -5).
*/}}
{{- define "linkgw.migrations.hookSecretNeeded" -}}
{{- if and .Values.migrations.job.enabled (not .Values.migrations.existingSecret) (or .Values.migrations.url (not .Values.records.existingSecret)) -}}true{{- end -}}
{{- end -}}

{{- define "linkgw.migrations.secret" -}}
{{- if .Values.migrations.existingSecret -}}{{- .Values.migrations.existingSecret -}}
{{- else if include "linkgw.migrations.hookSecretNeeded" . -}}{{- printf "%s-migrations" (include "linkgw.fullname" .) -}}
{{- else -}}{{- .Values.records.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "linkgw.migrations.secretKey" -}}
{{- if or .Values.migrations.existingSecret (include "linkgw.migrations.hookSecretNeeded" .) -}}{{- .Values.migrations.secretKey -}}
{{- else -}}{{- .Values.records.secretKey -}}
{{- end -}}
{{- end -}}

{{/* The verify CronJob's database: its own Secret, one the chart makes from recordsVerify.url, or the records one. */}}
{{- define "linkgw.verify.secret" -}}
{{- if .Values.recordsVerify.existingSecret -}}{{- .Values.recordsVerify.existingSecret -}}
{{- else if .Values.recordsVerify.url -}}{{- printf "%s-records-verify" (include "linkgw.fullname" .) -}}
{{- else -}}{{- include "linkgw.recordsSecret" . -}}
{{- end -}}
{{- end -}}

{{- define "linkgw.verify.secretKey" -}}
{{- if or .Values.recordsVerify.existingSecret .Values.recordsVerify.url -}}{{- .Values.recordsVerify.secretKey -}}
{{- else -}}{{- .Values.records.secretKey -}}
{{- end -}}
{{- end -}}

{{/* LINKGW_RATE_LIMIT_REPLICAS: the replicas that share the limits. */}}
{{- define "linkgw.rateLimitReplicas" -}}
{{- if .Values.rateLimit.replicas -}}{{- .Values.rateLimit.replicas -}}
{{- else if .Values.autoscaling.enabled -}}{{- .Values.autoscaling.maxReplicas -}}
{{- else -}}{{- .Values.replicaCount -}}
{{- end -}}
{{- end -}}

{{/* Paths inside the pods. */}}
{{- define "linkgw.dataDir" -}}/var/lib/linkgw{{- end -}}
{{- define "linkgw.tlsDir" -}}/etc/linkgw/tls{{- end -}}
{{- define "linkgw.policyDir" -}}/etc/linkgw/policy{{- end -}}

{{/* The security contexts and volumes every linkgw pod shares (gateway, migrations, verify). */}}
{{- define "linkgw.podSecurity" -}}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "linkgw.keyringVolume" -}}
- name: keyring
  secret:
    secretName: {{ include "linkgw.keyringSecret" . }}
    defaultMode: 0440
    items:
      - { key: {{ .Values.keyring.secretKey | quote }}, path: keyring.json }
{{- end -}}

{{- define "linkgw.keyringMount" -}}
- { name: keyring, mountPath: {{ include "linkgw.dataDir" . }}/keyring.json, subPath: keyring.json, readOnly: true }
{{- end -}}

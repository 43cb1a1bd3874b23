{{/*
_helpers.tpl - names, labels and the pieces every dsa-ingest pod shares (image, env,
volumes, security). Helpers that need a component take (dict "ctx" $ "component" "worker").
*/}}

{{/* dsa-ingest.name is the chart's name, or nameOverride. */}}
{{- define "dsa-ingest.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* dsa-ingest.fullname is RELEASE-NAME (or RELEASE when it contains the name), at most 63
characters less room for the longest suffix (-worker-metrics). */}}
{{- define "dsa-ingest.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* dsa-ingest.chart is NAME-VERSION for the helm.sh/chart label. */}}
{{- define "dsa-ingest.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* dsa-ingest.selectorLabels are the labels selectors match on (stable across upgrades). */}}
{{- define "dsa-ingest.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dsa-ingest.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/* dsa-ingest.labels are the recommended labels of every resource. */}}
{{- define "dsa-ingest.labels" -}}
helm.sh/chart: {{ include "dsa-ingest.chart" .ctx }}
{{ include "dsa-ingest.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Values.image.tag | default .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: dsa
{{- end }}

{{/* dsa-ingest.serviceAccountName is the ServiceAccount the pods run as. */}}
{{- define "dsa-ingest.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dsa-ingest.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* dsa-ingest.image is REPOSITORY:TAG, or REPOSITORY@DIGEST when a digest is set. */}}
{{- define "dsa-ingest.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* dsa-ingest.chartSecret tells whether the chart must create its own Secret: for a
database URL or API tokens given as values instead of an existing Secret. */}}
{{- define "dsa-ingest.chartSecret" -}}
{{- if or (not .Values.database.existingSecret) (and .Values.api.enabled (not .Values.api.auth.existingSecret)) -}}
true
{{- end }}
{{- end }}

{{/* dsa-ingest.databaseSecretName is the Secret holding DATABASE_URL. */}}
{{- define "dsa-ingest.databaseSecretName" -}}
{{- .Values.database.existingSecret | default (include "dsa-ingest.fullname" .) }}
{{- end }}

{{/* dsa-ingest.databaseSecretKey is the key of DATABASE_URL in that Secret. */}}
{{- define "dsa-ingest.databaseSecretKey" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecretKey }}
{{- else -}}
DATABASE_URL
{{- end }}
{{- end }}

{{/* dsa-ingest.apiTokensSecretName is the Secret holding DSA_INGEST_API_TOKENS. */}}
{{- define "dsa-ingest.apiTokensSecretName" -}}
{{- .Values.api.auth.existingSecret | default (include "dsa-ingest.fullname" .) }}
{{- end }}

{{/* dsa-ingest.apiTokensSecretKey is the key of the tokens in that Secret. */}}
{{- define "dsa-ingest.apiTokensSecretKey" -}}
{{- if .Values.api.auth.existingSecret }}
{{- .Values.api.auth.existingSecretKey }}
{{- else -}}
DSA_INGEST_API_TOKENS
{{- end }}
{{- end }}

{{/* dsa-ingest.podDefaults is the part of every pod spec that is the same for all:
security, image pull secrets, no Kubernetes API token. */}}
{{- define "dsa-ingest.podDefaults" -}}
automountServiceAccountToken: {{ .Values.serviceAccount.automountToken }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* dsa-ingest.envFrom loads the settings ConfigMap as environment variables. */}}
{{- define "dsa-ingest.envFrom" -}}
- configMapRef:
    name: {{ include "dsa-ingest.fullname" . }}-settings
{{- end }}

{{/* dsa-ingest.env is DATABASE_URL from its Secret, and the extra variables. */}}
{{- define "dsa-ingest.env" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "dsa-ingest.databaseSecretName" . }}
      key: {{ include "dsa-ingest.databaseSecretKey" . }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* dsa-ingest.volumeMounts: /tmp (the only writable path), the event rules, the spool
and the extra mounts. */}}
{{- define "dsa-ingest.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: event-rules
  mountPath: /etc/dsa-ingest
  readOnly: true
{{- if .Values.spool.existingClaim }}
- name: spool
  mountPath: {{ .Values.spool.mountPath }}
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* dsa-ingest.volumes are the volumes behind dsa-ingest.volumeMounts. */}}
{{- define "dsa-ingest.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpVolume.sizeLimit }}
- name: event-rules
  configMap:
    name: {{ include "dsa-ingest.fullname" . }}-event-rules
{{- if .Values.spool.existingClaim }}
- name: spool
  persistentVolumeClaim:
    claimName: {{ .Values.spool.existingClaim }}
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* dsa-ingest.configChecksum changes whenever the settings or the rules do, so pods
restart to read them. */}}
{{- define "dsa-ingest.configChecksum" -}}
checksum/settings: {{ include (print .Template.BasePath "/configmap-settings.yaml") . | sha256sum }}
checksum/event-rules: {{ include (print .Template.BasePath "/configmap-event-rules.yaml") . | sha256sum }}
{{- end }}

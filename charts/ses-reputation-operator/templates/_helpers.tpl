{{/* Chart name, overridable. */}}
{{- define "sro.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: release name, plus the chart name unless the release name
already contains it. Truncated to 63 characters (DNS label limit).
*/}}
{{- define "sro.fullname" -}}
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

{{- define "sro.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sro.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sro.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sro.labels" -}}
helm.sh/chart: {{ include "sro.chart" . }}
{{ include "sro.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: ses-reputation-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sro.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sro.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sro.leaseName" -}}
{{- default (include "sro.fullname" .) .Values.operator.leaderElection.leaseName }}
{{- end }}

{{/* The ConfigMap the leader checkpoints its live windows in (one name, so RBAC can name it). */}}
{{- define "sro.liveCheckpoint" -}}
{{- printf "%s-live" (include "sro.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sro.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

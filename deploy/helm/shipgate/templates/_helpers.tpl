{{- define "shipgate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "shipgate.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "shipgate.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "shipgate.image" -}}
{{ required "image.repository is required: the image built from deploy/Dockerfile" .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}

{{- /* DATABASE_URL from the existing Secret, the deploy id, and the user's extra env. */ -}}
{{- define "shipgate.env" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "database.existingSecret is required" .Values.database.existingSecret }}
      key: {{ required "database.urlKey is required" .Values.database.urlKey }}
- name: SHIPGATE_DEPLOY_ID
  value: {{ .Values.deployId | default (printf "%s-%d" .Release.Name (int .Release.Revision)) | quote }}
{{- with .Values.env }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Common labels of every object of the release. */}}
{{- define "eksflow.labels" -}}
app.kubernetes.io/name: eksflow
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The task-role deltas from pod_templates/roles/, as a list of dicts (sorted by file name). */}}
{{- define "eksflow.roleDeltas" -}}
{{- $deltas := list -}}
{{- range $path, $_ := .Files.Glob "files/pod_templates/roles/*.yaml" -}}
{{- $deltas = append $deltas ($.Files.Get $path | fromYaml) -}}
{{- end -}}
{{- toYaml (dict "items" $deltas) -}}
{{- end -}}

{{/* The api-server Service name; the execution API URL in airflow.cfg points at it. */}}
{{- define "eksflow.apiServerService" -}}
{{ .Release.Name }}-api-server
{{- end -}}

{{/* Control-plane components; names must equal `eksflow roles` (control_plane), checked by a test. */}}
{{- define "eksflow.controlPlane" -}}
scheduler: eksflow-scheduler
api-server: eksflow-api-server
triggerer: eksflow-triggerer
dag-processor: eksflow-dag-processor
{{- end -}}

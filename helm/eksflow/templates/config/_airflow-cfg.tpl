{{/*
airflow.cfg of every Airflow container, worker pod and the migration hook: one home, rendered from values.
Holds no secret and no database connection (those come from Secrets as env).
*/}}
{{- define "eksflow.airflowCfg" -}}
{{- $a := .Values.airflow -}}
{{- $k := $a.kubernetesExecutor -}}
{{- $model := include "eksflow.roleModel" . | fromJson -}}
{{- if and (eq .Values.auth.manager "aws") (or (not .Values.auth.aws.samlMetadataUrl) (not .Values.auth.aws.avpPolicyStoreId)) }}
{{- fail "auth.aws.samlMetadataUrl and auth.aws.avpPolicyStoreId are required with auth.manager=aws (IAM Identity Center SAML metadata URL and Verified Permissions policy store id)" }}
{{- end }}
{{- $baseUrl := .Values.auth.aws.baseUrl | default (ternary (printf "https://%s" .Values.ingress.host) "" (and .Values.ingress.enabled (ne .Values.ingress.host ""))) }}
{{- if and (eq .Values.auth.manager "aws") (not $baseUrl) }}
{{- fail "auth.aws.baseUrl is empty and there is no ingress.host: the AWS auth manager's SAML login needs the UI's public URL ([api] base_url), e.g. https://airflow.example.com" }}
{{- end }}
{{- if and (eq .Values.auth.manager "simple") .Values.ingress.enabled }}
{{- fail "auth.manager=simple with ingress.enabled: the simple auth manager is Airflow's development login (plaintext passwords, or every visitor an admin); a UI behind an ingress needs auth.manager=aws" }}
{{- end }}
{{- $simple := .Values.auth.simple }}
{{- if and (eq .Values.auth.manager "simple") $simple.passwordsSecret .Values.auth.simpleAllAdminsForLocalUseOnly }}
{{- fail "auth.simple.passwordsSecret and auth.simpleAllAdminsForLocalUseOnly are both set: choose a login (the Secret) or, on a throwaway local cluster, every visitor an admin" }}
{{- end }}
{{- if and (eq .Values.auth.manager "simple") (not $simple.passwordsSecret) (not .Values.auth.simpleAllAdminsForLocalUseOnly) }}
{{- fail "auth.manager=simple needs a login, auth.simple.passwordsSecret (a Secret with the passwords file, as values-local.yaml), or, on a throwaway local cluster only, auth.simpleAllAdminsForLocalUseOnly=true (every visitor an admin, as values-kind.yaml)" }}
{{- end }}
{{- if and $a.remoteLogging.enabled (not $a.remoteLogging.bucket) }}
{{- fail "airflow.remoteLogging.bucket is empty while airflow.remoteLogging.enabled is true: set the log bucket (Terraform output log_bucket) or disable remote logging" }}
{{- end }}
[core]
executor = KubernetesExecutor
parallelism = {{ $a.parallelism }}
load_examples = False
dags_folder = {{ include "eksflow.dagsFolder" . }}
# The api-server fetches the live log of a deferred task from the triggerer that runs it, by the host name
# the triggerer recorded: a pod IP is reachable, a pod name is not.
hostname_callable = airflow.utils.net.get_host_ip_address
execution_api_server_url = http://{{ include "eksflow.apiServerService" . }}.{{ .Release.Namespace }}.svc.cluster.local:{{ $a.apiServerPort }}/execution/

{{- if eq .Values.auth.manager "aws" }}
auth_manager = airflow.providers.amazon.aws.auth_manager.aws_auth_manager.AwsAuthManager
{{- else }}
auth_manager = airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
{{- if .Values.auth.simpleAllAdminsForLocalUseOnly }}
simple_auth_manager_all_admins = True
{{- else }}
simple_auth_manager_all_admins = False
simple_auth_manager_users = {{ join "," $simple.users }}
# The api-server's copy of the passwords Secret (eksflow.simpleAuthLogin); only the api-server reads it.
simple_auth_manager_passwords_file = {{ include "eksflow.simpleAuthDir" . }}/passwords.json
{{- end }}
{{- end }}

{{- if eq .Values.auth.manager "aws" }}

[aws_auth_manager]
conn_id = {{ (get $model.task_roles $model.default_role).conn_id }}
region_name = {{ .Values.region }}
saml_metadata_url = {{ .Values.auth.aws.samlMetadataUrl }}
avp_policy_store_id = {{ .Values.auth.aws.avpPolicyStoreId }}
{{- end }}

{{- with $baseUrl }}

[api]
# The UI's public URL: the SAML login builds its callback from it.
base_url = {{ . }}
{{- end }}

[operators]
default_deferrable = True

{{- if .Values.metrics.enabled }}
[metrics]
statsd_on = True
statsd_host = {{ .Release.Name }}-statsd.{{ .Release.Namespace }}.svc.cluster.local
statsd_port = 9125
statsd_prefix = airflow

{{- end }}
[kubernetes_executor]
namespace = {{ .Release.Namespace }}
pod_template_file = {{ $model.pod_template_dir }}/{{ (get $model.task_roles $model.default_role).pod_template_file }}
delete_worker_pods = {{ ternary "True" "False" $k.deleteWorkerPodsOnSuccess }}
delete_worker_pods_on_failure = {{ ternary "False" "True" $k.keepWorkerPodsOnFailure }}

[scheduler]
task_queued_timeout = {{ $k.taskQueuedTimeoutSeconds }}

[logging]
trigger_log_server_port = {{ $a.triggerLogServerPort }}
remote_logging = {{ ternary "True" "False" $a.remoteLogging.enabled }}
{{- if $a.remoteLogging.enabled }}
remote_base_log_folder = s3://{{ $a.remoteLogging.bucket }}/{{ $a.remoteLogging.prefix }}
remote_log_conn_id = {{ (get $model.task_roles $model.default_role).conn_id }}
{{- end }}
{{- if $a.secretsBackend.enabled }}

[secrets]
backend = airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend
{{- /* The name prefixes have one home, the role model: its patterns with this environment (dagSettings.env), as
Terraform scopes the environment's read permission (var.env). Environments sharing an account read only their own. */}}
{{- $env := .Values.dagSettings.env }}
{{- $patterns := $model.secrets_backend_patterns }}
backend_kwargs = {{ dict "connections_prefix" (replace "{env}" $env $patterns.connections_prefix) "variables_prefix" (replace "{env}" $env $patterns.variables_prefix) "region_name" .Values.region | toJson }}
{{- end }}
{{- end -}}

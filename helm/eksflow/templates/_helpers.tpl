{{/* Common labels of every object of the release. */}}
{{- define "eksflow.labels" -}}
app.kubernetes.io/name: eksflow
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/*
The role model (src/eksflow/roles.py, platform.py) as `make role-model` writes it to terraform/role-model.json,
the file Terraform reads; the chart reads the same file through the symlink files/role-model.json. Task roles,
service accounts, resources, connection ids, the role label and the pod template directory come from here.
Use: include "eksflow.roleModel" . | fromJson
*/}}
{{- define "eksflow.roleModel" -}}
{{- $model := .Files.Get "files/role-model.json" -}}
{{- if not $model -}}
{{- fail "files/role-model.json is missing: it links to terraform/role-model.json (`make role-model` writes it); package the chart from the repository" -}}
{{- end -}}
{{- $parsed := $model | fromJson -}}
{{- range $key := list "task_roles" "control_plane" "default_role" "role_label" "pod_template_dir" "pod_template_base_file" "secrets_backend_patterns" "db_ca_file" -}}
{{- if not (hasKey $parsed $key) -}}
{{- fail (printf "files/role-model.json has no %q: regenerate it with `make role-model`" $key) -}}
{{- end -}}
{{- end -}}
{{- $model -}}
{{- end -}}

{{/*
The Airflow image every Airflow container and worker pod runs: repository@digest when image.digest is set (what a
release deploys: the digest it verified in ECR, so the nodes run exactly that content whatever a tag names later),
else repository:tag.
*/}}
{{- define "eksflow.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- end -}}
{{- end -}}

{{/* The api-server Service name; the execution API URL in airflow.cfg points at it. */}}
{{- define "eksflow.apiServerService" -}}
{{ .Release.Name }}-api-server
{{- end -}}

{{/* Control-plane components and their service accounts (component: name), from the role model. */}}
{{- define "eksflow.controlPlane" -}}
{{- $accounts := dict -}}
{{- range $component, $c := (include "eksflow.roleModel" . | fromJson).control_plane -}}
{{- $_ := set $accounts $component $c.service_account -}}
{{- end -}}
{{- toYaml $accounts -}}
{{- end -}}

{{/* Secret with fernet key, API secret key and JWT secret. */}}
{{- define "eksflow.airflowSecretsName" -}}
{{ .Values.airflowSecrets.existingSecret | default (printf "%s-airflow-secrets" .Release.Name) }}
{{- end -}}

{{/* Restricted security contexts (Pod Security Standard "restricted"). */}}
{{- define "eksflow.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 50000
runAsGroup: 0
fsGroup: 0
seccompProfile:
  type: RuntimeDefault
{{- end -}}
{{- define "eksflow.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/*
Which secret each container gets: the one home of that decision. Airflow 3.3.2 reads each only where listed
(the reasons, from Airflow's source, are in the README's "Secrets"; tests/test_chart_secrets.py holds the
rendered env to them and runs every command with exactly that env):
- database: the metadata DB URL (database.existingSecret);
- airflow: keys of the Airflow Secret (eksflow.airflowSecretsName), each set as the variable
  eksflow.airflowSecretKeys names.
The dag-processor and the triggerer run DAG code in forked children that inherit their environment: they get
only what Airflow needs there (the DB and the fernet key). The triggerer's log server, the one user of the
API secret key in that pod, is a container of its own (eksflow.triggerLogServer).
*/}}
{{- define "eksflow.componentSecrets" -}}
api-server: {database: true, airflow: [fernet-key, api-secret-key, jwt-secret]}
scheduler: {database: true, airflow: [fernet-key, jwt-secret]}
dag-processor: {database: true, airflow: [fernet-key]}
triggerer: {database: true, airflow: [fernet-key]}
trigger-log-server: {database: false, airflow: [api-secret-key]}
wait-for-migrations: {database: true, airflow: []}
migrations: {database: true, airflow: []}
{{- end -}}
{{- define "eksflow.airflowSecretKeys" -}}
fernet-key: AIRFLOW__CORE__FERNET_KEY
api-secret-key: AIRFLOW__API__SECRET_KEY
jwt-secret: AIRFLOW__API_AUTH__JWT_SECRET
{{- end -}}

{{/* The secret env of one container (eksflow.componentSecrets); call with (dict "root" $ "component" "<name>"). */}}
{{- define "eksflow.secretEnv" -}}
{{- $root := .root -}}
{{- $needs := get (include "eksflow.componentSecrets" $root | fromYaml) .component -}}
{{- if not $needs -}}
{{- fail (printf "eksflow.componentSecrets has no entry for %q" .component) -}}
{{- end -}}
{{- $variables := include "eksflow.airflowSecretKeys" $root | fromYaml -}}
{{- if $needs.database }}
- name: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.database.existingSecret }}
      key: {{ $root.Values.database.secretKey }}
{{- end }}
{{- range $key := $needs.airflow }}
- name: {{ get $variables $key }}
  valueFrom:
    secretKeyRef:
      name: {{ include "eksflow.airflowSecretsName" $root }}
      key: {{ $key }}
{{- end }}
{{- end -}}

{{/*
The metadata DB's CA bundle (database.tls.caConfigMap) at the role model's db_ca_file, the file the DB URL's
sslrootcert names: a volume of every pod with a container that connects to the DB, mounted in exactly those
containers (database: true in eksflow.componentSecrets). A directory, not a subPath mount: when the next deploy
updates the ConfigMap (new RDS CAs), running pods see the new file, and libpq reads it at every new connection.
*/}}
{{- define "eksflow.databaseCaVolume" -}}
{{- $tls := .Values.database.tls -}}
{{- if and (not $tls.caConfigMap) (eq .Values.dagSettings.env "prod") -}}
{{- fail "database.tls.caConfigMap is empty with dagSettings.env=prod: production verifies the DB server's certificate (sslmode=verify-full) against the CA bundle that `make deploy` puts in ConfigMap eksflow-db-ca; keep that value" -}}
{{- end -}}
{{- if $tls.caConfigMap -}}
- name: db-ca
  configMap:
    name: {{ $tls.caConfigMap }}
    items:
      - key: {{ $tls.caConfigMapKey }}
        path: {{ base (include "eksflow.roleModel" . | fromJson).db_ca_file }}
{{- end -}}
{{- end -}}
{{/* The CA bundle's mount in one container; call with (dict "root" $ "component" "<name>"). */}}
{{- define "eksflow.databaseCaMount" -}}
{{- $needs := get (include "eksflow.componentSecrets" .root | fromYaml) .component -}}
{{- if and $needs.database .root.Values.database.tls.caConfigMap -}}
- name: db-ca
  mountPath: {{ dir (include "eksflow.roleModel" .root | fromJson).db_ca_file }}
  readOnly: true
{{- end -}}
{{- end -}}

{{/* Environment of a control-plane container: its secrets (eksflow.secretEnv) and the platform environment. */}}
{{- define "eksflow.controlPlaneEnv" -}}
{{- with include "eksflow.secretEnv" . }}{{ . }}{{ end }}
{{ include "eksflow.platformEnv" .root }}
{{- end -}}

{{/*
Environment of every Airflow container and worker pod: region, one AWS connection per task role (the role
model's conn_id; no credentials: boto3 takes the pod's IRSA identity; must equal
eksflow.connections.cluster_connections, tested),
the DAG settings (eksflow.settings) and extraEnv.
*/}}
{{- define "eksflow.platformEnv" -}}
{{- $s := .Values.dagSettings -}}
- name: AWS_DEFAULT_REGION
  value: {{ .Values.region | quote }}
{{- $connection := dict "conn_type" "aws" "extra" (dict "region_name" .Values.region) | toJson }}
{{- range $name, $role := (include "eksflow.roleModel" . | fromJson).task_roles }}
- name: {{ printf "AIRFLOW_CONN_%s" ($role.conn_id | upper) }}
  value: {{ $connection | quote }}
{{- end }}
- name: EKSFLOW_ENV
  value: {{ $s.env | quote }}
- name: EKSFLOW_AWS_REGION
  value: {{ .Values.region | quote }}
{{- with $s.awsAccountId }}
- name: EKSFLOW_AWS_ACCOUNT_ID
  value: {{ . | quote }}
{{- end }}
- name: EKSFLOW_ECS_SUBNETS
  value: {{ join "," $s.ecsSubnets | quote }}
- name: EKSFLOW_ECS_SECURITY_GROUPS
  value: {{ join "," $s.ecsSecurityGroups | quote }}
- name: EKSFLOW_SCHEDULES
  value: {{ ternary "on" "off" $s.schedules | quote }}
{{- range $i, $var := .Values.extraEnv }}
{{- if regexMatch "^(EKSFLOW_(ENV|AWS_REGION|AWS_ACCOUNT_ID|ECS_SUBNETS|ECS_SECURITY_GROUPS|SCHEDULES)$|AIRFLOW_CONN_|AIRFLOW__DATABASE__)" $var.name }}
{{- fail (printf "extraEnv[%d].name %s is set by the chart: use dagSettings (EKSFLOW_*), workers.roles (connections) or database.existingSecret" $i $var.name) }}
{{- end }}
{{- if hasPrefix "AIRFLOW__" $var.name }}
{{- fail (printf "extraEnv[%d].name %s: Airflow's configuration has one home, the chart's airflow.cfg (airflow.*, auth.* values); its secrets come from airflowSecrets and database.existingSecret" $i $var.name) }}
{{- end }}
{{- if and (hasKey $var "value") (regexMatch "^AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN)$" $var.name) }}
{{- fail (printf "extraEnv[%d].value: %s must not be a literal value in values: use valueFrom.secretKeyRef (a Secret created outside git)" $i $var.name) }}
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volumes every control-plane pod mounts: airflow.cfg and writable emptyDirs. */}}
{{- define "eksflow.controlPlaneVolumes" -}}
- name: config
  configMap:
    name: {{ .Release.Name }}-airflow-config
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
- name: logs
  emptyDir:
    sizeLimit: 1Gi
{{- end -}}
{{- define "eksflow.controlPlaneMounts" -}}
- name: config
  mountPath: /opt/airflow/airflow.cfg
  subPath: airflow.cfg
  readOnly: true
- name: tmp
  mountPath: /tmp
- name: logs
  mountPath: /opt/airflow/logs
{{- end -}}

{{/*
The simple auth manager's login in the api-server (auth.simple.passwordsSecret): Airflow 3.3.2 opens its passwords
file read-write (simple_auth_manager.py: "a+" at start-up, "r+" at each login) and a Secret volume is read-only,
so an init container copies the Secret's file into a memory emptyDir, mode 0600, where airflow.cfg names it
(simple_auth_manager_passwords_file). Call with the root; "part": initContainer | volumes | mounts. Empty without
a login (AWS auth manager, or kind's all-admins).
*/}}
{{- define "eksflow.simpleAuthDir" -}}/opt/airflow/simple-auth{{- end -}}
{{- define "eksflow.simpleAuthLogin" -}}
{{- $root := .root -}}
{{- $s := $root.Values.auth.simple -}}
{{- if and (eq $root.Values.auth.manager "simple") $s.passwordsSecret -}}
{{- $dir := include "eksflow.simpleAuthDir" $root -}}
{{- if eq .part "initContainer" }}
- name: simple-auth-passwords
  image: {{ printf "%s:%s" $root.Values.image.repository $root.Values.image.tag }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy | default "IfNotPresent" }}
  command: ["install", "-m", "0600", "{{ $dir }}-secret/passwords.json", "{{ $dir }}/passwords.json"]
  securityContext:
    {{- include "eksflow.containerSecurityContext" $root | nindent 4 }}
  resources:
    requests: {cpu: 10m, memory: 16Mi}
    limits: {memory: 64Mi}
  volumeMounts:
    - name: simple-auth-secret
      mountPath: {{ $dir }}-secret
      readOnly: true
    - name: simple-auth
      mountPath: {{ $dir }}
{{- else if eq .part "volumes" }}
- name: simple-auth-secret
  secret:
    secretName: {{ $s.passwordsSecret }}
    items: [{key: {{ $s.passwordsSecretKey | quote }}, path: passwords.json}]
    defaultMode: 0440
- name: simple-auth
  emptyDir:
    medium: Memory
    sizeLimit: 1Mi
{{- else if eq .part "mounts" }}
- name: simple-auth
  mountPath: {{ $dir }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* An init container that waits until the DB schema matches this Airflow version. */}}
{{- define "eksflow.waitForMigrations" -}}
- name: wait-for-migrations
  image: {{ include "eksflow.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy | default "IfNotPresent" }}
  args: ["airflow", "db", "check-migrations", "--migration-wait-timeout=600"]
  securityContext:
    {{- include "eksflow.containerSecurityContext" . | nindent 4 }}
  resources:
    requests: {cpu: 50m, memory: 256Mi}
    limits: {memory: 512Mi}
  env:
    {{- include "eksflow.controlPlaneEnv" (dict "root" . "component" "wait-for-migrations") | nindent 4 }}
  volumeMounts:
    {{- include "eksflow.controlPlaneMounts" . | nindent 4 }}
    {{- with include "eksflow.databaseCaMount" (dict "root" . "component" "wait-for-migrations") }}{{ . | nindent 4 }}{{ end }}
{{- end -}}

{{/*
A control-plane Deployment. Call with (dict "root" $ "name" "scheduler" "values" .Values.components.scheduler
"args" (list ...) "probes" "<yaml>" "ports" "<yaml>" "extraVolumes" "<yaml>" "extraMounts" "<yaml>"
"initContainers" "<yaml>").
*/}}
{{- define "eksflow.deployment" -}}
{{- $root := .root -}}
{{- $accounts := include "eksflow.controlPlane" $root | fromYaml -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $root.Release.Name }}-{{ .name }}
  labels:
    {{- include "eksflow.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .name }}
spec:
  replicas: {{ .values.replicas | default 1 }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      app.kubernetes.io/instance: {{ $root.Release.Name }}
      app.kubernetes.io/component: {{ .name }}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: eksflow
        app.kubernetes.io/instance: {{ $root.Release.Name }}
        app.kubernetes.io/component: {{ .name }}
      annotations:
        # Roll the pods when airflow.cfg changes.
        checksum/airflow-config: {{ include (print $root.Template.BasePath "/config/airflow-config.yaml") $root | sha256sum }}
    spec:
      serviceAccountName: {{ get $accounts .name }}
      automountServiceAccountToken: {{ ternary "true" "false" (has .name (list "scheduler" "api-server")) }}
      enableServiceLinks: false
      securityContext:
        {{- include "eksflow.podSecurityContext" $root | nindent 8 }}
      {{- with $root.Values.controlPlaneNodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: topology.kubernetes.io/zone
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              app.kubernetes.io/instance: {{ $root.Release.Name }}
              app.kubernetes.io/component: {{ .name }}
      initContainers:
        {{- include "eksflow.waitForMigrations" $root | nindent 8 }}
        {{- with .initContainers }}{{ . | nindent 8 }}{{ end }}
      containers:
        - name: {{ .name }}
          image: {{ include "eksflow.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy | default "IfNotPresent" }}
          args: {{ toJson .args }}
          securityContext:
            {{- include "eksflow.containerSecurityContext" $root | nindent 12 }}
          resources:
            {{- toYaml .values.resources | nindent 12 }}
          env:
            {{- include "eksflow.controlPlaneEnv" (dict "root" $root "component" .name) | nindent 12 }}
          {{- with .ports }}
          ports:
            {{- . | nindent 12 }}
          {{- end }}
          {{- .probes | nindent 10 }}
          volumeMounts:
            {{- include "eksflow.controlPlaneMounts" $root | nindent 12 }}
            {{- with include "eksflow.databaseCaMount" (dict "root" $root "component" .name) }}{{ . | nindent 12 }}{{ end }}
            {{- with .extraMounts }}{{ . | nindent 12 }}{{ end }}
        {{- with .sidecars }}{{ . | nindent 8 }}{{ end }}
      volumes:
        {{- include "eksflow.controlPlaneVolumes" $root | nindent 8 }}
        {{- with include "eksflow.databaseCaVolume" $root }}{{ . | nindent 8 }}{{ end }}
        {{- with .extraVolumes }}{{ . | nindent 8 }}{{ end }}
{{- end -}}

{{/* Liveness/readiness/startup probes from `airflow jobs check` for a job type. */}}
{{- define "eksflow.jobProbes" -}}
startupProbe:
  exec:
    command: ["airflow", "jobs", "check", "--job-type", "{{ . }}", "--local"]
  periodSeconds: 10
  timeoutSeconds: 30
  failureThreshold: 30
livenessProbe:
  exec:
    command: ["airflow", "jobs", "check", "--job-type", "{{ . }}", "--local"]
  periodSeconds: 60
  timeoutSeconds: 30
  failureThreshold: 5
{{- end -}}

{{/*
The triggerer's log server in a container of its own: the api-server reads a deferred task's live log from it
with a token signed by [api] secret_key (airflow.utils.log.file_task_handler._fetch_logs_from_service), which the
server checks (airflow.utils.serve_logs.log_server.create_app). Run inside the triggerer (its default), the key
would sit in the environment of the trigger runner, which runs DAG code; here only this container has it. It
shares the logs volume the triggerer writes to and listens on the triggerer pod's IP, where the api-server looks.
*/}}
{{- define "eksflow.triggerLogServer" -}}
- name: trigger-log-server
  image: {{ include "eksflow.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy | default "IfNotPresent" }}
  # command, not args: the image's entrypoint would first wait for a database this container has no URL for.
  command:
    - python
    - -c
    - from airflow.configuration import conf; from airflow.utils.serve_logs import serve_logs; serve_logs(port=conf.getint("logging", "trigger_log_server_port"))
  securityContext:
    {{- include "eksflow.containerSecurityContext" . | nindent 4 }}
  resources:
    requests: {cpu: 20m, memory: 192Mi}
    limits: {memory: 384Mi}
  env:
    {{- include "eksflow.secretEnv" (dict "root" . "component" "trigger-log-server") | nindent 4 }}
  ports:
    - name: trigger-logs
      containerPort: {{ .Values.airflow.triggerLogServerPort }}
  livenessProbe:
    tcpSocket: {port: trigger-logs}
    periodSeconds: 30
    timeoutSeconds: 10
    failureThreshold: 5
  volumeMounts:
    {{- include "eksflow.controlPlaneMounts" . | nindent 4 }}
{{- end -}}

{{/* A PodDisruptionBudget keeping a multi-replica component up during node drains. */}}
{{- define "eksflow.pdb" -}}
{{- if gt (int .values.replicas) 1 -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .root.Release.Name }}-{{ .name }}
  labels:
    {{- include "eksflow.labels" .root | nindent 4 }}
    app.kubernetes.io/component: {{ .name }}
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      app.kubernetes.io/instance: {{ .root.Release.Name }}
      app.kubernetes.io/component: {{ .name }}
{{- end -}}
{{- end -}}

{{/* Where DAG files appear in every Airflow container. */}}
{{- define "eksflow.dagsFolder" -}}
{{- if .Values.gitSync.enabled -}}
/opt/airflow/dags/repo{{ with .Values.gitSync.subPath }}/{{ . }}{{ end }}
{{- else -}}
/opt/airflow/dags
{{- end -}}
{{- end -}}

{{/* A git-sync container; call with (dict "root" $ "oneTime" true|false). */}}
{{- define "eksflow.gitSyncContainer" -}}
{{- $g := .root.Values.gitSync -}}
{{- if regexMatch "^https?://[^/]*@" $g.repo }}
{{- fail "gitSync.repo carries credentials (user:token@host): they would be in the ConfigMap and every pod spec; put them in a Secret and set gitSync.auth (type https or ssh, existingSecret)" }}
{{- end }}
- name: {{ ternary "git-sync-init" "git-sync" .oneTime }}
  image: {{ printf "%s:%s" $g.image.repository $g.image.tag }}
  imagePullPolicy: IfNotPresent
  securityContext:
    # The git-sync image's own user: ssh refuses a uid without an /etc/passwd entry, and the image's
    # passwd (read-only root) knows 65533 but not the pod's 50000. Files stay readable: fsGroup 0, umask 022.
    runAsUser: 65533
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    privileged: false
    capabilities:
      drop: ["ALL"]
  resources:
    {{- toYaml $g.resources | nindent 4 }}
  env:
    - {name: GITSYNC_REPO, value: {{ $g.repo | quote }}}
    - {name: GITSYNC_REF, value: {{ $g.ref | quote }}}
    - {name: GITSYNC_DEPTH, value: {{ $g.depth | quote }}}
    - {name: GITSYNC_PERIOD, value: {{ $g.period | quote }}}
    - {name: GITSYNC_ROOT, value: /git}
    - {name: GITSYNC_LINK, value: repo}
    - {name: GITSYNC_ONE_TIME, value: {{ .oneTime | quote }}}
    - {name: HOME, value: /tmp}
    {{- if eq $g.auth.type "https" }}
    - name: GITSYNC_USERNAME
      valueFrom: {secretKeyRef: {name: {{ $g.auth.existingSecret }}, key: username}}
    - name: GITSYNC_PASSWORD
      valueFrom: {secretKeyRef: {name: {{ $g.auth.existingSecret }}, key: token}}
    {{- else if eq $g.auth.type "ssh" }}
    - {name: GITSYNC_SSH_KEY_FILE, value: /etc/git-secret/ssh-key}
    - {name: GITSYNC_SSH_KNOWN_HOSTS, value: "true"}
    - {name: GITSYNC_SSH_KNOWN_HOSTS_FILE, value: /etc/git-secret/known_hosts}
    {{- end }}
  volumeMounts:
    - {name: dags, mountPath: /git}
    - {name: git-tmp, mountPath: /tmp}
    {{- if eq $g.auth.type "ssh" }}
    - {name: git-secret, mountPath: /etc/git-secret, readOnly: true}
    {{- end }}
{{- end -}}

{{/* Volumes of a pod that runs git-sync. */}}
{{- define "eksflow.gitSyncVolumes" -}}
- name: dags
  emptyDir:
    sizeLimit: 1Gi
- name: git-tmp
  emptyDir:
    sizeLimit: 256Mi
{{- if eq .Values.gitSync.auth.type "ssh" }}
- name: git-secret
  secret:
    secretName: {{ .Values.gitSync.auth.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{/* git-sync wiring for the deployments that read DAG files continuously. */}}
{{- define "eksflow.gitSyncSidecar" -}}
{{- if .Values.gitSync.enabled }}{{ include "eksflow.gitSyncContainer" (dict "root" . "oneTime" false) }}{{ end -}}
{{- end -}}
{{- define "eksflow.gitSyncPodVolumes" -}}
{{- if .Values.gitSync.enabled }}{{ include "eksflow.gitSyncVolumes" . }}{{ end -}}
{{- end -}}
{{- define "eksflow.dagsMount" -}}
{{- if .Values.gitSync.enabled }}
- name: dags
  mountPath: /opt/airflow/dags
  readOnly: true
{{- end -}}
{{- end -}}

"""Platform-wide names: the one home for namespace, service accounts, IAM role and bucket naming.

The Helm chart, Terraform and the tests derive their names from here (``eksflow roles --format json``)
or are checked against it by a test. Change a name here, never in a copy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PROJECT = "eksflow"
NAMESPACE = "eksflow"

# Kubernetes group the release principal's EKS access entry maps to (Terraform's kubernetes_groups): the cluster
# bootstrap binds the release's ClusterRole — the chart's cluster-scoped objects by name, its Namespace read-only.
# EKS refuses group names starting with "system:".
RELEASE_KUBERNETES_GROUP = PROJECT + "-release"

# Where the chart mounts the worker pod templates inside scheduler pods; the DAG kit's
# executor_config points here.
POD_TEMPLATE_DIR = "/opt/airflow/pod_templates"
POD_TEMPLATE_BASE_FILE = "base.yaml"

# Where the chart mounts the CA bundle of the metadata DB's server certificate (database.tls.caConfigMap) in every
# container that connects to the DB; the DB URL's sslrootcert names it (sslmode=verify-full: `make deploy`, the local
# cluster).
DB_CA_FILE = "/opt/airflow/db-ca/ca.pem"

# Label on every worker pod naming its task role (SREs select pods by it).
ROLE_LABEL = "eksflow.io/role"

# Tag that marks an AWS resource as owned by one environment's housekeeping; its value is that environment's name
# (``eksflow:managed=dev``), so dev's housekeeping never acts on what prod manages in a shared account. Nothing
# without it, or managed by another environment, is touched; IAM holds the ec2-ops role to the same rule
# (terraform/modules/irsa, from the role model). docs/security.md says why the value and not a second tag.
MANAGED_TAG_KEY = "eksflow:managed"
MANAGED_TAG_VALUE_PATTERN = "{env}"
# Optional tag with an ISO-8601 UTC timestamp after which housekeeping may terminate an instance.
TTL_TAG_KEY = "eksflow:expires-at"
# Tag that marks an instance or a SageMaker endpoint as in use: housekeeping never stops, terminates or deletes
# it, whichever environment manages it (IAM: not with this tag = "true", compared ignoring case).
PROTECTED_TAG_KEY = "eksflow:protected"
PROTECTED_TAG_VALUE = "true"

# Airflow pool every ECS RunTask step of the kit runs in, deferred waits included: at most this many ECS tasks
# are in flight across all DAGs, and RunTask is called only as slots free up (ECS throttles RunTask per
# account and Region; Fargate caps concurrent vCPUs). The chart's migration hook creates it.
ECS_RUNTASK_POOL = "ecs_runtask"
ECS_RUNTASK_POOL_SLOTS = 32  # default of the chart value airflow.ecsRunTaskPool.slots
ECS_RUNTASK_POOL_DESCRIPTION = "ECS tasks in flight across all DAGs (eksflow; set by the chart)"

# Environments may share an AWS account (dev and staging often do): every name a grant is scoped by carries the
# environment, so no environment's roles reach another's resources.

# Prefix of every SageMaker resource the kit creates in one environment (training jobs, models, endpoint configs,
# endpoints: eksflow-dev-...); each environment's IAM policies are scoped to its own (Terraform: {env} = var.env).
SAGEMAKER_NAME_PREFIX_PATTERN = PROJECT + "-{env}-"

# Secrets Manager name prefixes of one environment's Airflow Connections and Variables (the chart's
# airflow.secretsBackend): the chart configures the SecretsManagerBackend with them ({env} = dagSettings.env) and
# Terraform lets that environment's roles read exactly these ({env} = var.env). {env} is a path segment of its own:
# an environment name has no '/', so no environment's prefix is a prefix of another's.
SECRETS_BACKEND_PREFIX_PATTERNS = {
    "connections_prefix": PROJECT + "/{env}/connections",
    "variables_prefix": PROJECT + "/{env}/variables",
}

# SNS topic of one environment's DAG notifications (the kit's notifier publishes to it; Terraform makes it and lets
# that environment's task roles and dag-processor publish to it, and nothing else of SNS).
NOTIFICATION_TOPIC_NAME_PATTERN = PROJECT + "-{env}-notifications"

_ENV_RE = re.compile(r"^[a-z][a-z0-9-]{1,15}$")


# The managed tag's value is the env's name; before it was per env it was "true" (and "false" meant unmanaged): an
# env of either name would take over what those old tags mark.
RESERVED_ENVS = frozenset({"true", "false"})


def validate_env(env: str) -> str:
    if not _ENV_RE.fullmatch(env):
        raise ValueError(
            f"env {env!r} is invalid: use 2-16 lowercase letters, digits or '-', starting with a letter "
            "(e.g. 'dev', 'prod')"
        )
    if env in RESERVED_ENVS:
        raise ValueError(f"env {env!r} is reserved (the managed tag's legacy values): name the environment otherwise")
    return env


def name_prefix(env: str) -> str:
    """Prefix for every AWS resource of one environment, e.g. ``eksflow-dev``."""
    return f"{PROJECT}-{validate_env(env)}"


def sagemaker_name_prefix(env: str) -> str:
    """What every SageMaker resource name of one environment starts with, e.g. ``eksflow-dev-``."""
    return SAGEMAKER_NAME_PREFIX_PATTERN.format(env=validate_env(env))


def secrets_backend_prefixes(env: str) -> dict[str, str]:
    """The Secrets Manager backend's prefixes of one environment: ``{"connections_prefix": "eksflow/dev/connections",
    "variables_prefix": "eksflow/dev/variables"}``."""
    validate_env(env)
    return {kind: pattern.format(env=env) for kind, pattern in SECRETS_BACKEND_PREFIX_PATTERNS.items()}


def notification_topic_name(env: str) -> str:
    """The SNS topic of one environment's DAG notifications, e.g. ``eksflow-dev-notifications``."""
    return NOTIFICATION_TOPIC_NAME_PATTERN.format(env=validate_env(env))


def notification_topic_arn(env: str, region: str, account: str) -> str:
    return f"arn:aws:sns:{region}:{account}:{notification_topic_name(env)}"


def managed_tag_value(env: str) -> str:
    """The value of the managed tag on what one environment's housekeeping owns, e.g. ``dev``."""
    return MANAGED_TAG_VALUE_PATTERN.format(env=validate_env(env))


def managed_tags(env: str) -> dict[str, str]:
    """The tag that hands a resource to one environment's housekeeping: ``{"eksflow:managed": "dev"}``."""
    return {MANAGED_TAG_KEY: managed_tag_value(env)}


def is_protected(tags: dict[str, str]) -> bool:
    """Whether the protected tag says ``true``, in any case (as the IAM condition compares it) and ignoring blanks
    around it (the kit is never less careful than IAM)."""
    return tags.get(PROTECTED_TAG_KEY, "").strip().lower() == PROTECTED_TAG_VALUE


def endpoint_tags(env: str, *, managed: bool = True, protected: bool = False) -> dict[str, str]:
    """The tags the kit puts on a SageMaker endpoint it creates: managed by ``env`` and/or protected, as asked. These
    keys with these values are all the sagemaker-runner role may set (IAM ``aws:TagKeys``/``aws:RequestTag``)."""
    tags = managed_tags(env) if managed else {}
    return {**tags, PROTECTED_TAG_KEY: PROTECTED_TAG_VALUE} if protected else tags


@dataclass(frozen=True)
class ControlPlaneComponent:
    """An Airflow component the chart deploys, with its own service account and IRSA role."""

    name: str
    description: str
    aws_access: str

    @property
    def service_account(self) -> str:
        return f"{PROJECT}-{self.name}"

    def iam_role_name(self, env: str) -> str:
        return f"{name_prefix(env)}-{self.name}"


CONTROL_PLANE: tuple[ControlPlaneComponent, ...] = (
    ControlPlaneComponent("scheduler", "schedules DAG runs and launches worker pods", "task-log bucket (read)"),
    ControlPlaneComponent("api-server", "UI, REST and task execution API", "task-log bucket (read)"),
    ControlPlaneComponent(
        "triggerer",
        "runs deferred waits (ECS/SageMaker/EC2 status polling) and the AssetWatchers (job releases)",
        "read-only Describe* on ECS, SageMaker (eksflow-<env>- names), EC2; the job-release queue: receive, delete, "
        "change visibility, read attributes, send to its DLQ (its KMS key via SQS only); task-log bucket (write)",
    ),
    ControlPlaneComponent(
        "dag-processor",
        "parses DAG files; runs DAG-level callbacks and the failure callbacks of tasks lost outside their pod",
        "task-log bucket (write, own logs); sns:Publish on its env's notification topic",
    ),
)


BUCKET_NAME_PATTERNS = {
    "logs": PROJECT + "-{env}-logs",
    "data": PROJECT + "-{env}-data",
    "ml_artifacts": PROJECT + "-{env}-ml-artifacts",
}


def bucket_names(env: str) -> dict[str, str]:
    """S3 buckets of one environment, by purpose."""
    validate_env(env)
    return {purpose: pattern.format(env=env) for purpose, pattern in BUCKET_NAME_PATTERNS.items()}


def ecr_repository_name() -> str:
    return f"{PROJECT}/airflow"

"""Platform-wide names: the one home for namespace, service accounts, IAM role and bucket naming.

The Helm chart, Terraform and the tests derive their names from here (``eksflow roles --format json``)
or are checked against it by a test. Change a name here, never in a copy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PROJECT = "eksflow"
NAMESPACE = "eksflow"

# Where the chart mounts the worker pod templates inside scheduler pods; the DAG kit's
# executor_config points here.
POD_TEMPLATE_DIR = "/opt/airflow/pod_templates"
POD_TEMPLATE_BASE_FILE = "base.yaml"

# Label on every worker pod naming its task role (SREs select pods by it).
ROLE_LABEL = "eksflow.io/role"

# Tag that marks an AWS resource as owned by the platform's housekeeping. Nothing without it is touched.
MANAGED_TAG_KEY = "eksflow:managed"
MANAGED_TAG_VALUE = "true"
# Optional tag with an ISO-8601 UTC timestamp after which housekeeping may terminate an instance.
TTL_TAG_KEY = "eksflow:expires-at"
# Tag that marks a SageMaker endpoint as serving traffic; housekeeping never deletes it.
PROTECTED_TAG_KEY = "eksflow:protected"

# Airflow pool every ECS RunTask step of the kit runs in, deferred waits included: at most this many ECS tasks
# are in flight across all DAGs, and RunTask is called only as slots free up (ECS throttles RunTask per
# account and Region; Fargate caps concurrent vCPUs). The chart's migration hook creates it.
ECS_RUNTASK_POOL = "ecs_runtask"
ECS_RUNTASK_POOL_SLOTS = 32  # default of the chart value airflow.ecsRunTaskPool.slots
ECS_RUNTASK_POOL_DESCRIPTION = "ECS tasks in flight across all DAGs (eksflow; set by the chart)"

# Prefix the SageMaker resources created by the kit carry; IAM policies are scoped to it.
SAGEMAKER_NAME_PREFIX = "eksflow-"

_ENV_RE = re.compile(r"^[a-z][a-z0-9-]{1,15}$")


def validate_env(env: str) -> str:
    if not _ENV_RE.fullmatch(env):
        raise ValueError(
            f"env {env!r} is invalid: use 2-16 lowercase letters, digits or '-', starting with a letter "
            "(e.g. 'dev', 'prod')"
        )
    return env


def name_prefix(env: str) -> str:
    """Prefix for every AWS resource of one environment, e.g. ``eksflow-dev``."""
    return f"{PROJECT}-{validate_env(env)}"


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
        "runs deferred waits (ECS/SageMaker/EC2 status polling)",
        "read-only Describe* on ECS, SageMaker, EC2; task-log bucket (write)",
    ),
    ControlPlaneComponent("dag-processor", "parses DAG files", "task-log bucket (write, own logs)"),
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

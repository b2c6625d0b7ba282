"""The role model: the platform's task roles, in one place.

A task role is the unit of least privilege. Each task of a DAG runs as exactly one role: its worker pod
uses the role's Kubernetes service account (bound by IRSA to the role's IAM role), the role's pod
template, and the role's Airflow connection. ``services`` are the AWS API namespaces (boto3 client
names) the role owns; the role-fit test checks every AWS operator against them.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from eksflow.jobs import JOB_TAG_KEY
from eksflow.platform import MANAGED_TAG_KEY, POD_TEMPLATE_DIR, PROJECT, PROTECTED_TAG_KEY, name_prefix


@dataclass(frozen=True)
class Resources:
    """Worker pod resources for a role (requests = what the scheduler reserves; memory is also the limit)."""

    cpu_request: str
    memory_request: str
    memory_limit: str

    def as_k8s(self) -> dict[str, dict[str, str]]:
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"memory": self.memory_limit},
        }


@dataclass(frozen=True)
class TaskRole:
    name: str
    description: str
    services: frozenset[str]
    resources: Resources
    aws_permissions: tuple[str, ...] = field(default=())

    @property
    def service_account(self) -> str:
        return f"{PROJECT}-task-{self.name}"

    def iam_role_name(self, env: str) -> str:
        return f"{name_prefix(env)}-task-{self.name}"

    @property
    def iam_role_name_pattern(self) -> str:
        return f"{PROJECT}-{{env}}-task-{self.name}"

    @property
    def pod_template_file(self) -> str:
        return f"{self.name}.yaml"

    @property
    def pod_template_path(self) -> str:
        return posixpath.join(POD_TEMPLATE_DIR, self.pod_template_file)

    @property
    def conn_id(self) -> str:
        return f"aws_{self.name.replace('-', '_')}"


# Memory sizes: a task process (Airflow task runner + provider imports + boto3) peaks near 300 MiB;
# deferrable operators hand their wait to the triggerer, so the pod is short-lived.
_SMALL = Resources(cpu_request="100m", memory_request="384Mi", memory_limit="512Mi")
_MEDIUM = Resources(cpu_request="200m", memory_request="512Mi", memory_limit="768Mi")

ROLES: dict[str, TaskRole] = {
    role.name: role
    for role in (
        TaskRole(
            name="default",
            description="Plain Python tasks; no AWS API access beyond writing its own task logs.",
            services=frozenset(),
            resources=_SMALL,
            aws_permissions=("s3:PutObject on the task-log prefix",),
        ),
        TaskRole(
            name="ecs-runner",
            description="Runs and watches ECS tasks on the platform's clusters.",
            services=frozenset({"ecs", "logs"}),
            resources=_SMALL,
            aws_permissions=(
                f"ecs:RunTask on allowed clusters of the jobs' families' revisions tagged {JOB_TAG_KEY}=<the family's "
                "job> only (the releases' and Terraform's: it registers and tags no revision)",
                "ecs:DescribeTasks/StopTask/ListTasks on allowed clusters",
                "ecs:DescribeTaskDefinition (no resource type: which revision a release registered, its tags)",
                "ecs:ListTaskDefinitions (no resource type: the revision registered before a DAG run started, which "
                "every step of the run runs)",
                "iam:PassRole on the jobs' task roles and the ECS execution role only, to ECS tasks (RunTask)",
                "logs:GetLogEvents on the ECS task log groups",
            ),
        ),
        TaskRole(
            name="sagemaker-runner",
            description="Trains, deploys and smoke-checks SageMaker models.",
            services=frozenset({"sagemaker", "sagemaker-runtime", "s3", "ecr"}),
            resources=_MEDIUM,
            aws_permissions=(
                "sagemaker:Create/Describe/Update/Stop* on resources named with the env's prefix eksflow-<env>-",
                "sagemaker:InvokeEndpoint on eksflow-<env>- endpoints",
                f"sagemaker:AddTags on eksflow-<env>- endpoints only with {MANAGED_TAG_KEY}=<env> and "
                f"{PROTECTED_TAG_KEY}=true, on endpoints no other environment manages",
                "iam:PassRole on the SageMaker execution role only",
                "s3:ListBucket/GetObject on the training input prefix (the operator checks it exists)",
                "ecr:DescribeImages on the SageMaker jobs' repositories (their released images)",
            ),
        ),
        TaskRole(
            name="ec2-ops",
            description="Housekeeping: finds and stops/terminates managed EC2, deletes idle endpoints.",
            services=frozenset({"ec2", "cloudwatch", "sagemaker", "s3"}),
            resources=_SMALL,
            aws_permissions=(
                "ec2:DescribeInstances; cloudwatch:GetMetricStatistics; sagemaker:ListEndpoints; "
                "sagemaker:DescribeEndpoint, ListTags on eksflow-<env>- endpoints",
                "ec2:StopInstances/TerminateInstances and sagemaker:DeleteEndpoint (eksflow-<env>- endpoints) only "
                f"with tag {MANAGED_TAG_KEY}=<env> and without {PROTECTED_TAG_KEY}=true",
                "s3:PutObject on the housekeeping report prefix",
            ),
        ),
    )
}

DEFAULT_ROLE = "default"


def get_role(name: str) -> TaskRole:
    try:
        return ROLES[name]
    except KeyError:
        known = ", ".join(sorted(ROLES))
        raise ValueError(f"role {name!r} is unknown: use one of {known}") from None


def role_for_pod_template(path: str | None) -> TaskRole | None:
    """The role whose pod template this is (``executor_config["pod_template_file"]``), if any."""
    if not path:
        return None
    for role in ROLES.values():
        if path == role.pod_template_path:
            return role
    return None


def role_owning(service: str) -> list[TaskRole]:
    """Roles whose job includes calling the given AWS service (boto3 client name)."""
    return [role for role in ROLES.values() if service in role.services]

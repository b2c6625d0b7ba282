"""The platform's jobs: the containers its batch and ML steps run, one home for every name derived from them.

A job is built in its own GitHub repository, released as an image into the job's ECR repository (immutable tags), and
run by the DAGs: an ``ecs`` job as a task-definition family with one container, a ``sagemaker`` job as a training or
serving image. Terraform's workloads module makes each job's repository, family, task role and log group from these
names (``terraform/role-model.json``); the release command, the kit and the DAG settings derive the same names.
"""

from __future__ import annotations

from dataclasses import dataclass

from eksflow.platform import PROJECT, validate_env

RUNS_ON = ("ecs", "sagemaker")

# One ECS cluster per environment runs every ecs job (Fargate).
ECS_CLUSTER_NAME_PATTERN = PROJECT + "-{env}-batch"
# The role ECS uses to pull a job's image and write its logs (not the job's own role).
ECS_EXECUTION_ROLE_NAME_PATTERN = PROJECT + "-{env}-ecs-task-execution"
# The role SageMaker jobs and models run as (sagemaker-runner passes it).
SAGEMAKER_EXECUTION_ROLE_NAME_PATTERN = PROJECT + "-{env}-sagemaker-execution"
# The SQS queue job releases are announced on (and its dead-letter queue): the platform's AssetWatchers read it.
RELEASE_QUEUE_NAME_PATTERN = PROJECT + "-{env}-job-releases"
RELEASE_DLQ_NAME_PATTERN = PROJECT + "-{env}-job-releases-dlq"
# The tag every task-definition revision of a job carries, with the job's name as its value: Terraform's bootstrap
# revision has it, and a job's release role may register a revision only with it (ecs:RegisterTaskDefinition has no
# resource type, aws:RequestTag is the one scope IAM offers), so each revision names the job whose role registered it.
JOB_TAG_KEY = PROJECT + ":job"
# Scheme of the job-release Assets' URIs (Airflow passes x- schemes through unnormalized).
RELEASE_ASSET_SCHEME = "x-eksflow-release"


@dataclass(frozen=True)
class Job:
    name: str
    runs_on: str
    description: str
    container: str = ""  # ecs: the container's name in the task definition (ecs_overrides' first argument)
    # Prefixes of the data bucket the job's own role reads and writes (ecs jobs; SageMaker jobs run as the shared
    # SageMaker execution role, scoped to every sagemaker job's prefixes).
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()

    # Name patterns ({env} = the environment): what Terraform reads from the role model.
    @property
    def repository_pattern(self) -> str:
        """The job's ECR repository, e.g. ``eksflow-dev-etl-step``."""
        return f"{PROJECT}-{{env}}-{self.name}"

    @property
    def ecs_family_pattern(self) -> str:
        """The job's task-definition family (ecs jobs), e.g. ``eksflow-dev-etl-step``."""
        return f"{PROJECT}-{{env}}-{self.name}" if self.runs_on == "ecs" else ""

    @property
    def task_role_name_pattern(self) -> str:
        """The IAM role the job's ECS task runs as, e.g. ``eksflow-dev-job-etl-step``."""
        return f"{PROJECT}-{{env}}-job-{self.name}" if self.runs_on == "ecs" else ""

    @property
    def log_group_pattern(self) -> str:
        """The job's CloudWatch log group (ecs jobs), e.g. ``/eksflow/dev/jobs/etl-step``."""
        return f"/{PROJECT}/{{env}}/jobs/{self.name}" if self.runs_on == "ecs" else ""

    @property
    def github_release_role_name_pattern(self) -> str:
        """The GitHub OIDC role the job repository's release workflow assumes, e.g. ``eksflow-dev-github-job-train``."""
        return f"{PROJECT}-{{env}}-github-job-{self.name}"

    def repository(self, env: str) -> str:
        return self.repository_pattern.format(env=validate_env(env))

    def ecs_family(self, env: str) -> str:
        return self._ecs_only(self.ecs_family_pattern).format(env=validate_env(env))

    def task_role_name(self, env: str) -> str:
        return self._ecs_only(self.task_role_name_pattern).format(env=validate_env(env))

    def log_group(self, env: str) -> str:
        return self._ecs_only(self.log_group_pattern).format(env=validate_env(env))

    def github_release_role_name(self, env: str) -> str:
        return self.github_release_role_name_pattern.format(env=validate_env(env))

    def _ecs_only(self, pattern: str) -> str:
        if not pattern:
            raise ValueError(f"job {self.name!r} runs on {self.runs_on}: it has no ECS family, task role or log group")
        return pattern

    def release_asset_uri(self, env: str) -> str:
        """The URI of the Asset a release of this job updates, e.g. ``x-eksflow-release://dev/etl-step``."""
        return f"{RELEASE_ASSET_SCHEME}://{validate_env(env)}/{self.name}"

    @property
    def release_asset_name(self) -> str:
        return f"job_release__{self.name.replace('-', '_')}"


JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job(
            name="etl-step",
            runs_on="ecs",
            description="The data pipeline's transform/merge step (ECS Fargate).",
            container="etl",
            reads=("raw/", "curated/"),
            writes=("curated/",),
        ),
        Job(
            name="train",
            runs_on="sagemaker",
            description="The ML pipeline's training image (SageMaker training job).",
        ),
        Job(
            name="serve",
            runs_on="sagemaker",
            description="The ML pipeline's serving image (SageMaker model behind the endpoint).",
        ),
    )
}


def get_job(name: str) -> Job:
    try:
        return JOBS[name]
    except KeyError:
        raise ValueError(f"job {name!r} is unknown: use one of {', '.join(sorted(JOBS))}") from None


def ecs_cluster_name(env: str) -> str:
    return ECS_CLUSTER_NAME_PATTERN.format(env=validate_env(env))


def ecs_execution_role_name(env: str) -> str:
    return ECS_EXECUTION_ROLE_NAME_PATTERN.format(env=validate_env(env))


def sagemaker_execution_role_name(env: str) -> str:
    return SAGEMAKER_EXECUTION_ROLE_NAME_PATTERN.format(env=validate_env(env))


def release_queue_name(env: str) -> str:
    return RELEASE_QUEUE_NAME_PATTERN.format(env=validate_env(env))


def release_dlq_name(env: str) -> str:
    return RELEASE_DLQ_NAME_PATTERN.format(env=validate_env(env))

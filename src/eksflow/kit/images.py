"""The released image of a SageMaker job, resolved at run time under the ``sagemaker-runner`` role: what the job's
repository released (eksflow.released) — the image of the release event that triggered this DAG run, else the newest
image in the job's ECR repository tagged with a git commit SHA (ecr:DescribeImages) — pinned by digest and logged.
Its output (an XComArg) is what the SageMaker helpers take as ``image``: one image per DAG run, the same for every
retry, shown in the task's log and XCom.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.hooks.ecr import EcrHook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from eksflow.jobs import JOBS, get_job
from eksflow.kit.defaults import aws_operator_kwargs
from eksflow.kit.errors import KitArgumentError, require_env

ROLE = "sagemaker-runner"


class ReleasedImageOperator(AwsBaseOperator[EcrHook]):
    """Return the image (``<registry>/<repository>@sha256:<hex>``) job ``job`` released for this run (env ``env``)."""

    aws_hook_class = EcrHook
    template_fields = aws_template_fields("job")

    def __init__(self, *, job: str, env: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.job = job
        self.env = env

    def execute(self, context) -> str:
        from airflow.providers.common.compat.sdk import AirflowFailException

        from eksflow.kit.ecs import platform_registry
        from eksflow.released import NotARelease, released_image

        ecr = self.hook.conn
        try:
            found = released_image(
                context, ecr, job=self.job, env=self.env, region=ecr.meta.region_name, registry=platform_registry()
            )
        except NotARelease as error:
            raise AirflowFailException(f"{error} (no retry: the event stays what it is)") from None
        self.log.info("Released image of job %s: %s", self.job, found)
        return found.image


def released_image(*, task_id: str, job: str, env: str | None = None, **operator_kwargs: Any) -> ReleasedImageOperator:
    """A task returning the image SageMaker job ``job`` (eksflow.jobs, e.g. ``"train"``) released, pinned by digest:
    the image of the release that triggered this DAG run, else the newest image of the job's repository
    ``eksflow-<env>-<job>`` tagged with a git commit SHA. Pass its ``.output`` as a SageMaker helper's ``image``.
    ``env``: the environment (default ``EKSFLOW_ENV``). An ecs job runs its released revision instead
    (``ecs_run_task(job=...)``)."""
    helper = "released_image"
    env = require_env(helper, env)
    try:
        spec = get_job(job)
    except ValueError as error:
        sagemaker_jobs = sorted(name for name, j in JOBS.items() if j.runs_on == "sagemaker")
        raise KitArgumentError(helper, "job", f"is invalid ({error})", f"e.g. job={sagemaker_jobs[0]!r}") from None
    if spec.runs_on != "sagemaker":
        raise KitArgumentError(
            helper,
            "job",
            f"{job!r} runs on {spec.runs_on}: its release is a task-definition revision, not an image to pass on",
            f"run what it released with ecs_run_task(job={job!r}, ...)",
        )
    return ReleasedImageOperator(task_id=task_id, job=job, env=env, **{**aws_operator_kwargs(ROLE), **operator_kwargs})

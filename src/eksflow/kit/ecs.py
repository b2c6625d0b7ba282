"""Run an ECS task as a DAG task, under the ``ecs-runner`` role.

Built on the Amazon provider's EcsRunTaskOperator with the platform's choices: deferrable waiting (the
worker pod exits while ECS runs; the triggerer polls), ``reattach=True`` (a retry after a lost worker pod
finds the task its earlier try started, by a ``startedBy`` derived from the task instance key),
retries with exponential backoff, and the platform's ECS pool (``ecs_runtask``: the ceiling on ECS tasks in
flight across all DAGs; waiting tasks keep their slot).

What runs: a family (ECS runs its latest ACTIVE revision), a given revision (``family:N`` or its ARN), a job's
released revision (``job=``: the triggering release event's revision, else the newest revision of the family
registered at or before the DAG run started — the same for every step of the run, eksflow.released),
or a released image pinned by digest (``image=``: the newest revision of the job's family a release of that image
registered, eksflow.revisions). ecs-runner runs only revisions tagged with their family's job (the releases' and
Terraform's) and registers none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from eksflow.jobs import JOBS, Job, get_job
from eksflow.kit.defaults import WAITER_DELAY_SECONDS, aws_operator_kwargs, deferrable
from eksflow.kit.errors import (
    PIN_FIX,
    KitArgumentError,
    is_deferred_value,
    pinned_image_problem,
    require_choice,
    require_env,
    require_non_empty_str,
    require_pinned_image,
    require_positive_int,
)
from eksflow.platform import ECS_RUNTASK_POOL

ROLE = "ecs-runner"
LAUNCH_TYPES = ("FARGATE", "EC2")
_FAMILY = r"[A-Za-z0-9_-]{1,255}"
_TASK_DEFINITION_RE = re.compile(
    rf"^(?P<family>{_FAMILY})(:[1-9][0-9]*)?$|^arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{{12}}:task-definition/{_FAMILY}:[1-9][0-9]*$"
)


def ecs_overrides(
    container: str,
    *,
    command: Sequence[str] | None = None,
    environment: Mapping[str, str] | None = None,
    cpu: int | None = None,
    memory: int | None = None,
) -> dict[str, Any]:
    """The ``overrides`` dict of RunTask for one container (validated)."""
    helper = "ecs_overrides"
    require_non_empty_str(helper, "container", container, "etl")
    if command is not None and (isinstance(command, str) or not all(isinstance(c, str) for c in command)):
        raise KitArgumentError(
            helper,
            "command",
            f"must be a list of strings, got {command!r}",
            "e.g. ['run', '--day', '2026-01-01']",
        )
    if cpu is not None:
        require_positive_int(helper, "cpu", cpu)
    if memory is not None:
        require_positive_int(helper, "memory", memory)
    override: dict[str, Any] = {"name": container}
    if command is not None:
        override["command"] = list(command)
    if environment:
        override["environment"] = [{"name": str(k), "value": str(v)} for k, v in sorted(environment.items())]
    if cpu is not None:
        override["cpu"] = cpu
    if memory is not None:
        override["memory"] = memory
    return {"containerOverrides": [override]}


def _network_configuration(subnets: Sequence[str], security_groups: Sequence[str], assign_public_ip: bool):
    return {
        "awsvpcConfiguration": {
            "subnets": list(subnets),
            "securityGroups": list(security_groups),
            "assignPublicIp": "ENABLED" if assign_public_ip else "DISABLED",
        }
    }


def _ecs_jobs() -> list[Job]:
    return [job for job in JOBS.values() if job.runs_on == "ecs"]


def platform_registry() -> str:
    """The platform's ECR registry (the DAG settings' account and Region): the only registry whose images run."""
    from eksflow.releases import ecr_registry
    from eksflow.settings import load_settings

    settings = load_settings()
    return ecr_registry(settings.account_id, settings.region)


def job_of_image(image: str, env: str) -> Job | None:
    """The platform's ecs job whose repository (in ``env``, in the platform's ECR registry) holds ``image``; None
    for any other repository or registry (a repository's name alone says nothing about whose registry holds it)."""
    from eksflow.releases import pinned_image

    pinned = pinned_image(image)
    if pinned is None or pinned.registry != platform_registry():
        return None
    return next((job for job in _ecs_jobs() if pinned.repository == job.repository(env)), None)


class JobRunTaskOperator(EcsRunTaskOperator):
    """EcsRunTaskOperator that first resolves what to run: the newest revision of ``task_definition`` (a job's
    family) that a release of ``image`` registered; or, for ``job``, the revision of the release that triggered this
    run, else the family's newest revision registered at or before the run started. Every other behaviour is the
    provider's (reattach, deferral)."""

    template_fields = (*EcsRunTaskOperator.template_fields, "image")

    def __init__(self, *, image: str | None = None, job: str | None = None, env: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.image = image
        self.job = job
        self.env = env

    def execute(self, context):
        self.task_definition = self._what_to_run(context)
        if self.do_xcom_push:
            context["ti"].xcom_push(key="task_definition", value=self.task_definition)
        return super().execute(context)

    def _what_to_run(self, context) -> str:
        if self.image:
            return self._released_revision()
        if self.job:
            from eksflow.released import NotARelease, triggering_release

            try:
                release = triggering_release(context, job=self.job, env=self.env, registry=platform_registry())
            except NotARelease as error:
                raise AirflowFailException(f"{error}; nothing was run (no retry: the event stays what it is)") from None
            if release is not None:
                self._check_released_revision(release)
                self.log.info(
                    "Running %s: the revision of the release of job %s that triggered this run (image %s, commit %s)",
                    release.task_definition_arn, self.job, release.image, release.git_sha,
                )  # fmt: skip
                return release.task_definition_arn
            return self._revision_at_run_start(context)
        return self.task_definition

    def _check_released_revision(self, release) -> None:
        """The announced revision runs the announced image, and is one the platform made: a forged or stale
        announcement (e.g. a rollback to an old revision with another image) runs nothing."""
        from eksflow.revisions import untrusted_revision_problem

        job = get_job(self.job)
        described = self.client.describe_task_definition(taskDefinition=release.task_definition_arn, include=["TAGS"])
        definition = described["taskDefinition"]
        ran = [c.get("image") for c in definition.get("containerDefinitions") or [] if c.get("name") == job.container]
        if ran != [release.image]:
            raise AirflowFailException(
                f"the triggering release of job {self.job} announces revision {release.task_definition_arn} with "
                f"image {release.image}, but that revision's container {job.container!r} runs "
                f"{', '.join(map(str, ran)) or 'nothing'}: nothing was run (release the job again)"
            )
        problem = untrusted_revision_problem(
            definition, described.get("tags"), job=job, env=self.env, registry=platform_registry()
        )
        if problem:
            raise AirflowFailException(
                f"the triggering release of job {self.job} announces revision {release.task_definition_arn}, which "
                f"the platform did not make ({problem}): nothing was run"
            )

    def _revision_at_run_start(self, context) -> str:
        from eksflow.released import NoRevisionBeforeRun, RunNotStarted, revision_at_start, run_started_at

        try:
            started = run_started_at(context)
            revision = revision_at_start(
                self.client, job=self.job, env=self.env, started=started, registry=platform_registry()
            )
        except (RunNotStarted, NoRevisionBeforeRun) as error:
            raise AirflowFailException(f"ecs_run_task(job={self.job!r}): {error}; nothing was run") from None
        self.log.info(
            "Running %s: no release of job %s triggered this run, so every ECS step of it runs the newest ACTIVE "
            "revision of %s registered at or before the run started (%s; registered %s). A later release reaches "
            "the next run.",
            revision.arn, self.job, self.task_definition, started.isoformat(), revision.registered_at.isoformat(),
        )  # fmt: skip
        return revision.arn

    def _released_revision(self) -> str:
        from eksflow.jobs import JOB_TAG_KEY
        from eksflow.revisions import revision_running

        helper = "ecs_run_task"
        problem = pinned_image_problem(self.image)
        if problem:
            raise AirflowException(f"{helper}(): argument 'image' {problem} (as rendered); {PIN_FIX}")
        job = get_job(self.job) if self.job else job_of_image(self.image, self.env)
        if job is None or job_of_image(self.image, self.env) != job:
            raise AirflowException(
                f"{helper}(): argument 'image' {self.image!r} (as rendered) is not in "
                f"{_repositories_named(self.env, job)}; run only images the job repositories released"
            )
        if self.task_definition != job.ecs_family(self.env):
            raise AirflowFailException(
                f"{helper}(): family {self.task_definition!r} is not job {job.name!r}'s "
                f"({job.ecs_family(self.env)!r}): an image of a job's repository runs only in that job's family"
            )
        revision = revision_running(self.client, job=job, env=self.env, registry=platform_registry(), image=self.image)
        if revision is None:
            raise AirflowFailException(
                f"{helper}(): argument 'image' {self.image!r} (as rendered) was never released: no ACTIVE revision of "
                f"family {self.task_definition} tagged {JOB_TAG_KEY}={job.name} runs it in container "
                f"{job.container!r}. Release it — `eksflow job release --env {self.env} --job {job.name} --image "
                "<build> --git-sha <commit>` (the job repository's release workflow) registers its revision — or "
                f"pass job={job.name!r} without image= to run the latest release; nothing was run"
            )
        self.log.info(
            "Running %s: the newest revision of %s released with image %s",
            revision["taskDefinitionArn"], self.task_definition, self.image,
        )  # fmt: skip
        return revision["taskDefinitionArn"]


def _repositories_named(env: str, job: Job | None = None) -> str:
    jobs = [job] if job else _ecs_jobs()
    return "ECR repository " + " or ".join(repr(j.repository(env)) for j in jobs) + f" (env {env!r})"


def _check_what_runs(helper: str, task_definition: Any, job: Any, image: Any, env: str) -> tuple[str, Job | None]:
    """The family/revision to run and the job, checked at definition time."""
    if job is not None:
        if task_definition is not None:
            raise KitArgumentError(
                helper, "task_definition", "was given together with 'job'", "pass only job= (it names the family)"
            )
        try:
            spec = get_job(job)
        except ValueError as error:
            raise KitArgumentError(helper, "job", f"is invalid ({error})", "e.g. job='etl-step'") from None
        if spec.runs_on != "ecs":
            raise KitArgumentError(
                helper, "job", f"{job!r} runs on {spec.runs_on}, not ECS", "pass an ecs job, e.g. job='etl-step'"
            )
        family = spec.ecs_family(env)
    elif task_definition is None:
        raise KitArgumentError(
            helper,
            "job",
            "and 'task_definition' are both missing",
            "pass job='etl-step' (runs what the job released) or task_definition='<family>', '<family>:<revision>' "
            "or a revision ARN",
        )
    else:
        require_non_empty_str(helper, "task_definition", task_definition, "eksflow-dev-etl-step")
        family, spec = task_definition, None
        if not is_deferred_value(task_definition) and not _TASK_DEFINITION_RE.match(task_definition):
            raise KitArgumentError(
                helper,
                "task_definition",
                f"is not a family, '<family>:<revision>' or a task-definition revision ARN: {task_definition!r}",
                "e.g. 'eksflow-dev-etl-step', 'eksflow-dev-etl-step:7' or "
                "'arn:aws:ecs:eu-west-1:123456789012:task-definition/eksflow-dev-etl-step:7'",
            )
    if image is None:
        return family, spec
    require_pinned_image(helper, "image", image)
    if not is_deferred_value(family) and not re.fullmatch(_FAMILY, family):
        raise KitArgumentError(
            helper,
            "task_definition",
            f"is a revision ({family!r}) but 'image' asks for the revision with that image",
            "pass the family alone, e.g. 'eksflow-dev-etl-step': the kit runs the revision a release of the image "
            "registered",
        )
    if not is_deferred_value(image):
        owner = job_of_image(image, env)
        if owner is None or (spec is not None and owner != spec):
            raise KitArgumentError(
                helper,
                "image",
                f"is not in {_repositories_named(env, spec)}: {image!r}",
                "run only what a job repository released: the image `eksflow job release` printed",
            )
    return family, spec


def ecs_run_task(
    *,
    task_id: str,
    cluster: str,
    task_definition: str | None = None,
    job: str | None = None,
    image: str | None = None,
    env: str | None = None,
    overrides: dict[str, Any] | None = None,
    map_overrides: Any = None,
    launch_type: str = "FARGATE",
    subnets: Sequence[str] = (),
    security_groups: Sequence[str] = (),
    assign_public_ip: bool = False,
    awslogs_group: str | None = None,
    awslogs_stream_prefix: str | None = None,
    max_active_tis_per_dag: int | None = None,
    pool: str = ECS_RUNTASK_POOL,
    **operator_kwargs: Any,
):
    """An ECS RunTask step. Pass ``overrides`` for one task, or ``map_overrides`` (an XComArg producing a
    list of overrides dicts, see :func:`ecs_overrides`) for one mapped task instance per element.

    What runs, one of:

    - ``job="etl-step"`` (an ecs job of eksflow.jobs): what the job's repository released — the revision of the
      release that triggered this DAG run (schedule the DAG on ``eksflow.assets.job_release(settings, job)``), else
      the newest ACTIVE revision of the job's family ``eksflow-<env>-<job>`` registered at or before the DAG run
      started (ecs:ListTaskDefinitions, ecs:DescribeTaskDefinition): every step of a run — map indexes, retries,
      re-attaches — runs the same revision, a release landing mid-run reaches the next run; a family with no
      revision registered before the run fails the task for good naming the family;
    - ``task_definition``: a family (its latest ACTIVE revision), ``"<family>:<revision>"`` or a revision ARN.

    ``image``: a released image pinned by digest (``<registry>/<repository>@sha256:<hex>``, in one of the platform's
    ecs job repositories; templated allowed): the step runs the newest ACTIVE revision of the job's family (``job``'s,
    or ``task_definition`` given as a family) tagged with the job whose job container runs exactly that image — the
    revision `eksflow job release` registered for it (ecs:ListTaskDefinitions, ecs:DescribeTaskDefinition). The kit
    registers nothing: an image no release registered fails the task naming the release command.
    ``env``: the environment of the names (default ``EKSFLOW_ENV``).

    ``launch_type="FARGATE"`` needs ``subnets`` (awsvpc networking); ``"EC2"`` may omit them.
    """
    helper = "ecs_run_task"
    require_non_empty_str(helper, "task_id", task_id, "transform")
    require_non_empty_str(helper, "cluster", cluster, "eksflow-dev-batch")
    env = require_env(helper, env)
    family, spec = _check_what_runs(helper, task_definition, job, image, env)
    require_choice(helper, "launch_type", launch_type, LAUNCH_TYPES)
    if overrides is not None and map_overrides is not None:
        raise KitArgumentError(helper, "map_overrides", "was given together with 'overrides'", "pass only one of them")
    if map_overrides is not None and not is_deferred_value(map_overrides):
        raise KitArgumentError(
            helper,
            "map_overrides",
            f"must be an XComArg (the output of a task), got {type(map_overrides).__name__}",
            "pass e.g. plan_partitions() whose return value is a list of overrides dicts",
        )
    if isinstance(subnets, str) or isinstance(security_groups, str):
        raise KitArgumentError(helper, "subnets", "must be a list of subnet ids, not a string", "wrap it in a list")
    if launch_type == "FARGATE" and not subnets:
        raise KitArgumentError(
            helper,
            "subnets",
            "is empty but launch_type is FARGATE (awsvpc needs subnets)",
            "pass private subnet ids",
        )
    if max_active_tis_per_dag is not None:
        require_positive_int(helper, "max_active_tis_per_dag", max_active_tis_per_dag)
    require_non_empty_str(helper, "pool", pool, ECS_RUNTASK_POOL)

    kwargs: dict[str, Any] = {
        **aws_operator_kwargs(ROLE),
        "task_id": task_id,
        "cluster": cluster,
        "task_definition": family,
        "image": image,
        "job": spec.name if spec else None,
        "env": env,
        "launch_type": launch_type,
        "reattach": True,
        "deferrable": deferrable(),
        "waiter_delay": WAITER_DELAY_SECONDS,
        "do_xcom_push": True,
        "awslogs_group": awslogs_group,
        "awslogs_stream_prefix": awslogs_stream_prefix,
        "pool": pool,
    }
    if subnets:
        kwargs["network_configuration"] = _network_configuration(subnets, security_groups, assign_public_ip)
    if max_active_tis_per_dag is not None:
        kwargs["max_active_tis_per_dag"] = max_active_tis_per_dag
    kwargs.update(operator_kwargs)

    if map_overrides is not None:
        return JobRunTaskOperator.partial(**kwargs).expand(overrides=map_overrides)
    return JobRunTaskOperator(overrides=overrides or {}, **kwargs)

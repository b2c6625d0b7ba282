"""Deployment settings the reference DAGs read at parse time — from environment variables only.

The chart sets these on every Airflow component (on the local cluster with the seeded emulator's ids). Reading the
environment is free and deterministic, unlike Variables, Connections or AWS calls, which DAG files must
never do at parse time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from eksflow.jobs import ecs_cluster_name, get_job, sagemaker_execution_role_name
from eksflow.platform import bucket_names, notification_topic_arn, validate_env

ENV_PREFIX = "EKSFLOW_"


def _setting(variable: str, doc: str, **kwargs):
    """A setting read from ``EKSFLOW_<variable>`` (the chart sets it from values; docs/kit-reference.md lists them)."""
    return field(metadata={"variable": ENV_PREFIX + variable, "doc": doc}, **kwargs)


@dataclass(frozen=True)
class Settings:
    env: str = _setting("ENV", "the environment (dev, prod, local): part of every name a grant is scoped by")
    region: str = _setting("AWS_REGION", "AWS region (falls back to AWS_DEFAULT_REGION)")
    account_id: str = _setting(
        "AWS_ACCOUNT_ID", "AWS account of the platform (the chart's dagSettings.awsAccountId; in queue URLs and ARNs)"
    )
    ecs_cluster: str = _setting("ECS_CLUSTER", "ECS cluster of the environment's batch steps")
    ecs_task_definition: str = _setting(
        "ECS_TASK_DEFINITION", "task definition family of the reference ETL step (job etl-step's, eksflow.jobs)"
    )
    ecs_container: str = _setting(
        "ECS_CONTAINER", "container name in that task definition (ecs_overrides' first argument)"
    )
    ecs_subnets: tuple[str, ...] = _setting("ECS_SUBNETS", "private subnets for Fargate tasks (comma-separated)")
    ecs_security_groups: tuple[str, ...] = _setting(
        "ECS_SECURITY_GROUPS", "security groups for Fargate tasks (comma-separated)"
    )
    sagemaker_execution_role_arn: str = _setting(
        "SAGEMAKER_EXECUTION_ROLE_ARN", "the role SageMaker jobs and models run as (passed by sagemaker-runner)"
    )
    notification_topic_arn: str = _setting(
        "NOTIFICATION_TOPIC_ARN",
        "SNS topic the kit's notifier publishes to (derived: eksflow-<env>-notifications)",
        default="",
    )
    schedules_enabled: bool = _setting(
        "SCHEDULES", "on/off: time schedules (off on the local stack, which triggers runs)", default=True
    )

    def schedule(self, cron_or_preset: str) -> str | None:
        """A DAG's time schedule, or None where time schedules are off (the local demo triggers runs itself)."""
        return cron_or_preset if self.schedules_enabled else None

    def schedule_or_assets(self, cron_or_preset: str, *assets):
        """A time schedule and Asset updates, whichever comes first (Airflow's AssetOrTimeSchedule), e.g. daily and
        on every release of the job the DAG runs; where time schedules are off, the Assets alone."""
        if not self.schedules_enabled:
            return list(assets)
        from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable

        return AssetOrTimeSchedule(timetable=CronTriggerTimetable(cron_or_preset, timezone="UTC"), assets=list(assets))

    @property
    def buckets(self) -> dict[str, str]:
        """The environment's buckets by purpose (``settings.buckets["data"]``), names from the role model."""
        return bucket_names(self.env)

    @property
    def curated_prefix_uri(self) -> str:
        """Where the data pipeline writes curated partitions (the Asset the ML pipeline is scheduled on)."""
        return f"s3://{self.buckets['data']}/curated/"


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    e = os.environ if environ is None else environ

    def get(name: str, default: str) -> str:
        return e.get(ENV_PREFIX + name, default)

    env = validate_env(get("ENV", "local"))
    account = get("AWS_ACCOUNT_ID", "123456789012")
    region = get("AWS_REGION", e.get("AWS_DEFAULT_REGION", "eu-west-1"))
    etl = get_job("etl-step")  # the reference ETL step (eksflow.jobs names its family and container)
    return Settings(
        env=env,
        region=region,
        account_id=account,
        ecs_cluster=get("ECS_CLUSTER", ecs_cluster_name(env)),
        ecs_task_definition=get("ECS_TASK_DEFINITION", etl.ecs_family(env)),
        ecs_container=get("ECS_CONTAINER", etl.container),
        ecs_subnets=_split(get("ECS_SUBNETS", "")),
        ecs_security_groups=_split(get("ECS_SECURITY_GROUPS", "")),
        sagemaker_execution_role_arn=get(
            "SAGEMAKER_EXECUTION_ROLE_ARN", f"arn:aws:iam::{account}:role/{sagemaker_execution_role_name(env)}"
        ),
        # Terraform's notifications module makes it with this name (the role model's pattern).
        notification_topic_arn=get("NOTIFICATION_TOPIC_ARN", notification_topic_arn(env, region, account)),
        schedules_enabled=_on_off("SCHEDULES", get("SCHEDULES", "on")),
    )


def _on_off(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered not in {"on", "off"}:
        raise ValueError(f"{ENV_PREFIX}{name}={value!r} is invalid: use 'on' or 'off'")
    return lowered == "on"

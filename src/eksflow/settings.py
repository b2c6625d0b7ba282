"""Deployment settings the reference DAGs read at parse time — from environment variables only.

The chart sets these on every Airflow component (on the local cluster with the seeded emulator's ids). Reading the
environment is free and deterministic, unlike Variables, Connections or AWS calls, which DAG files must
never do at parse time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from eksflow.platform import bucket_names, name_prefix, notification_topic_arn, validate_env

ENV_PREFIX = "EKSFLOW_"


@dataclass(frozen=True)
class Settings:
    env: str
    region: str
    ecs_cluster: str
    ecs_task_definition: str
    ecs_container: str
    ecs_subnets: tuple[str, ...]
    ecs_security_groups: tuple[str, ...]
    sagemaker_execution_role_arn: str
    training_image: str
    serving_image: str
    notification_topic_arn: str = ""
    schedules_enabled: bool = True

    def schedule(self, cron_or_preset: str) -> str | None:
        """A DAG's time schedule, or None where time schedules are off (the local demo triggers runs itself)."""
        return cron_or_preset if self.schedules_enabled else None

    @property
    def buckets(self) -> dict[str, str]:
        return bucket_names(self.env)

    @property
    def curated_prefix_uri(self) -> str:
        return f"s3://{self.buckets['data']}/curated/"


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    e = os.environ if environ is None else environ

    def get(name: str, default: str) -> str:
        return e.get(ENV_PREFIX + name, default)

    env = validate_env(get("ENV", "local"))
    prefix = name_prefix(env)
    account = get("AWS_ACCOUNT_ID", "123456789012")
    region = get("AWS_REGION", e.get("AWS_DEFAULT_REGION", "eu-west-1"))
    registry = f"{account}.dkr.ecr.{region}.amazonaws.com"
    return Settings(
        env=env,
        region=region,
        ecs_cluster=get("ECS_CLUSTER", f"{prefix}-batch"),
        ecs_task_definition=get("ECS_TASK_DEFINITION", f"{prefix}-etl-step"),
        ecs_container=get("ECS_CONTAINER", "etl"),
        ecs_subnets=_split(get("ECS_SUBNETS", "")),
        ecs_security_groups=_split(get("ECS_SECURITY_GROUPS", "")),
        sagemaker_execution_role_arn=get(
            "SAGEMAKER_EXECUTION_ROLE_ARN", f"arn:aws:iam::{account}:role/{prefix}-sagemaker-execution"
        ),
        training_image=get("TRAINING_IMAGE", f"{registry}/{prefix}-train:latest"),
        serving_image=get("SERVING_IMAGE", f"{registry}/{prefix}-serve:latest"),
        # Terraform's notifications module makes it with this name (the role model's pattern).
        notification_topic_arn=get("NOTIFICATION_TOPIC_ARN", notification_topic_arn(env, region, account)),
        schedules_enabled=_on_off("SCHEDULES", get("SCHEDULES", "on")),
    )


def _on_off(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered not in {"on", "off"}:
        raise ValueError(f"{ENV_PREFIX}{name}={value!r} is invalid: use 'on' or 'off'")
    return lowered == "on"

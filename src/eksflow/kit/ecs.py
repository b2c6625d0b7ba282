"""Run an ECS task as a DAG task, under the ``ecs-runner`` role.

Built on the Amazon provider's EcsRunTaskOperator with the platform's choices: deferrable waiting (the
worker pod exits while ECS runs; the triggerer polls), ``reattach=True`` (a retry after a lost worker pod
finds the task its earlier try started, by a ``startedBy`` derived from the task instance key),
retries with exponential backoff, and the platform's ECS pool (``ecs_runtask``: the ceiling on ECS tasks in
flight across all DAGs; waiting tasks keep their slot).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator

from eksflow.kit.defaults import WAITER_DELAY_SECONDS, aws_operator_kwargs, deferrable
from eksflow.kit.errors import (
    KitArgumentError,
    is_deferred_value,
    require_choice,
    require_non_empty_str,
    require_positive_int,
)
from eksflow.platform import ECS_RUNTASK_POOL

ROLE = "ecs-runner"
LAUNCH_TYPES = ("FARGATE", "EC2")


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


def ecs_run_task(
    *,
    task_id: str,
    cluster: str,
    task_definition: str,
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

    ``launch_type="FARGATE"`` needs ``subnets`` (awsvpc networking); ``"EC2"`` may omit them.
    """
    helper = "ecs_run_task"
    require_non_empty_str(helper, "task_id", task_id, "transform")
    require_non_empty_str(helper, "cluster", cluster, "eksflow-dev-batch")
    require_non_empty_str(helper, "task_definition", task_definition, "etl-step")
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
        "task_definition": task_definition,
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
        return EcsRunTaskOperator.partial(**kwargs).expand(overrides=map_overrides)
    return EcsRunTaskOperator(overrides=overrides or {}, **kwargs)

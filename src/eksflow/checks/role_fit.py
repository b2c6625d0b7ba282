"""Role fit: every AWS operator runs under the role that owns the AWS services it calls.

The services of an operator are its provider hook's client type plus the ``extra_aws_services`` the
kit's operators declare for the clients they open besides the hook (e.g. CloudWatch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eksflow.kit import pod_override
from eksflow.roles import ROLES, role_for_pod_template


@dataclass(frozen=True)
class TaskRoleInfo:
    dag_id: str
    task_id: str
    role: str | None
    pod_template_file: str | None
    conn_id: str | None
    services: frozenset[str]
    # What the task's executor_config pod_override changes that its role may not (eksflow.kit.pod_override).
    override_problems: tuple[str, ...] = ()


def _operator_class(task: Any) -> type:
    return getattr(task, "operator_class", None) or type(task)


def _kwarg(task: Any, name: str) -> Any:
    partial = getattr(task, "partial_kwargs", None)
    if partial is not None and name in partial:
        return partial[name]
    return getattr(task, name, None)


def aws_services(operator_class: type) -> frozenset[str]:
    hook_class = getattr(operator_class, "aws_hook_class", None)
    if hook_class is None:
        return frozenset()
    from airflow.providers.amazon.aws.hooks.ec2 import EC2Hook

    hook = hook_class(aws_conn_id=None, **({"api_type": "client_type"} if issubclass(hook_class, EC2Hook) else {}))
    service = hook.client_type or hook.resource_type
    return frozenset({service, *getattr(operator_class, "extra_aws_services", ())})


def describe(dag_id: str, task: Any) -> TaskRoleInfo:
    config = _kwarg(task, "executor_config") or {}
    role = role_for_pod_template(config.get("pod_template_file"))
    return TaskRoleInfo(
        dag_id=dag_id,
        task_id=task.task_id,
        role=role.name if role else None,
        pod_template_file=config.get("pod_template_file"),
        conn_id=_kwarg(task, "aws_conn_id"),
        services=aws_services(_operator_class(task)),
        override_problems=tuple(
            f"executor_config pod_override sets {field}; {fix}"
            for field, fix in (pod_override.problems(config["pod_override"]) if config.get("pod_override") else [])
        ),
    )


def violations(info: TaskRoleInfo) -> list[str]:
    where = f"{info.dag_id}.{info.task_id}"
    if info.role not in ROLES:
        return [
            f"{where}: no platform role (executor_config pod_template_file {info.pod_template_file!r} is not a "
            "role's template); build the task with eksflow.kit"
        ]
    role = ROLES[info.role]
    problems = [f"{where}: {problem}" for problem in info.override_problems]
    if info.services:
        missing = sorted(info.services - role.services)
        if missing:
            owners = sorted({r.name for s in missing for r in ROLES.values() if s in r.services})
            problems.append(f"{where}: calls {missing} but runs as {role.name!r}; use role {' or '.join(owners)}")
        if info.conn_id != role.conn_id:
            problems.append(
                f"{where}: aws_conn_id {info.conn_id!r} is not the {role.name!r} connection {role.conn_id!r}"
            )
    return problems


def check_dag(dag: Any) -> list[str]:
    problems: list[str] = []
    for task in dag.tasks:
        problems.extend(violations(describe(dag.dag_id, task)))
    return problems

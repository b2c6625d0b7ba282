"""What every task of the platform gets: its role's worker pod, connection, retries and AWS retry mode."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from eksflow.kit.pod_override import check_executor_config
from eksflow.roles import DEFAULT_ROLE, TaskRole, get_role

# Airflow retries: 3 tries after the first, 1 min -> 2 min -> 4 min (capped at 15 min). The local cluster
# (values-local.yaml) shortens the first delay with EKSFLOW_RETRY_DELAY_SECONDS so a failing demo fails fast.
RETRIES = 3
RETRY_DELAY = timedelta(seconds=int(os.environ.get("EKSFLOW_RETRY_DELAY_SECONDS", "60")))
RETRY_BACKOFF_MULTIPLIER = 2.0
MAX_RETRY_DELAY = timedelta(minutes=15)

# botocore retries ride out throttling and 5xx inside one try, before Airflow retries the task.
BOTOCORE_CONFIG: dict[str, Any] = {"retries": {"mode": "adaptive", "max_attempts": 10}}

# Deferred waits poll AWS this often (seconds). A SageMaker/ECS status call every 30 s is well
# below the describe rate limits even with hundreds of tasks waiting. The local cluster polls faster.
WAITER_DELAY_SECONDS = int(os.environ.get("EKSFLOW_WAITER_DELAY_SECONDS", "30"))


def deferrable() -> bool:
    """Whether AWS waits are deferred to the triggerer (the default: the worker pod exits while AWS works).
    ``EKSFLOW_DEFERRABLE=off`` keeps the worker polling instead — for a triggerer outage, and for the
    benchmark that measures what deferral saves."""
    value = os.environ.get("EKSFLOW_DEFERRABLE", "on").strip().lower()
    if value not in {"on", "off"}:
        raise ValueError(f"EKSFLOW_DEFERRABLE={value!r} is invalid: use 'on' or 'off'")
    return value == "on"


def executor_config(role: TaskRole | str, pod_override: Any = None) -> dict[str, Any]:
    """KubernetesExecutor config selecting the role's pod template.

    The template (rendered by the chart from pod_templates/base.yaml and the role model) carries the role's
    service account, its ``eksflow.io/role`` label and resources. A plain path keeps DAG parsing free of the
    kubernetes client import (~2 s per parse in the dag-processor).

    ``pod_override`` (a ``kubernetes.client`` V1Pod) may change what the role leaves open (annotations, image,
    env values, resources within the role's limit, emptyDir/configMap volumes); one that sets the service
    account, labels, Secret volumes or env, the API token, host namespaces or a security context is refused
    here (KitArgumentError) and by the cluster's admission policy (docs/dag-authoring.md).
    """
    role = get_role(role) if isinstance(role, str) else role
    config: dict[str, Any] = {"pod_template_file": role.pod_template_path}
    if pod_override is not None:
        config["pod_override"] = pod_override
        check_executor_config("executor_config", config)
    return config


def retry_kwargs() -> dict[str, Any]:
    """The platform retry policy, less what the enclosing DAG's (or task group's) ``default_args`` set: a kit
    helper passes its arguments explicitly, and Airflow lets explicit arguments win over ``default_args``."""
    policy = {
        "retries": RETRIES,
        "retry_delay": RETRY_DELAY,
        "retry_exponential_backoff": RETRY_BACKOFF_MULTIPLIER,
        "max_retry_delay": MAX_RETRY_DELAY,
    }
    inherited = _enclosing_default_args()
    return {key: value for key, value in policy.items() if key not in inherited}


def _enclosing_default_args() -> dict[str, Any]:
    from airflow.sdk.definitions._internal.contextmanager import DagContext, TaskGroupContext

    dag = DagContext.get_current()
    if dag is None:
        return {}
    args = dict(dag.default_args or {})
    group = TaskGroupContext.get_current(dag)
    if group is not None and group.default_args:
        args.update(group.default_args)
    return args


def role_kwargs(role_name: str) -> dict[str, Any]:
    """Operator kwargs binding a task to a role: pod, connection, retries."""
    role = get_role(role_name)
    kwargs: dict[str, Any] = {"executor_config": executor_config(role), **retry_kwargs()}
    if role.services:
        kwargs["aws_conn_id"] = role.conn_id
    return kwargs


def aws_operator_kwargs(role_name: str) -> dict[str, Any]:
    return {**role_kwargs(role_name), "botocore_config": BOTOCORE_CONFIG}


def side_client(operator, client_type: str):
    """A boto3 client for another AWS API, with the operator's connection, region and botocore config
    (e.g. CloudWatch beside EC2); declare it in the operator's ``extra_aws_services`` for the role fit."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    return AwsBaseHook(
        aws_conn_id=operator.aws_conn_id,
        client_type=client_type,
        region_name=operator.region_name,
        verify=operator.verify,
        config=operator.botocore_config,
    ).conn


def default_args(owner: str, **extra: Any) -> dict[str, Any]:
    """``default_args`` for a platform DAG: the default role's pod, the platform retry policy and, unless
    ``on_failure_callback`` is given (``None``: none), ``notify_owners("failure")`` on every task."""
    if not isinstance(owner, str) or not owner.strip():
        from eksflow.kit.errors import KitArgumentError

        raise KitArgumentError("default_args", "owner", f"must be a team name, got {owner!r}", "e.g. 'data-eng'")
    unknown = sorted(set(extra) - _operator_arguments())
    if unknown:
        from eksflow.kit.errors import KitArgumentError

        raise KitArgumentError(
            "default_args",
            unknown[0],
            "is not a DAG-wide task default (Airflow drops unknown names silently; roles are chosen per task)",
            "use an operator argument such as retries, retry_delay, email, execution_timeout; "
            "a role with role_kwargs('<role>') or role_task('<role>')",
        )
    args = {"owner": owner, **role_kwargs(DEFAULT_ROLE), **extra}
    args.pop("aws_conn_id", None)
    if "on_failure_callback" not in extra:  # the owners hear of every failed task; None turns it off
        from eksflow.kit.notify import notify_owners

        args["on_failure_callback"] = notify_owners("failure")
    return args


def _operator_arguments() -> set[str]:
    import inspect

    from airflow.sdk import BaseOperator

    parameters = inspect.signature(BaseOperator.__init__).parameters.values()
    names = {p.name for p in parameters if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD}
    # Per task, not per DAG; the role (pod template, connection) comes from the kit, never from default_args.
    return (names | AWS_OPERATOR_DEFAULTS) - {"self", "task_id", "dag", "task_group", "default_args", "executor_config"}


# What Airflow's AWS operators take besides BaseOperator's arguments, safe as a DAG-wide default.
AWS_OPERATOR_DEFAULTS = frozenset({"region_name", "verify", "botocore_config"})


def role_task(role: str = DEFAULT_ROLE, **task_kwargs: Any):
    """``@task`` bound to a role: ``@role_task("ec2-ops")`` runs the function in that role's pod.

    Inside the function, use ``get_role(...).conn_id`` (or the kit helpers) for AWS access.
    """
    from airflow.sdk import task

    kwargs = role_kwargs(role)
    kwargs.pop("aws_conn_id", None)
    if "executor_config" in task_kwargs:  # the role's template, with at most a pod_override that stays in it
        given = task_kwargs.pop("executor_config")
        check_executor_config("role_task", given)
        if given.get("pod_template_file") not in (None, kwargs["executor_config"]["pod_template_file"]):
            from eksflow.kit.errors import KitArgumentError

            raise KitArgumentError(
                "role_task", "executor_config", "sets another role's pod_template_file", f"use role_task({role!r})"
            )
        kwargs["executor_config"] = {**kwargs["executor_config"], **given}
    return task(**{**kwargs, **task_kwargs})

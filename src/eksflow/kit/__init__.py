"""The eksflow DAG authoring kit: provider operators with the platform's roles, retries and idempotency."""

from eksflow.kit.defaults import default_args, executor_config, role_kwargs, role_task
from eksflow.kit.ecs import ecs_overrides, ecs_run_task
from eksflow.kit.errors import KitArgumentError
from eksflow.kit.housekeeping import (
    delete_idle_endpoints,
    find_idle_endpoints,
    find_managed_instances,
    stop_managed_instances,
    terminate_managed_instances,
    write_s3_report,
)
from eksflow.kit.sagemaker import (
    sagemaker_deploy_endpoint,
    sagemaker_register_model,
    sagemaker_smoke_check,
    sagemaker_training,
)

__all__ = [
    "KitArgumentError",
    "default_args",
    "delete_idle_endpoints",
    "ecs_overrides",
    "ecs_run_task",
    "executor_config",
    "find_idle_endpoints",
    "find_managed_instances",
    "role_kwargs",
    "role_task",
    "sagemaker_deploy_endpoint",
    "sagemaker_register_model",
    "sagemaker_smoke_check",
    "sagemaker_training",
    "stop_managed_instances",
    "terminate_managed_instances",
    "write_s3_report",
]

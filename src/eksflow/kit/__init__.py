"""The eksflow DAG authoring kit: provider operators with the platform's roles, retries and idempotency.

Names are imported lazily, so a DAG file pays only for the provider modules it uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "KitArgumentError": "errors",
    "default_args": "defaults",
    "executor_config": "defaults",
    "role_kwargs": "defaults",
    "role_task": "defaults",
    "ecs_overrides": "ecs",
    "ecs_run_task": "ecs",
    "delete_idle_endpoints": "housekeeping",
    "find_idle_endpoints": "housekeeping",
    "find_managed_instances": "housekeeping",
    "stop_managed_instances": "housekeeping",
    "terminate_managed_instances": "housekeeping",
    "write_s3_report": "housekeeping",
    "released_image": "images",
    "sagemaker_deploy_endpoint": "sagemaker",
    "sagemaker_register_model": "sagemaker",
    "sagemaker_smoke_check": "sagemaker",
    "sagemaker_training": "sagemaker",
    "sagemaker_batch_transform": "sagemaker_jobs",
    "sagemaker_processing": "sagemaker_jobs",
    "SnsNotifier": "notify",
    "notify_owners": "notify",
}

__all__ = [
    "KitArgumentError",
    "SnsNotifier",
    "default_args",
    "delete_idle_endpoints",
    "ecs_overrides",
    "ecs_run_task",
    "executor_config",
    "find_idle_endpoints",
    "find_managed_instances",
    "notify_owners",
    "released_image",
    "role_kwargs",
    "role_task",
    "sagemaker_batch_transform",
    "sagemaker_deploy_endpoint",
    "sagemaker_processing",
    "sagemaker_register_model",
    "sagemaker_smoke_check",
    "sagemaker_training",
    "stop_managed_instances",
    "terminate_managed_instances",
    "write_s3_report",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'eksflow.kit' has no attribute {name!r}")
    return getattr(importlib.import_module(f"eksflow.kit.{module}"), name)


if TYPE_CHECKING:
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
    from eksflow.kit.images import released_image
    from eksflow.kit.notify import SnsNotifier, notify_owners
    from eksflow.kit.sagemaker import (
        sagemaker_deploy_endpoint,
        sagemaker_register_model,
        sagemaker_smoke_check,
        sagemaker_training,
    )
    from eksflow.kit.sagemaker_jobs import sagemaker_batch_transform, sagemaker_processing

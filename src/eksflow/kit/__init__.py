"""The eksflow DAG authoring kit: provider operators with the platform's roles, retries and idempotency.

Names are imported lazily, so a DAG file pays only for the provider modules it uses. The queue-table bridge's
helpers (docs/migrating-queue-tables.md) live in ``eksflow.events``; their database drivers (asyncpg in the
triggerer, psycopg2 in the tasks) are imported only when a trigger or task runs, never when a DAG file is parsed.
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
    "QueueTable": "eksflow.events.queue_table",
    "queue_table_asset": "eksflow.events.queue_table_trigger",
    "LegacyTable": "eksflow.events.queue_table_tasks",
    "claim_rows": "eksflow.events.queue_table_tasks",
    "claim_rows_task": "eksflow.events.queue_table_tasks",
    "write_back": "eksflow.events.queue_table_tasks",
    "write_back_task": "eksflow.events.queue_table_tasks",
}

__all__ = [
    "KitArgumentError",
    "LegacyTable",
    "QueueTable",
    "SnsNotifier",
    "claim_rows",
    "claim_rows_task",
    "default_args",
    "delete_idle_endpoints",
    "ecs_overrides",
    "ecs_run_task",
    "executor_config",
    "find_idle_endpoints",
    "find_managed_instances",
    "notify_owners",
    "queue_table_asset",
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
    "write_back",
    "write_back_task",
    "write_s3_report",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'eksflow.kit' has no attribute {name!r}")
    return getattr(importlib.import_module(module if "." in module else f"eksflow.kit.{module}"), name)


if TYPE_CHECKING:
    from eksflow.events.queue_table import QueueTable
    from eksflow.events.queue_table_tasks import LegacyTable, claim_rows, claim_rows_task, write_back, write_back_task
    from eksflow.events.queue_table_trigger import queue_table_asset
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

"""AWS housekeeping: stop idle managed EC2, terminate expired ones, delete idle SageMaker endpoints."""

from __future__ import annotations

import json
from datetime import datetime

from airflow.sdk import DAG, Param

from eksflow.kit import (
    default_args,
    delete_idle_endpoints,
    find_idle_endpoints,
    find_managed_instances,
    notify_owners,
    role_task,
    stop_managed_instances,
    terminate_managed_instances,
    write_s3_report,
)
from eksflow.platform import MANAGED_TAG_KEY, PROTECTED_TAG_KEY, TTL_TAG_KEY, managed_tag_value
from eksflow.settings import load_settings

settings = load_settings()

DOC = f"""
### AWS housekeeping (hourly)
Acts only on resources tagged `{MANAGED_TAG_KEY}={managed_tag_value(settings.env)}` (this environment's); everything
else — unmanaged, managed by another environment, or tagged `{PROTECTED_TAG_KEY}=true` — is never touched. IAM holds
the role to the same rule.

- **stop** running managed instances whose average CPU over `idle_hours` is below `cpu_threshold` %;
- **terminate** managed instances whose `{TTL_TAG_KEY}` tag (ISO-8601 UTC) is in the past;
- **delete** managed SageMaker endpoints with no invocation in `endpoint_idle_hours`.

Terminate and delete are **dry runs by default** (`dry_run_terminate`, `dry_run_delete`); a summary
report goes to `s3://{settings.buckets["data"]}/reports/housekeeping/`. Runs as the `ec2-ops` role.
"""

with DAG(
    dag_id="aws_housekeeping",
    description="Stop/terminate idle or expired managed EC2, delete idle SageMaker endpoints",
    schedule=settings.schedule("@hourly"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(owner="platform"),
    tags=["eksflow", "reference", "housekeeping", "ec2", "sagemaker"],
    doc_md=DOC,
    render_template_as_native_obj=True,
    params={
        "cpu_threshold": Param(5.0, type="number", exclusiveMinimum=0, maximum=100),
        "idle_hours": Param(6, type="integer", minimum=1, maximum=168),
        "endpoint_idle_hours": Param(24, type="integer", minimum=1, maximum=720),
        "dry_run_stop": Param(False, type="boolean"),
        "dry_run_terminate": Param(True, type="boolean"),
        "dry_run_delete": Param(True, type="boolean"),
    },
) as dag:
    instances = find_managed_instances(
        task_id="find_managed_instances",
        cpu_threshold="{{ params.cpu_threshold }}",
        lookback_hours="{{ params.idle_hours }}",
    )
    stopped = stop_managed_instances(
        task_id="stop_idle_instances",
        instance_ids=instances.output["idle"],
        dry_run="{{ params.dry_run_stop }}",
    )
    terminated = terminate_managed_instances(
        task_id="terminate_expired_instances",
        instance_ids=instances.output["expired"],
        dry_run="{{ params.dry_run_terminate }}",
    )
    endpoints = find_idle_endpoints(task_id="find_idle_endpoints", lookback_hours="{{ params.endpoint_idle_hours }}")
    deleted = delete_idle_endpoints(
        task_id="delete_idle_endpoints",
        endpoint_names=endpoints.output["idle"],
        dry_run="{{ params.dry_run_delete }}",
    )

    @role_task()
    def build_report(instances, endpoints, stopped, terminated, deleted, params=None, dag_run=None) -> str:
        return json.dumps(
            {
                "run_id": dag_run.run_id,
                "run_after": dag_run.run_after.isoformat(),
                "params": dict(params),
                "instances": instances,
                "endpoints": endpoints,
                "actions": {"stopped": stopped, "terminated": terminated, "deleted_endpoints": deleted},
            },
            indent=2,
            sort_keys=True,
            default=str,
        )

    report = build_report(instances.output, endpoints.output, stopped.output, terminated.output, deleted.output)
    write_s3_report(
        task_id="write_report",
        bucket=settings.buckets["data"],
        key="reports/housekeeping/{{ dag_run.run_after | ts_nodash }}.json",
        data=report,
        on_success_callback=notify_owners("success"),  # failures: default_args notifies every task's
    )

"""A DAG for the REST API commands of docs/dag-authoring.md, run by tests/test_local_cluster.py: a plain task that
returns the run's param."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from eksflow.kit import default_args, role_task

with DAG(
    dag_id="rest_api_echo",
    default_args=default_args(owner="platform"),
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"greeting": Param("hello", type="string")},
    tags=["eksflow", "test"],
):

    @role_task()
    def echo(params=None) -> str:
        return params["greeting"]

    echo()

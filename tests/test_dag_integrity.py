"""DAG integrity: the reference DAGs import cleanly with the network closed, follow the platform's rules,
and every AWS operator runs under the role that owns its service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eksflow.checks.role_fit import check_dag, describe
from eksflow.roles import ROLES
from tests.support.worker_pods import PARSE_ENV, reference_dagbag

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
REFERENCE_DAGS = {"batch_data_pipeline", "ml_pipeline", "aws_housekeeping"}


@pytest.fixture(scope="module")
def dagbag():
    return reference_dagbag()


def parse_offline(folder: Path, **extra_env: str) -> dict:
    """Parse a DAG folder in a fresh process whose every network connection is refused."""
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "dag_parse_offline.py"), str(folder)],
        env={**os.environ, **PARSE_ENV, **extra_env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_dags_import_with_the_network_closed():
    report = parse_offline(DAGS)
    assert report["import_errors"] == {}
    assert report["connect_attempts"] == []
    assert set(report["dag_ids"]) == REFERENCE_DAGS


def test_the_cluster_suites_own_dags_import_with_the_network_closed():
    """tests/cluster_dags/ reach the local cluster by git-sync; an import error there would stop the cluster
    suite only after the cluster started."""
    report = parse_offline(REPO / "tests" / "cluster_dags")
    assert report["import_errors"] == {}
    assert report["connect_attempts"] == []
    assert report["dag_ids"]


def test_the_offline_guard_does_catch_parse_time_network_access(tmp_path):
    (tmp_path / "bad_dag.py").write_text(
        "import boto3\n"
        "from airflow.sdk import DAG\n"
        "boto3.client('s3', region_name='eu-west-1').list_buckets()\n"
        "with DAG('bad', schedule=None): pass\n"
    )
    report = parse_offline(tmp_path, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_MAX_ATTEMPTS="1")
    assert report["connect_attempts"], "the guard saw no connection attempt"
    assert "bad_dag.py" in " ".join(report["import_errors"])


def test_no_import_errors_and_all_reference_dags(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == REFERENCE_DAGS


@pytest.mark.parametrize("dag_id", sorted(REFERENCE_DAGS))
def test_dag_follows_platform_rules(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.tags and "eksflow" in dag.tags
    assert dag.doc_md and len(dag.doc_md) > 100
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    for task in dag.tasks:
        assert task.owner not in (None, "", "airflow"), f"{task.task_id} has no owner"
        retries = task.partial_kwargs.get("retries", 0) if hasattr(task, "partial_kwargs") else task.retries
        assert retries >= 2, f"{dag_id}.{task.task_id} retries={retries}"


@pytest.mark.parametrize("dag_id", sorted(REFERENCE_DAGS))
def test_every_task_fits_its_role(dagbag, dag_id):
    assert check_dag(dagbag.dags[dag_id]) == []


def test_role_fit_covers_every_aws_service_in_the_reference_dags(dagbag):
    used = {}
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            info = describe(dag.dag_id, task)
            for service in info.services:
                used.setdefault(service, set()).add(info.role)
    assert used == {
        "ecs": {"ecs-runner"},
        "sagemaker": {"sagemaker-runner", "ec2-ops"},
        "sagemaker-runtime": {"sagemaker-runner"},
        "s3": {"sagemaker-runner", "ec2-ops"},
        "ec2": {"ec2-ops"},
        "cloudwatch": {"ec2-ops"},
    }


def test_role_fit_reports_an_operator_under_the_wrong_role():
    from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
    from airflow.sdk import DAG

    from eksflow.kit import role_kwargs

    with DAG("misfit", schedule=None) as dag:
        EcsRunTaskOperator(task_id="run", cluster="c", task_definition="t", overrides={}, **role_kwargs("ec2-ops"))
        EcsRunTaskOperator(task_id="bare", cluster="c", task_definition="t", overrides={})
    assert check_dag(dag) == [
        "misfit.run: calls ['ecs'] but runs as 'ec2-ops'; use role ecs-runner",
        "misfit.bare: no platform role (executor_config pod_template_file None is not a role's template); "
        "build the task with eksflow.kit",
    ]


def test_mapped_ecs_task_keeps_its_role(dagbag):
    task = dagbag.dags["batch_data_pipeline"].get_task("transform_partition")
    info = describe("batch_data_pipeline", task)
    assert (info.role, info.conn_id, info.pod_template_file) == (
        "ecs-runner",
        ROLES["ecs-runner"].conn_id,
        ROLES["ecs-runner"].pod_template_path,
    )

"""End to end on SQLite, the DAG author's loop: each reference DAG runs with `airflow dags test` (the chart's
airflow.cfg) against the emulator over HTTP, and the emulator's state shows exactly the intended effect —
including the variants (gate below threshold, dry-run defaults). The same pipelines run through the chart on
the local cluster, IAM enforced, with the same expectations (test_local_cluster.py)."""

from __future__ import annotations

import json

import pytest

from eksflow.connections import local_connections
from tests.support.effects import (
    DATA_BUCKET,
    HOUSEKEEPING_ACTED,
    HOUSEKEEPING_DELETED,
    ML_ENDPOINT,
    OTHER_ENV_ENDPOINT,
    assert_endpoint_deployed,
    curated_keys,
    endpoint_names,
    expected_housekeeping_actions,
    housekeeping_report,
    instance_states,
    partition_markers,
)

pytestmark = pytest.mark.slow

DAY = "2026-11-28"


def dags_test(airflow_home, emulator, dag_id: str, conf: dict | None = None):
    env = {
        **local_connections(emulator.url, "eu-west-1"),
        **emulator.seeded.settings_env,
        "AWS_ENDPOINT_URL": emulator.url,
    }
    args = ["dags", "test", dag_id]
    if conf is not None:
        args += ["--conf", json.dumps(conf)]
    result = airflow_home.run(*args, extra_env=env, timeout=600)
    output = result.stdout + result.stderr
    # `airflow dags test` exits non-zero ("DagRun failed") when the run fails.
    assert result.returncode == 0, output[-5000:]
    return output


def test_batch_data_pipeline_runs_every_partition_and_writes_the_asset_prefix(airflow_home, fresh_emulator):
    dags_test(airflow_home, fresh_emulator, "batch_data_pipeline", {"partitions": 3, "day": DAY})
    ecs = fresh_emulator.client("ecs")
    stopped = ecs.list_tasks(cluster="eksflow-local-batch", desiredStatus="STOPPED")["taskArns"]
    assert len(stopped) == 4  # 3 partitions + merge
    assert curated_keys(fresh_emulator.client) == partition_markers(DAY, 3)


def test_ml_pipeline_trains_once_and_deploys_the_endpoint(airflow_home, fresh_emulator):
    s3 = fresh_emulator.client("s3")
    s3.put_object(Bucket=DATA_BUCKET, Key="curated/_SUCCESS", Body=b"")
    dags_test(airflow_home, fresh_emulator, "ml_pipeline")
    sagemaker = fresh_emulator.client("sagemaker")
    jobs = sagemaker.list_training_jobs()["TrainingJobSummaries"]
    assert len(jobs) == 1 and jobs[0]["TrainingJobName"].startswith("eksflow-local-churn-train-")
    assert_endpoint_deployed(fresh_emulator.client)


def test_ml_pipeline_gate_skips_deployment_below_threshold(airflow_home, fresh_emulator):
    fresh_emulator.client("s3").put_object(Bucket=DATA_BUCKET, Key="curated/_SUCCESS", Body=b"")
    dags_test(airflow_home, fresh_emulator, "ml_pipeline", {"min_metric": 0.99})
    assert ML_ENDPOINT not in endpoint_names(fresh_emulator.client)


def test_housekeeping_acts_only_on_resources_its_env_manages_and_nobody_protects(airflow_home, fresh_emulator):
    """Unmanaged, protected and another environment's instances and endpoints (seeded idle and expired) are left
    alone; this environment's idle and expired ones are stopped, terminated and deleted."""
    before = endpoint_names(fresh_emulator.client)
    assert OTHER_ENV_ENDPOINT in before
    dags_test(airflow_home, fresh_emulator, "aws_housekeeping", {"dry_run_terminate": False, "dry_run_delete": False})
    assert instance_states(fresh_emulator.client, fresh_emulator.seeded) == HOUSEKEEPING_ACTED
    assert before - endpoint_names(fresh_emulator.client) == HOUSEKEEPING_DELETED
    report = housekeeping_report(fresh_emulator.client)
    assert report["actions"] == expected_housekeeping_actions(fresh_emulator.seeded)
    # Another environment's endpoint is not even inspected: IAM lets this environment read only its own names.
    inspected = {entry["endpoint"] for entry in report["endpoints"]}
    assert OTHER_ENV_ENDPOINT not in inspected and inspected == {n for n in before if n.startswith("eksflow-local-")}


def test_housekeeping_defaults_are_dry_runs_for_terminate_and_delete(airflow_home, fresh_emulator):
    before = endpoint_names(fresh_emulator.client)
    dags_test(airflow_home, fresh_emulator, "aws_housekeeping")
    states = instance_states(fresh_emulator.client, fresh_emulator.seeded)
    assert states["managed-expired"] == "running"
    assert states["managed-idle"] == "stopped"  # stopping is reversible and on by default
    assert endpoint_names(fresh_emulator.client) == before

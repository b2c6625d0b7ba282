"""End to end on SQLite: each reference DAG runs with `airflow dags test` against the emulator over HTTP,
and the emulator's state shows exactly the intended effect."""

from __future__ import annotations

import json

import pytest

from eksflow.connections import local_connections

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


def instance_states(emulator) -> dict[str, str]:
    ec2 = emulator.client("ec2")
    by_id = {}
    for reservation in ec2.describe_instances()["Reservations"]:
        for instance in reservation["Instances"]:
            by_id[instance["InstanceId"]] = instance["State"]["Name"]
    return {name: by_id[iid] for name, iid in emulator.seeded.instances.items()}


def endpoint_names(emulator) -> set[str]:
    return {e["EndpointName"] for e in emulator.client("sagemaker").list_endpoints()["Endpoints"]}


def test_batch_data_pipeline_runs_every_partition_and_writes_the_asset_prefix(airflow_home, fresh_emulator):
    dags_test(airflow_home, fresh_emulator, "batch_data_pipeline", {"partitions": 3, "day": DAY})
    ecs = fresh_emulator.client("ecs")
    stopped = ecs.list_tasks(cluster="eksflow-local-batch", desiredStatus="STOPPED")["taskArns"]
    assert len(stopped) == 4  # 3 partitions + merge
    keys = {
        o["Key"]
        for o in fresh_emulator.client("s3").list_objects_v2(Bucket="eksflow-local-data", Prefix="curated/")["Contents"]
    }
    assert {f"curated/day={DAY}/part={i:04d}/_SUCCESS" for i in range(3)} | {"curated/_SUCCESS"} == keys


def test_ml_pipeline_trains_once_and_deploys_the_endpoint(airflow_home, fresh_emulator):
    s3 = fresh_emulator.client("s3")
    s3.put_object(Bucket="eksflow-local-data", Key="curated/_SUCCESS", Body=b"")
    dags_test(airflow_home, fresh_emulator, "ml_pipeline")
    sagemaker = fresh_emulator.client("sagemaker")
    jobs = sagemaker.list_training_jobs()["TrainingJobSummaries"]
    assert len(jobs) == 1 and jobs[0]["TrainingJobName"].startswith("eksflow-churn-train-")
    endpoint = sagemaker.describe_endpoint(EndpointName="eksflow-local-churn")
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"].startswith("eksflow-eksflow-local-churn-config-")
    tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]}
    assert tags == {"eksflow:managed": "true", "eksflow:protected": "true"}


def test_ml_pipeline_gate_skips_deployment_below_threshold(airflow_home, fresh_emulator):
    fresh_emulator.client("s3").put_object(Bucket="eksflow-local-data", Key="curated/_SUCCESS", Body=b"")
    dags_test(airflow_home, fresh_emulator, "ml_pipeline", {"min_metric": 0.99})
    assert "eksflow-local-churn" not in endpoint_names(fresh_emulator)


def test_housekeeping_acts_only_on_managed_resources(airflow_home, fresh_emulator):
    before = endpoint_names(fresh_emulator)
    dags_test(airflow_home, fresh_emulator, "aws_housekeeping", {"dry_run_terminate": False, "dry_run_delete": False})
    assert instance_states(fresh_emulator) == {
        "managed-idle": "stopped",
        "managed-busy": "running",
        "managed-expired": "terminated",
        "managed-no-metrics": "running",
        "unmanaged-idle": "running",
        "unmanaged-expired": "running",
    }
    assert before - endpoint_names(fresh_emulator) == {"eksflow-local-idle"}
    reports = fresh_emulator.client("s3").list_objects_v2(Bucket="eksflow-local-data", Prefix="reports/housekeeping/")
    (report_key,) = [o["Key"] for o in reports["Contents"]]
    body = fresh_emulator.client("s3").get_object(Bucket="eksflow-local-data", Key=report_key)["Body"].read()
    report = json.loads(body)
    assert report["actions"] == {
        "stopped": [fresh_emulator.seeded.instances["managed-idle"]],
        "terminated": [fresh_emulator.seeded.instances["managed-expired"]],
        "deleted_endpoints": ["eksflow-local-idle"],
    }


def test_housekeeping_defaults_are_dry_runs_for_terminate_and_delete(airflow_home, fresh_emulator):
    before = endpoint_names(fresh_emulator)
    dags_test(airflow_home, fresh_emulator, "aws_housekeeping")
    states = instance_states(fresh_emulator)
    assert states["managed-expired"] == "running"
    assert states["managed-idle"] == "stopped"  # stopping is reversible and on by default
    assert endpoint_names(fresh_emulator) == before

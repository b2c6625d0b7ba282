"""End to end on SQLite, the DAG author's loop: each reference DAG runs with `airflow dags test` (the chart's
airflow.cfg) against the emulator over HTTP, and the emulator's state shows exactly the intended effect —
including the variants (gate below threshold, dry-run defaults). The same pipelines run through the chart on
the local cluster, IAM enforced, with the same expectations (test_local_cluster.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eksflow.connections import local_connections
from eksflow_dev.dagcheck.check import audited_runs, opt_out_reason, run_order, static_checks
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
from tests.support.releases import container_image

pytestmark = pytest.mark.slow

DAY = "2026-11-28"
DAGS = Path(__file__).resolve().parents[1] / "dags"


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


def test_batch_data_pipeline_runs_every_partition_of_the_released_image_and_writes_the_asset_prefix(
    airflow_home, fresh_emulator
):
    """A manual run (no release event) runs job etl-step's family: ECS runs its latest revision, the seeded release's,
    whose container runs the released image by digest — as each ECS task's own definition shows."""
    dags_test(airflow_home, fresh_emulator, "batch_data_pipeline", {"partitions": 3, "day": DAY})
    ecs = fresh_emulator.client("ecs")
    stopped = ecs.list_tasks(cluster="eksflow-local-batch", desiredStatus="STOPPED")["taskArns"]
    assert len(stopped) == 4  # 3 partitions + merge
    assert curated_keys(fresh_emulator.client) == partition_markers(DAY, 3)
    tasks = ecs.describe_tasks(cluster="eksflow-local-batch", tasks=stopped)["tasks"]
    assert {task["taskDefinitionArn"] for task in tasks} == {fresh_emulator.seeded.task_definitions["etl-step"]}
    (definition,) = {task["taskDefinitionArn"] for task in tasks}
    ran = ecs.describe_task_definition(taskDefinition=definition)["taskDefinition"]
    assert container_image(ran, "etl") == fresh_emulator.seeded.released["etl-step"]
    assert "@sha256:" in container_image(ran, "etl")


def test_ml_pipeline_trains_once_and_deploys_the_endpoint(airflow_home, fresh_emulator):
    s3 = fresh_emulator.client("s3")
    s3.put_object(Bucket=DATA_BUCKET, Key="curated/_SUCCESS", Body=b"")
    dags_test(airflow_home, fresh_emulator, "ml_pipeline")
    sagemaker = fresh_emulator.client("sagemaker")
    jobs = sagemaker.list_training_jobs()["TrainingJobSummaries"]
    assert len(jobs) == 1 and jobs[0]["TrainingJobName"].startswith("eksflow-local-churn-train-")
    assert_endpoint_deployed(fresh_emulator.client)
    # The released images (the seed's git-SHA tags), by digest: what the train_image/serve_image tasks resolved.
    training = sagemaker.describe_training_job(TrainingJobName=jobs[0]["TrainingJobName"])
    assert training["AlgorithmSpecification"]["TrainingImage"] == fresh_emulator.seeded.released["train"]
    endpoint = sagemaker.describe_endpoint(EndpointName=ML_ENDPOINT)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert model["PrimaryContainer"]["Image"] == fresh_emulator.seeded.released["serve"]


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


def test_every_dag_in_dags_runs_green_with_its_params_defaults_and_calls_only_what_its_roles_allow(
    airflow_home, fresh_emulator, tmp_path
):
    """No test edit for a new DAG: `eksflow check`'s dry run over dags/ (producers of an asset before the DAGs
    scheduled on it), IAM audited with the roles terraform/modules/irsa makes — every run succeeds and no task calls
    an action outside its role's policy. A DAG file opts out only with DRY_RUN_OPT_OUT = "<reason>"."""
    parsed = static_checks([DAGS])
    assert parsed.report.problems == []
    order = run_order(list(parsed.report.dag_files), parsed.assets)
    assert set(order) == set(parsed.report.dag_files)
    ran = audited_runs(airflow_home, fresh_emulator, {dag_id: parsed.files[dag_id] for dag_id in order}, tmp_path)
    assert ran.note == ""
    assert ran.action_problems == []
    opted_out = {dag_id: state for dag_id, state in ran.states.items() if state.startswith("skipped: ")}
    assert {dag_id: opt_out_reason(Path(parsed.files[dag_id])) for dag_id in opted_out} == {
        dag_id: state.removeprefix("skipped: ") for dag_id, state in opted_out.items()
    }
    assert {d: s for d, s in ran.states.items() if d not in opted_out} == dict.fromkeys(
        [d for d in order if d not in opted_out], "success"
    )


FAILING_DAG = """\
from airflow.sdk import DAG

from eksflow.kit import default_args, role_task

with DAG("failing", schedule=None, tags=["eksflow"], doc_md="Fails on purpose. " * 8, catchup=False,
         max_active_runs=1, default_args=default_args(owner="data-eng", retries=2)):

    @role_task()
    def explode():
        raise RuntimeError("the partition file is empty")

    explode()
"""


OUTSIDE_ITS_ROLE = """\
from airflow.sdk import DAG

from eksflow.kit import default_args, role_task
from eksflow.roles import get_role

with DAG("outside_its_role", schedule=None, tags=["eksflow"], doc_md="Calls SageMaker as ecs-runner. " * 5,
         catchup=False, max_active_runs=1, default_args=default_args(owner="data-eng")):

    @role_task("ecs-runner")
    def list_training_jobs():
        from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

        SageMakerHook(aws_conn_id=get_role("ecs-runner").conn_id).conn.list_training_jobs()

    list_training_jobs()
"""


def test_check_reports_a_failing_dry_run_and_each_action_a_task_calls_outside_its_roles_policy(tmp_path):
    """`eksflow check` on two new DAG files: one whose task raises (reported with the run's last lines), one whose
    task calls SageMaker as ecs-runner — which passes role fit (a plain task) and runs green against the emulator,
    but the emulator's IAM audit, with the roles terraform/modules/irsa makes, names the task, action and role."""
    (tmp_path / "failing.py").write_text(FAILING_DAG)
    (tmp_path / "outside_its_role.py").write_text(OUTSIDE_ITS_ROLE)
    result = subprocess.run(
        [sys.executable, "-m", "eksflow.cli", "check", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    report = result.stdout[result.stdout.index("DAGs: failing, outside_its_role") :]
    problems = [line.strip() for line in report.splitlines() if line.strip().startswith("PROBLEM ")]
    assert problems == [
        "PROBLEM outside_its_role.list_training_jobs: sagemaker:ListTrainingJobs on * is outside role ecs-runner's IAM "
        "policy (eksflow-local-task-ecs-runner, terraform/modules/irsa/policies.tf): grant it there if the task needs "
        "it, or call it from a role that has it"
    ]
    assert "dry run failing: failed (exit 1); the run's last lines:" in report
    assert "RuntimeError: the partition file is empty" in report
    assert "dry run outside_its_role: success" in report
    assert "NOTE" not in report
    assert report.rstrip().endswith("FAILED")

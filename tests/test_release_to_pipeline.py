"""From a job repository's release to a pipeline run, executed end to end on this machine: the release workflow's CLI
step (`eksflow job release`, a subprocess with the emulator's AWS environment) pushes a new etl-step image, registers
the family's revision pinned by its digest and announces it on the release queue; Airflow's real triggerer (the
release watcher of `job_release("etl-step")`, registered by the real dag-processor from the reference DAG file
dags/batch_data_pipeline.py) turns the message into an Asset event; the real scheduler (LocalExecutor) starts the data
pipeline on it, and every ECS task the pipeline starts runs the released revision, whose container image is the pushed
digest. PostgreSQL metadata DB, the emulator over HTTP, no mocks.

Time schedules are off (as on the local stack), so only the release can have started the run.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from eksflow.jobs import ecs_cluster_name, get_job
from eksflow.platform import ECS_RUNTASK_POOL
from eksflow.releases import release_from_payload
from eksflow_dev.local.emulator import running_emulator
from tests.support.airflow_stack import airflow_stack, wait_for
from tests.support.releases import ENV, built_image, container_image, release_job

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
ETL = get_job("etl-step")
DAG_ID = "batch_data_pipeline"
GIT_SHA = "e2e0" * 10


def dag_runs(stack) -> list[tuple[str, str, str]]:
    return stack.query("SELECT run_id, run_type, state FROM dag_run WHERE dag_id = %s ORDER BY id", (DAG_ID,))


@pytest.fixture(scope="module")
def released_run(tmp_path_factory, postgres, airflow_db_template):
    root = tmp_path_factory.mktemp("release-to-pipeline")
    dags = root / "dags"
    dags.mkdir()
    shutil.copy(REPO / "dags" / "batch_data_pipeline.py", dags)
    started = time.monotonic()
    with running_emulator(root / "emulator") as emulator:
        env = {**emulator.seeded.settings_env, "AWS_ENDPOINT_URL": emulator.url, "EKSFLOW_RELEASE_WAIT_SECONDS": "2"}
        with airflow_stack(root, postgres, airflow_db_template, dags, env) as stack:
            pool = stack.airflow("pools", "set", ECS_RUNTASK_POOL, "32", "ECS tasks in flight")
            assert pool.returncode == 0, pool.stderr[-2000:]
            for component in ("dag-processor", "triggerer", "api-server", "scheduler"):
                stack.start(component)
            wait_for(lambda: "Watching release queue" in stack.log("triggerer"), 180, "the release watcher", stack.tail)
            assert dag_runs(stack) == [], "no run before the release"

            result = release_job(emulator.url, ETL.name, built_image(root / "image", GIT_SHA), GIT_SHA)
            assert result.returncode == 0, result.stdout + result.stderr

            (_, run_type, _) = wait_for(lambda: dag_runs(stack)[:1], 180, "the run the release starts")[0]
            state = wait_for(
                lambda: (s := dag_runs(stack)[0][2]) in ("success", "failed") and s, 600, "the run to end", stack.tail
            )
            events = stack.query(
                "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.name = %s",
                (ETL.release_asset_name,),
            )
            ecs = emulator.client("ecs")
            cluster = ecs_cluster_name(ENV)
            arns = [arn for status in ("RUNNING", "STOPPED")
                    for arn in ecs.list_tasks(cluster=cluster, desiredStatus=status)["taskArns"]]  # fmt: skip
            tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []
            yield {
                "run_type": run_type,
                "state": state,
                "events": [extra for (extra,) in events],
                "tasks": tasks,
                "ecs": ecs,
                "seeded_revision": emulator.seeded.task_definitions[ETL.name],
                "logs": stack.tail("scheduler", "triggerer"),
                "seconds": time.monotonic() - started,
            }


def test_the_release_workflows_step_starts_the_data_pipeline_through_the_release_asset(released_run, record_property):
    assert released_run["run_type"] == "asset_triggered"
    assert released_run["state"] == "success", released_run["logs"]
    (extra,) = released_run["events"]
    assert extra["from_trigger"] is True
    release = release_from_payload(extra["payload"], env=ENV)
    assert (release.job, release.git_sha) == (ETL.name, GIT_SHA)
    record_property("release to pipeline seconds", f"{released_run['seconds']:.0f}")


def test_every_ecs_task_of_the_run_ran_the_released_revision_whose_image_is_the_pushed_digest(released_run):
    (extra,) = released_run["events"]
    release = release_from_payload(extra["payload"], env=ENV)
    assert release.task_definition_arn != released_run["seeded_revision"], "the release registered a new revision"
    tasks = released_run["tasks"]
    commands = {
        tuple(override.get("command", [])[:1] + override.get("command", [])[4:5])
        for task in tasks
        for override in task["overrides"]["containerOverrides"]
    }
    # 4 partitions (the param's default) + the merge; a retry under load may start a task again, never elsewhere
    assert commands == {("transform", str(n)) for n in range(4)} | {("merge",)}, commands
    assert {task["taskDefinitionArn"] for task in tasks} == {release.task_definition_arn}
    definition = released_run["ecs"].describe_task_definition(taskDefinition=release.task_definition_arn)
    assert container_image(definition["taskDefinition"], ETL.container) == release.image
    assert release.image.endswith("@" + release.digest)

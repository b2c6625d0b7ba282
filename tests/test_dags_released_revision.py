"""The data pipeline runs what a release event carries, through a real DagRun: the etl-step job is released with the
release command (its revision registered with the image pinned by digest), a later revision is registered on top (the
family's latest is no longer the release's), then an event of the job's release Asset — as the release queue's
AssetWatcher registers it — triggers a run of batch_data_pipeline in a migrated Airflow home (tests/support/
asset_runs.py), and its merge step runs under `airflow tasks test` with the run's triggering_asset_events from the
execution API. The ECS task it started ran exactly the event's revision, its container the released digest.

A manual run (tests/support/manual_runs.py) that a release lands in keeps the revision released before it started:
its start comes from the execution API as in a deployment."""

from __future__ import annotations

import shutil

import pytest

from eksflow.assets import job_release
from eksflow.connections import local_connections
from eksflow.jobs import JOB_TAG_KEY, get_job
from eksflow.releases import release_from_payload
from eksflow.revisions import revision_with_image
from eksflow.settings import load_settings
from eksflow_dev.dagcheck.home import AirflowHome
from tests.support.asset_runs import asset_triggered_run
from tests.support.manual_runs import started_manual_run
from tests.support.releases import ENV, built_image, container_image, registered_at, release_job

pytestmark = pytest.mark.slow

ETL = get_job("etl-step")
SHA = "0123456789abcdef0123456789abcdef01234567"
CLUSTER = "eksflow-local-batch"


@pytest.fixture()
def home(airflow_home, tmp_path) -> AirflowHome:
    """A copy of the migrated home: this test's runs stay out of the shared one."""
    shutil.copytree(airflow_home.path, tmp_path / "airflow", dirs_exist_ok=True)
    env = {"AIRFLOW_HOME": str(tmp_path / "airflow"),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow' / 'airflow.db'}"}  # fmt: skip
    return AirflowHome(tmp_path / "airflow", {**airflow_home.env, **env})


def test_an_asset_triggered_run_runs_the_revision_its_release_event_carries(home, fresh_emulator, tmp_path):
    released = release_job(fresh_emulator.url, ETL.name, built_image(tmp_path / "image", SHA), SHA, "--outputs",
                           str(tmp_path / "outputs"))  # fmt: skip
    assert released.returncode == 0, released.stderr
    (body,) = [line for line in released.stdout.splitlines() if line.startswith("released job")]
    outputs = dict(line.split("=", 1) for line in (tmp_path / "outputs").read_text().splitlines())
    release = release_from_payload(
        {"kind": "eksflow.job-release", "version": 1, "env": ENV, "job": ETL.name, "image": outputs["image"],
         "git_sha": SHA, "tag": SHA, "task_definition_arn": outputs["task_definition_arn"]}, env=ENV,
    )  # fmt: skip
    ecs = fresh_emulator.client("ecs")
    later = revision_with_image(ecs, ETL, ENV, f"{outputs['image'][:-64]}{'f' * 64}", tags={JOB_TAG_KEY: ETL.name})
    assert later.registered and later.arn != release.task_definition_arn, "the family's latest is another revision"

    env = {**local_connections(fresh_emulator.url, "eu-west-1"), **fresh_emulator.seeded.settings_env,
           "AWS_ENDPOINT_URL": fresh_emulator.url}  # fmt: skip
    asset = job_release(load_settings({**home.env, **env}), ETL.name)
    run_id = asset_triggered_run(home, "batch_data_pipeline", asset, release.to_payload(), env)
    output = _tested_merge(home, run_id, env)
    assert f"Running {release.task_definition_arn}: the revision of the release of job etl-step" in output

    (task_arn,) = ecs.list_tasks(cluster=CLUSTER, desiredStatus="STOPPED")["taskArns"]
    (task,) = ecs.describe_tasks(cluster=CLUSTER, tasks=[task_arn])["tasks"]
    assert task["taskDefinitionArn"] == release.task_definition_arn
    ran = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    assert container_image(ran, ETL.container) == release.image == outputs["image"]
    assert body.endswith(release.image)


def _tested_merge(home, run_id: str, env: dict[str, str]) -> str:
    """The output of `airflow tasks test` of the merge step in ``run_id``, which must have succeeded: the command exits
    0 also when the task failed (airflow/cli/commands/task_command.py task_test), so the state is read back too."""
    result = home.run("tasks", "test", "batch_data_pipeline", "merge_partitions", run_id, extra_env=env, timeout=600)
    output = result.stdout + result.stderr
    state = home.run("tasks", "state", "batch_data_pipeline", "merge_partitions", run_id, extra_env=env, timeout=300)
    ended = state.stdout.strip().splitlines()[-1:] if state.returncode == 0 else [state.stderr[-2000:]]
    if result.returncode != 0 or ended != ["success"]:
        failures = [line for line in output.splitlines() if any(k in line for k in ("rror", "xception", "Traceback"))]
        raise AssertionError(
            f"the merge step ended {ended} (exit {result.returncode}); its errors:\n"
            + "\n".join(failures[-40:])
            + "\n--- the output's end:\n"
            + "\n".join(output.splitlines()[-60:])
        )
    return output


def _merge(home, ecs, run_id: str, env: dict[str, str]) -> tuple[dict, str]:
    """`airflow tasks test` of the merge step in ``run_id``: the definition of the one ECS task it ran, its output."""
    known = set(ecs.list_tasks(cluster=CLUSTER, desiredStatus="STOPPED")["taskArns"])
    output = _tested_merge(home, run_id, env)
    (new,) = set(ecs.list_tasks(cluster=CLUSTER, desiredStatus="STOPPED")["taskArns"]) - known
    (task,) = ecs.describe_tasks(cluster=CLUSTER, tasks=[new])["tasks"]
    return ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"], output


def test_a_manual_run_keeps_the_revision_of_its_start_when_a_release_lands_mid_run_and_the_next_run_takes_it(
    home, fresh_emulator, tmp_path
):
    env = {**local_connections(fresh_emulator.url, "eu-west-1"), **fresh_emulator.seeded.settings_env,
           "AWS_ENDPOINT_URL": fresh_emulator.url}  # fmt: skip
    ecs = fresh_emulator.client("ecs")
    before = fresh_emulator.seeded.task_definitions[ETL.name]
    run_id, started = started_manual_run(home, "batch_data_pipeline", env)
    released = release_job(fresh_emulator.url, ETL.name, built_image(tmp_path / "image", SHA), SHA, "--outputs",
                           str(tmp_path / "outputs"))  # fmt: skip
    assert released.returncode == 0, released.stderr
    outputs = dict(line.split("=", 1) for line in (tmp_path / "outputs").read_text().splitlines())
    assert registered_at(ecs, outputs["task_definition_arn"]) > started, "precondition: released after the start"

    ran, output = _merge(home, ecs, run_id, env)
    assert ran["taskDefinitionArn"] == before, "the revision released before the run started"
    assert container_image(ran, ETL.container) == fresh_emulator.seeded.released[ETL.name]
    assert f"Running {before}: no release of job etl-step triggered this run" in output

    next_run_id, _ = started_manual_run(home, "batch_data_pipeline", env, serialize=False)
    ran, output = _merge(home, ecs, next_run_id, env)
    assert ran["taskDefinitionArn"] == outputs["task_definition_arn"]
    assert container_image(ran, ETL.container) == outputs["image"]

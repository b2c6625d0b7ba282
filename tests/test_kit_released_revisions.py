"""`ecs_run_task` runs what a job repository released, against the emulator over HTTP (the seeded environment: the
etl-step family's latest revision runs the seeded release's image by digest): an image pinned by digest runs in the
family's revision with that image — registered once, with the same code as the release command, then reused; a given
revision runs as given; ``job=`` runs the revision of the release event that triggered the DAG run, else the family
(its latest ACTIVE revision). The task's ECS call shows which (the emulator records the task's definition).

The operator tests call ``execute`` with the context entries the operator reads (``ti``, ``triggering_asset_events``
built by Airflow's own accessor); tests/test_dags_released_revision.py runs the same through a real asset-triggered
DagRun."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, TaskDeferred

from eksflow import kit
from eksflow.connections import local_connections
from eksflow.jobs import get_job
from eksflow.releases import Release
from eksflow_dev.emulator.control import control
from tests.support.releases import ENV, container_image, latest_revision, release_event, triggered_by, without_image

ETL = get_job("etl-step")
FAMILY, CONTAINER = ETL.ecs_family(ENV), ETL.container
REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
NEW_IMAGE = f"{REGISTRY}/{ETL.repository(ENV)}@sha256:{'b' * 64}"
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture()
def ecs_conn(monkeypatch, fresh_emulator):
    for key, value in local_connections(fresh_emulator.url, "eu-west-1").items():
        monkeypatch.setenv(key, value)
    return fresh_emulator


def context(run_id="manual__1", **extra):
    ti = SimpleNamespace(dag_id="batch_data_pipeline", run_id=run_id, task_id="merge_partitions", map_index=-1)
    ti.xcom_push = lambda **_: None
    return {"ti": ti, **extra}


def run_task(emulator, run_id="manual__1", _context=None, **kwargs) -> dict:
    """One ECS task to its end (not deferred: the emulator's tasks stop at once); the task as ECS describes it."""
    op = kit.ecs_run_task(
        task_id="merge_partitions", cluster="eksflow-local-batch",
        subnets=[emulator.seeded.settings_env["EKSFLOW_ECS_SUBNETS"]], deferrable=False, waiter_delay=1, **kwargs,
    )  # fmt: skip
    op.execute(context(run_id, **(_context or {})))
    ecs = emulator.client("ecs")
    (task,) = ecs.describe_tasks(cluster="eksflow-local-batch", tasks=[op.arn])["tasks"]
    return task


def ran_image(emulator, task: dict) -> str:
    definition = emulator.client("ecs").describe_task_definition(taskDefinition=task["taskDefinitionArn"])
    return container_image(definition["taskDefinition"], CONTAINER)


def test_an_image_by_digest_runs_in_a_revision_registered_once_and_reused_by_later_runs(ecs_conn):
    ecs = ecs_conn.client("ecs")
    before = latest_revision(ecs, FAMILY)
    first = run_task(ecs_conn, task_definition=FAMILY, image=NEW_IMAGE)
    registered = latest_revision(ecs, FAMILY)
    assert registered["revision"] == before["revision"] + 1
    assert first["taskDefinitionArn"] == registered["taskDefinitionArn"]
    assert ran_image(ecs_conn, first) == NEW_IMAGE, "the task ran the image by its digest"
    assert without_image(registered, CONTAINER) == without_image(before, CONTAINER)
    control(ecs_conn.url, "stats/reset", "")
    second = run_task(ecs_conn, run_id="manual__2", job=ETL.name, image=NEW_IMAGE)
    assert second["taskDefinitionArn"] == registered["taskDefinitionArn"], "the revision is reused"
    calls = control(ecs_conn.url, "stats")["calls"]
    assert "ecs:RegisterTaskDefinition" not in calls and calls["ecs:DescribeTaskDefinition"] == 1, calls


def test_a_given_revision_runs_that_revision_not_the_familys_latest(ecs_conn):
    first = f"{FAMILY}:1"
    task = run_task(ecs_conn, task_definition=first)
    assert task["taskDefinitionArn"].endswith(f":task-definition/{first}")
    arn = task["taskDefinitionArn"]
    assert run_task(ecs_conn, run_id="manual__2", task_definition=arn)["taskDefinitionArn"] == arn


def test_a_job_runs_its_familys_latest_revision_the_last_release_without_a_triggering_event(ecs_conn):
    task = run_task(ecs_conn, job=ETL.name)
    assert task["taskDefinitionArn"] == ecs_conn.seeded.task_definitions[ETL.name]
    assert ran_image(ecs_conn, task) == ecs_conn.seeded.released[ETL.name]


def _released(emulator, image: str, sha: str = SHA) -> Release:
    """A release of etl-step as the release command makes it: its revision registered, its event's payload."""
    from eksflow.revisions import revision_with_image

    revision = revision_with_image(emulator.client("ecs"), FAMILY, CONTAINER, image)
    return Release(ENV, ETL.name, image, sha, sha, revision.arn)


def test_a_job_runs_the_revision_of_the_newest_release_event_that_triggered_the_run(ecs_conn):
    """Releases queued up while a run was going: the run they trigger runs the newest. The family's latest revision
    is another (a later release) and is not what runs."""
    asset = ETL.release_asset_uri(ENV)
    older = _released(ecs_conn, NEW_IMAGE)
    newer = _released(ecs_conn, f"{REGISTRY}/{ETL.repository(ENV)}@sha256:{'c' * 64}", sha="c" * 40)
    _released(
        ecs_conn, f"{REGISTRY}/{ETL.repository(ENV)}@sha256:{'d' * 64}", sha="d" * 40
    )  # the latest, not this run's
    events = triggered_by(
        release_event(older, asset_uri=asset, minutes_ago=5), release_event(newer, asset_uri=asset, minutes_ago=1)
    )
    task = run_task(ecs_conn, job=ETL.name, _context=events)
    assert task["taskDefinitionArn"] == newer.task_definition_arn
    assert ran_image(ecs_conn, task) == newer.image


def test_an_event_made_by_hand_with_the_release_payload_as_its_extra_is_a_release_too(ecs_conn):
    release = _released(ecs_conn, NEW_IMAGE)
    events = triggered_by(release_event(release, asset_uri=ETL.release_asset_uri(ENV), from_trigger=False))
    assert run_task(ecs_conn, job=ETL.name, _context=events)["taskDefinitionArn"] == release.task_definition_arn


def test_events_of_another_asset_do_not_pick_the_revision(ecs_conn):
    release = _released(ecs_conn, NEW_IMAGE)
    events = triggered_by(release_event(release, asset_uri="x-eksflow-release://local/other"))
    task = run_task(ecs_conn, job=ETL.name, _context=events)
    assert task["taskDefinitionArn"] == latest_revision(ecs_conn.client("ecs"), FAMILY)["taskDefinitionArn"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"kind": "eksflow.job-release", "version": 1, "env": ENV, "job": ETL.name}, "image"),
     ({"kind": "something-else"}, "kind")],
    ids=["half-a-release", "not-a-release"],
)  # fmt: skip
def test_a_triggering_event_that_is_no_release_fails_the_task_for_good_naming_the_field_and_starts_nothing(
    ecs_conn, payload, field
):
    events = triggered_by(release_event(payload, asset_uri=ETL.release_asset_uri(ENV)))
    with pytest.raises(AirflowFailException, match=f"is no release: release message field '{field}'") as failed:
        run_task(ecs_conn, job=ETL.name, _context=events)
    assert f"the event of {ETL.release_asset_uri(ENV)} that triggered this run" in str(failed.value)
    assert ecs_conn.client("ecs").list_tasks(cluster="eksflow-local-batch")["taskArns"] == []


def test_a_templated_image_that_renders_to_a_tag_fails_before_any_aws_call(ecs_conn):
    op = kit.ecs_run_task(
        task_id="t", cluster="eksflow-local-batch", job=ETL.name, image="{{ params.image }}", subnets=["subnet-1"]
    )
    op.image = f"{REGISTRY}/{ETL.repository(ENV)}:latest"  # as rendered
    control(ecs_conn.url, "stats/reset", "")
    with pytest.raises(
        AirflowException, match=r"argument 'image' names the image by its tag 'latest'.*\(as rendered\)"
    ):
        op.execute(context())
    op.image = f"{REGISTRY}/eksflow-local-train@sha256:{'b' * 64}"  # pinned, but not the job's repository
    with pytest.raises(AirflowException, match="is not in ECR repository 'eksflow-local-etl-step'"):
        op.execute(context())
    assert control(ecs_conn.url, "stats")["calls"] == {}


def test_a_retry_with_an_image_reuses_its_revision_and_reattaches_to_the_running_task(tmp_path, monkeypatch):
    from eksflow_dev.local.emulator import running_emulator

    with running_emulator(tmp_path, {"EKSFLOW_EMULATOR_JOB_SECONDS": "120"}) as emulator:
        for key, value in local_connections(emulator.url, "eu-west-1").items():
            monkeypatch.setenv(key, value)

        def try_once():
            op = kit.ecs_run_task(
                task_id="transform", cluster="eksflow-local-batch", job=ETL.name, image=NEW_IMAGE,
                overrides=kit.ecs_overrides(CONTAINER, command=["run"]),
                subnets=[emulator.seeded.settings_env["EKSFLOW_ECS_SUBNETS"]],
            )  # fmt: skip
            with pytest.raises(TaskDeferred) as deferred:  # the worker pod would exit here
                op.execute(context())
            return deferred.value.trigger.task_arn, op.task_definition

        first = try_once()
        second = try_once()  # the worker pod was lost; Airflow retries the same task instance
        assert second == first
        ecs = emulator.client("ecs")
        assert ecs.list_tasks(cluster="eksflow-local-batch")["taskArns"] == [first[0]]
        assert first[1] == latest_revision(ecs, FAMILY)["taskDefinitionArn"]

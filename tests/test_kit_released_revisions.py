"""`ecs_run_task` runs what a job repository released, against the emulator over HTTP (the seeded environment: the
etl-step family's latest revision runs the seeded release's image by digest): an image pinned by digest runs in the
revision its release registered (the kit registers nothing: an image no release registered, or a revision not tagged
with the job, is never run); a given revision runs as given; ``job=`` runs the revision of the release event that
triggered the DAG run, else the newest revision of the family registered at or before the run started — for every
step of the run, though a release lands mid-run. The task's ECS call shows which (the emulator records the task's
definition).

The operator tests call ``execute`` with the context entries the operator reads (``ti``, ``dag_run`` as the Task SDK's
model, ``triggering_asset_events`` built by Airflow's own accessor); tests/test_dags_released_revision.py runs the
same through real asset-triggered and manual DagRuns."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, TaskDeferred

from eksflow import kit
from eksflow.connections import local_connections
from eksflow.jobs import JOB_TAG_KEY, get_job
from eksflow.releases import Release
from eksflow_dev.emulator.control import control
from tests.support.releases import (
    ENV,
    container_image,
    latest_revision,
    registered_at,
    release_event,
    started_run,
    triggered_by,
)

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


def context(run_id="manual__1", started=None, task_id="merge_partitions", map_index=-1, **extra):
    """What the operator reads of a task's context: its task instance and its DAG run (started now unless told)."""
    ti = SimpleNamespace(dag_id="batch_data_pipeline", run_id=run_id, task_id=task_id, map_index=map_index)
    ti.xcom_push = lambda **_: None
    return {"ti": ti, "dag_run": started_run(run_id, started or dt.datetime.now(dt.UTC)), **extra}


def run_task(emulator, run_id="manual__1", _context=None, *, started=None, map_index=-1, **kwargs) -> dict:
    """One ECS task to its end (not deferred: the emulator's tasks stop at once) in a run started at ``started``
    (default: now); the task as ECS describes it."""
    op = kit.ecs_run_task(
        task_id="merge_partitions", cluster="eksflow-local-batch",
        subnets=[emulator.seeded.settings_env["EKSFLOW_ECS_SUBNETS"]], deferrable=False, waiter_delay=1, **kwargs,
    )  # fmt: skip
    op.execute(context(run_id, started, map_index=map_index, **(_context or {})))
    ecs = emulator.client("ecs")
    (task,) = ecs.describe_tasks(cluster="eksflow-local-batch", tasks=[op.arn])["tasks"]
    return task


def ran_image(emulator, task: dict) -> str:
    definition = emulator.client("ecs").describe_task_definition(taskDefinition=task["taskDefinitionArn"])
    return container_image(definition["taskDefinition"], CONTAINER)


def test_an_image_by_digest_runs_the_revision_its_release_registered_though_a_later_release_is_latest(ecs_conn):
    ecs = ecs_conn.client("ecs")
    release = _released(ecs_conn, NEW_IMAGE)
    _released(ecs_conn, f"{REGISTRY}/{ETL.repository(ENV)}@sha256:{'c' * 64}", sha="c" * 40)  # the family's latest
    before = latest_revision(ecs, FAMILY)["revision"]
    control(ecs_conn.url, "stats/reset", "")
    first = run_task(ecs_conn, task_definition=FAMILY, image=NEW_IMAGE)
    second = run_task(ecs_conn, run_id="manual__2", job=ETL.name, image=NEW_IMAGE)
    assert first["taskDefinitionArn"] == second["taskDefinitionArn"] == release.task_definition_arn
    assert ran_image(ecs_conn, first) == NEW_IMAGE, "the task ran the image by its digest"
    calls = control(ecs_conn.url, "stats")["calls"]
    assert "ecs:RegisterTaskDefinition" not in calls, calls
    assert latest_revision(ecs, FAMILY)["revision"] == before, "nothing registered"


def test_an_image_no_release_registered_fails_for_good_naming_the_release_command_and_runs_nothing(ecs_conn):
    ecs = ecs_conn.client("ecs")
    before = latest_revision(ecs, FAMILY)["revision"]
    with pytest.raises(AirflowFailException) as failed:
        run_task(ecs_conn, job=ETL.name, image=NEW_IMAGE)
    message = str(failed.value)
    assert f"argument 'image' {NEW_IMAGE!r} (as rendered) was never released" in message, message
    assert f"tagged {JOB_TAG_KEY}={ETL.name}" in message, message
    assert f"`eksflow job release --env {ENV} --job {ETL.name} --image" in message, message
    assert ecs.list_tasks(cluster="eksflow-local-batch")["taskArns"] == []
    assert latest_revision(ecs, FAMILY)["revision"] == before, "the kit registered nothing"


def test_an_untagged_revision_someone_else_registered_with_the_image_is_never_picked(ecs_conn, caplog):
    """A copy of the released revision with NEW_IMAGE, registered without the job's tag (not by a release): image=
    fails as unreleased; once a release registers the image (the untagged one cleared first: a release never copies
    it), its revision runs, not a later untagged one."""
    ecs = ecs_conn.client("ecs")
    untagged = _register_untagged(ecs, NEW_IMAGE)
    with pytest.raises(AirflowFailException, match="was never released"):
        run_task(ecs_conn, job=ETL.name, image=NEW_IMAGE)
    assert f"Skipping revision {untagged}" in caplog.text and f"not tagged {JOB_TAG_KEY}=etl-step" in caplog.text
    ecs.deregister_task_definition(taskDefinition=untagged)  # a release copies no untagged revision (test_job_release)
    release = _released(ecs_conn, NEW_IMAGE)
    later = _register_untagged(ecs, NEW_IMAGE)
    assert latest_revision(ecs, FAMILY)["taskDefinitionArn"] == later, "precondition: the untagged one is latest"
    task = run_task(ecs_conn, job=ETL.name, image=NEW_IMAGE)
    assert task["taskDefinitionArn"] == release.task_definition_arn
    assert run_task(ecs_conn, run_id="manual__2", job=ETL.name)["taskDefinitionArn"] == release.task_definition_arn


def _register_untagged(ecs, image: str) -> str:
    """A copy of the family's latest revision with ``image``, registered without tags (as an admin could)."""
    latest = latest_revision(ecs, FAMILY)
    copy = {k: latest[k] for k in ("family", "taskRoleArn", "executionRoleArn", "networkMode", "cpu", "memory",
                                   "requiresCompatibilities")}  # fmt: skip
    containers = [{**c, "image": image} if c["name"] == CONTAINER else c for c in latest["containerDefinitions"]]
    return ecs.register_task_definition(**copy, containerDefinitions=containers)["taskDefinition"]["taskDefinitionArn"]


def test_a_given_revision_runs_that_revision_not_the_familys_latest(ecs_conn):
    first = f"{FAMILY}:1"
    task = run_task(ecs_conn, task_definition=first)
    assert task["taskDefinitionArn"].endswith(f":task-definition/{first}")
    arn = task["taskDefinitionArn"]
    assert run_task(ecs_conn, run_id="manual__2", task_definition=arn)["taskDefinitionArn"] == arn


def test_a_job_runs_the_last_release_before_its_run_started_without_a_triggering_event(ecs_conn):
    task = run_task(ecs_conn, job=ETL.name)
    assert task["taskDefinitionArn"] == ecs_conn.seeded.task_definitions[ETL.name]
    assert ran_image(ecs_conn, task) == ecs_conn.seeded.released[ETL.name]


def _released(emulator, image: str, sha: str = SHA) -> Release:
    """A release of etl-step as the release command makes it: its revision registered (tagged with the job), its
    event's payload."""
    from eksflow.revisions import revision_with_image

    revision = revision_with_image(emulator.client("ecs"), ETL, ENV, image, tags={JOB_TAG_KEY: ETL.name})
    return Release(ENV, ETL.name, image, sha, sha, revision.arn)


def test_without_a_triggering_release_every_step_of_a_run_runs_the_revision_released_before_it_started(ecs_conn):
    """A daily or manual run: a release lands after its first step; a retry of that step, another map index and the
    merge step still run the revision of the run's start, a run started after the release runs the new one."""
    ecs = ecs_conn.client("ecs")
    before = ecs_conn.seeded.task_definitions[ETL.name]
    started = registered_at(ecs, before)  # at or before: a revision registered as the run started is the run's
    first = run_task(ecs_conn, job=ETL.name, started=started, map_index=0)
    release = _released(ecs_conn, NEW_IMAGE)
    assert registered_at(ecs, release.task_definition_arn) > started, "precondition: released after the run started"
    assert latest_revision(ecs, FAMILY)["taskDefinitionArn"] == release.task_definition_arn
    retry, other_index = (run_task(ecs_conn, job=ETL.name, started=started, map_index=index) for index in (0, 1))
    merge = run_task(ecs_conn, job=ETL.name, started=started)
    assert [t["taskDefinitionArn"] for t in (first, retry, other_index, merge)] == [before] * 4
    assert {ran_image(ecs_conn, t) for t in (first, retry, other_index, merge)} == {ecs_conn.seeded.released[ETL.name]}
    next_run = run_task(
        ecs_conn, run_id="manual__2", job=ETL.name, started=registered_at(ecs, release.task_definition_arn)
    )
    assert next_run["taskDefinitionArn"] == release.task_definition_arn
    assert ran_image(ecs_conn, next_run) == NEW_IMAGE


def test_the_revision_of_a_runs_start_is_found_past_a_full_page_of_later_releases(ecs_conn):
    ecs = ecs_conn.client("ecs")
    before = ecs_conn.seeded.task_definitions[ETL.name]
    started = registered_at(ecs, before)
    for index in range(100):  # ListTaskDefinitions answers at most 100 revisions per page
        _released(ecs_conn, f"{REGISTRY}/{ETL.repository(ENV)}@sha256:{index + 1:064x}", sha=f"{index:040x}")
    assert run_task(ecs_conn, job=ETL.name, started=started)["taskDefinitionArn"] == before


def test_a_run_started_before_the_familys_first_revision_fails_for_good_naming_the_family_and_the_fix(ecs_conn):
    ecs = ecs_conn.client("ecs")
    started = registered_at(ecs, f"{FAMILY}:1") - dt.timedelta(seconds=1)
    with pytest.raises(AirflowFailException) as failed:
        run_task(ecs_conn, job=ETL.name, started=started)
    message = str(failed.value)
    assert f"family {FAMILY} has no trusted ACTIVE revision registered at or before this run started" in message, (
        message
    )
    assert "release job 'etl-step'" in message and "`eksflow job release`" in message, message
    assert ecs.list_tasks(cluster="eksflow-local-batch")["taskArns"] == []


def test_a_run_without_a_start_time_fails_naming_it_before_any_aws_call(ecs_conn):
    control(ecs_conn.url, "stats/reset", "")
    with pytest.raises(AirflowFailException, match=r"dag_run\.start_date"):
        run_task(ecs_conn, job=ETL.name, _context={"dag_run": started_run("manual__1", None)})
    assert control(ecs_conn.url, "stats")["calls"] == {}


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


def test_a_retry_with_an_image_runs_its_released_revision_and_reattaches_to_the_running_task(tmp_path, monkeypatch):
    from eksflow_dev.local.emulator import running_emulator

    with running_emulator(tmp_path, {"EKSFLOW_EMULATOR_JOB_SECONDS": "120"}) as emulator:
        for key, value in local_connections(emulator.url, "eu-west-1").items():
            monkeypatch.setenv(key, value)
        release = _released(emulator, NEW_IMAGE)

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
        assert first[1] == release.task_definition_arn


def test_a_retry_reattaches_to_its_task_in_the_runs_revision_though_a_release_landed_in_between(tmp_path, monkeypatch):
    from eksflow_dev.local.emulator import running_emulator

    with running_emulator(tmp_path, {"EKSFLOW_EMULATOR_JOB_SECONDS": "120"}) as emulator:
        for key, value in local_connections(emulator.url, "eu-west-1").items():
            monkeypatch.setenv(key, value)
        ecs = emulator.client("ecs")
        started = registered_at(ecs, emulator.seeded.task_definitions[ETL.name])

        def try_once():
            op = kit.ecs_run_task(
                task_id="transform", cluster="eksflow-local-batch", job=ETL.name,
                overrides=kit.ecs_overrides(CONTAINER, command=["run"]),
                subnets=[emulator.seeded.settings_env["EKSFLOW_ECS_SUBNETS"]],
            )  # fmt: skip
            with pytest.raises(TaskDeferred) as deferred:  # the worker pod would exit here
                op.execute(context(started=started, task_id="transform"))
            return deferred.value.trigger.task_arn, op.task_definition

        first = try_once()
        _released(emulator, NEW_IMAGE)
        second = try_once()  # the worker pod was lost; Airflow retries the same task instance
        assert second == first
        assert first[1] == emulator.seeded.task_definitions[ETL.name]
        assert ecs.list_tasks(cluster="eksflow-local-batch")["taskArns"] == [first[0]]


FOREIGN_IMAGE = f"registry.attacker.example/{ETL.repository(ENV)}@sha256:{'f' * 64}"


def test_an_image_of_another_registry_named_like_the_jobs_repository_is_refused_before_any_aws_call(ecs_conn):
    with pytest.raises(kit.KitArgumentError, match=r"'image'.*registry\.attacker\.example"):
        kit.ecs_run_task(task_id="t", cluster="eksflow-local-batch", job=ETL.name, image=FOREIGN_IMAGE, subnets=["s"])


def test_a_triggering_release_whose_revision_runs_another_image_fails_for_good_naming_both(ecs_conn):
    """A forged or stale announcement (e.g. a rollback to an old revision ARN) cannot run another image."""
    seeded = ecs_conn.seeded.task_definitions[ETL.name]
    forged = Release(ENV, ETL.name, NEW_IMAGE, SHA, SHA, seeded)  # the seeded revision runs the seeded image
    with pytest.raises(AirflowFailException) as failed:
        run_task(
            ecs_conn, job=ETL.name, _context=triggered_by(release_event(forged, asset_uri=ETL.release_asset_uri(ENV)))
        )
    message = str(failed.value)
    assert seeded in message and NEW_IMAGE in message and ecs_conn.seeded.released[ETL.name] in message, message
    assert ecs_conn.client("ecs").list_tasks(cluster="eksflow-local-batch")["taskArns"] == []


def test_a_triggering_release_of_another_registry_fails_for_good_naming_the_image_field(ecs_conn):
    seeded = ecs_conn.seeded.task_definitions[ETL.name]
    foreign = Release(ENV, ETL.name, FOREIGN_IMAGE, SHA, SHA, seeded)
    with pytest.raises(AirflowFailException, match=r"field 'image' is in registry 'registry\.attacker\.example'"):
        run_task(
            ecs_conn, job=ETL.name, _context=triggered_by(release_event(foreign, asset_uri=ETL.release_asset_uri(ENV)))
        )


def test_a_triggering_release_announcing_an_untagged_revision_fails_for_good_naming_the_tag(ecs_conn):
    """A forged announcement of a revision with the announced image that no release registered (untagged): nothing
    runs (ecs-runner could not run it either), and the failure names the missing tag."""
    untagged = _register_untagged(ecs_conn.client("ecs"), NEW_IMAGE)
    forged = Release(ENV, ETL.name, NEW_IMAGE, SHA, SHA, untagged)
    with pytest.raises(AirflowFailException) as failed:
        run_task(
            ecs_conn, job=ETL.name, _context=triggered_by(release_event(forged, asset_uri=ETL.release_asset_uri(ENV)))
        )
    message = str(failed.value)
    assert untagged in message and f"it is not tagged {JOB_TAG_KEY}={ETL.name}" in message, message
    assert ecs_conn.client("ecs").list_tasks(cluster="eksflow-local-batch")["taskArns"] == []


def _hostile_revisions(ecs) -> list[str]:
    """Revisions of the job's family someone with RegisterTaskDefinition (not ecs-runner any more) could register:
    a sidecar from another registry, and the job's container under another task role — tagged with the job, as a
    release role could tag them: the content checks (defence in depth) still skip them."""
    latest = latest_revision(ecs, FAMILY)
    base = {k: latest[k] for k in ("family", "taskRoleArn", "executionRoleArn", "networkMode", "cpu", "memory",
                                   "requiresCompatibilities")}  # fmt: skip
    containers = [{**c, "image": NEW_IMAGE} if c["name"] == CONTAINER else c for c in latest["containerDefinitions"]]
    sidecar = {"name": "sidecar", "image": f"registry.attacker.example/miner@sha256:{'a' * 64}", "essential": False}
    with_sidecar = {**base, "containerDefinitions": [*containers, sidecar]}
    other_role = {**base, "containerDefinitions": containers,
                  "taskRoleArn": "arn:aws:iam::123456789012:role/eksflow-local-job-other"}  # fmt: skip
    tags = [{"key": JOB_TAG_KEY, "value": ETL.name}]
    return [
        ecs.register_task_definition(**r, tags=tags)["taskDefinition"]["taskDefinitionArn"]
        for r in (with_sidecar, other_role)
    ]


def test_a_tagged_revision_with_another_container_or_role_is_skipped_by_job_and_image_runs(ecs_conn, caplog):
    ecs = ecs_conn.client("ecs")
    released = ecs_conn.seeded.task_definitions[ETL.name]
    hostile = _hostile_revisions(ecs)
    assert latest_revision(ecs, FAMILY)["taskDefinitionArn"] == hostile[-1], "precondition: a hostile one is latest"
    task = run_task(ecs_conn, job=ETL.name)
    assert task["taskDefinitionArn"] == released
    assert all(f"Skipping revision {arn}" in caplog.text for arn in hostile), caplog.text
    with pytest.raises(AirflowFailException, match="was never released"):
        run_task(ecs_conn, run_id="manual__2", job=ETL.name, image=NEW_IMAGE)
    assert ecs.list_tasks(cluster="eksflow-local-batch")["taskArns"] == [task["taskArn"]]

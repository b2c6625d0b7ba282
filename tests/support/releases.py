"""Job releases in tests: built images (OCI layouts, as `docker buildx --output type=oci` writes them), the release
command run as CI runs it, what a release left in ECS and on the release queue, and the Asset events a release
makes (the triggering events of a DAG run's context)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import tarfile
from pathlib import Path

from eksflow.jobs import get_job, release_queue_name
from eksflow.releases import Release, ecr_registry
from eksflow_dev.emulator.seed import ACCOUNT_ID
from eksflow_dev.local.offline import REGION
from eksflow_dev.oci_layout import write_layout
from tests.support.ecr import REVISION_LABEL, aws_env

ENV = "local"  # the seeded emulator's environment
REGISTRY = ecr_registry(ACCOUNT_ID, REGION)  # the seeded emulator's: the platform's registry in the tests

# Fields DescribeTaskDefinition sets per revision (not copied by a release).
PER_REVISION = frozenset({"taskDefinitionArn", "revision", "registeredAt", "registeredBy", "deregisteredAt", "status"})


def release(job: str, n: int, env: str = ENV, *, registry: str = REGISTRY) -> Release:
    """Release number ``n`` of ``job``: image digest, commit and (an ecs job's) task-definition revision all ``n``."""
    definition = get_job(job)
    return Release(
        env=env,
        job=job,
        image=f"{registry}/{definition.repository(env)}@sha256:{n:064x}",
        git_sha=f"{n:040x}",
        tag=f"v{n}",
        task_definition_arn=(
            f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:task-definition/{definition.ecs_family(env)}:{n}"
            if definition.runs_on == "ecs"
            else ""
        ),
    )


def built_image(path: Path, git_sha: str, content: bytes = b"", *, tar: bool = False) -> Path:
    """An image built from ``git_sha`` (its revision label), as an OCI layout folder, or a tar of one."""
    folder = write_layout(path, {REVISION_LABEL: git_sha}, (content or f"built from {git_sha}".encode(),))
    if not tar:
        return folder
    archive = path.with_suffix(".tar")
    with tarfile.open(archive, "w") as out:
        for item in sorted(folder.rglob("*")):
            if item.is_file():
                out.add(item, arcname=item.relative_to(folder).as_posix())
    return archive


def eksflow(emulator_url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The CLI as the release workflow runs it, with the emulator's AWS environment."""
    command = [sys.executable, "-m", "eksflow.cli", *args]
    full_env = {**aws_env(emulator_url), **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=full_env)


def release_job(emulator_url: str, job: str, image: Path, git_sha: str, *extra: str, env=None):
    return eksflow(
        emulator_url, "job", "release", "--env", ENV, "--job", job, "--image", str(image), "--git-sha", git_sha,
        *extra, env=env,
    )  # fmt: skip


def latest_revision(ecs, family: str) -> dict:
    return ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]


def without_image(definition: dict, container: str) -> dict:
    """A revision's definition without what differs per revision and without the container's image."""
    kept = {key: value for key, value in definition.items() if key not in PER_REVISION}
    kept["containerDefinitions"] = [
        {k: v for k, v in c.items() if not (c["name"] == container and k == "image")}
        for c in kept["containerDefinitions"]
    ]
    return kept


def container_image(definition: dict, container: str) -> str:
    (found,) = [c["image"] for c in definition["containerDefinitions"] if c["name"] == container]
    return found


def release_messages(sqs) -> list[str]:
    """The bodies on the release queue (received and left there: their visibility times out)."""
    url = sqs.get_queue_url(QueueName=release_queue_name(ENV))["QueueUrl"]
    bodies: list[str] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300).get("Messages", [])
        if not batch:
            return bodies
        bodies += [message["Body"] for message in batch]


def release_event(release_or_extra, *, asset_uri: str, minutes_ago: int = 0, from_trigger: bool = True):
    """An event of a release Asset as a DAG run's context carries it: a watcher's (``extra={"from_trigger": True,
    "payload": ...}``, airflow/models/trigger.py submit_event) or the payload itself."""
    from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult

    payload = release_or_extra.to_payload() if isinstance(release_or_extra, Release) else release_or_extra
    extra = {"from_trigger": True, "payload": payload} if from_trigger else payload
    name = "job_release__" + asset_uri.rsplit("/", 1)[-1].replace("-", "_")
    return AssetEventDagRunReferenceResult(
        asset={"name": name, "uri": asset_uri, "extra": {}},
        extra=extra,
        source_task_id=None,
        source_dag_id=None,
        source_run_id=None,
        source_map_index=None,
        source_aliases=[],
        timestamp=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago),
    )


def triggered_by(*events) -> dict:
    """The ``triggering_asset_events`` of a DAG run's context (Airflow's own accessor)."""
    from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor

    return {"triggering_asset_events": TriggeringAssetEventsAccessor.build(events)}


def started_run(run_id: str, started: dt.datetime | None):
    """The ``dag_run`` of a task's context (the Task SDK's model, as the execution API sends it): a manual run the
    scheduler started at ``started`` (None: not started)."""
    from airflow.sdk.api.datamodels._generated import DagRun, DagRunState, DagRunType

    return DagRun(
        dag_id="batch_data_pipeline", run_id=run_id, logical_date=None, data_interval_start=None,
        data_interval_end=None, run_after=started or dt.datetime.now(dt.UTC), start_date=started, end_date=None,
        run_type=DagRunType.MANUAL, state=DagRunState.RUNNING, consumed_asset_events=[], partition_key=None,
    )  # fmt: skip


def registered_at(ecs, revision_arn: str) -> dt.datetime:
    """When ECS registered a revision (DescribeTaskDefinition's registeredAt)."""
    return ecs.describe_task_definition(taskDefinition=revision_arn)["taskDefinition"]["registeredAt"]


def release_consumer_dags(root: Path) -> Path:
    """A DAGs folder under ``root`` holding tests/event_dags/release_consumers.py (DAGs scheduled on job releases)."""
    import shutil

    dags = root / "dags"
    dags.mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "event_dags" / "release_consumers.py", dags)
    return dags


def queue_counts(sqs, url: str) -> dict[str, int]:
    """Messages on a queue: visible, and in flight (received, not yet deleted or put back)."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return {name: int(attributes[name]) for name in names}

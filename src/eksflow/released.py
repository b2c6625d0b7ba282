"""What a job repository released, as a DAG run finds it: the triggering release event of the run, else what ECR and
ECS hold.

A release (``eksflow job release``, eksflow.releases) updates the job's release Asset (``eksflow.assets.job_release``)
through the release queue's AssetWatcher. Airflow records a watcher's event with
``extra={"from_trigger": True, "payload": <the trigger event's payload>}`` (airflow/models/trigger.py, submit_event);
the payload is the release message's payload (``Release.to_payload()``, or its JSON text). An event made another way
(the REST API, an outlet) carries the payload itself as its ``extra``. A run scheduled on the Asset sees the events
that triggered it in ``context["triggering_asset_events"]``; when several releases of the job queued up, the newest
one is run. Without such an event (a scheduled or manual run), the released revision of an ecs job is the newest
ACTIVE revision of its family registered at or before the DAG run started (each release registers one): the same for
every step of the run, whenever it runs — a release landing mid-run reaches the next run. The released image of a
job is the newest image in its repository tagged with a git commit SHA (the release workflow's tag).

The run's start is ``dag_run.start_date`` of the task's context: Airflow sets it when the scheduler moves the run to
running (also for a manual run; `airflow dags test` and `airflow tasks test` set it when they make their run) and
leaves it alone for task retries and for tasks cleared while the run is running (airflow/models/dagrun.py
``set_state``, taskinstance.py ``clear_task_instances``); clearing tasks of a finished run starts the run again, with
a new start.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eksflow.jobs import get_job
from eksflow.releases import Release, ReleaseMessageError, ecr_registry, release_from_payload

GIT_SHA_TAG = re.compile(r"^[0-9a-f]{40}$")


class NotARelease(ValueError):
    """A triggering event of a release Asset does not carry a release (names the field): the run cannot know what was
    released, and a retry would not either."""


class RunNotStarted(ValueError):
    """The task's DAG run has no start time: the run's revision cannot be told (names the field)."""


class NoRevisionBeforeRun(LookupError):
    """The job's family has no ACTIVE revision registered at or before the DAG run started (names family and fix)."""


# What the resolution calls on AWS: the runner role of the job's kind needs exactly this on the job's repository.
DESCRIBE_IMAGES = "ecr:DescribeImages"


def release_from_event_extra(extra: Any, *, env: str, job: str, registry: str | None = None) -> Release:
    """The release an Asset event's ``extra`` carries (a watcher's event or the payload itself), of ``job`` in
    ``env`` (with an image of ``registry``, the platform's ECR registry); ReleaseMessageError naming the field
    otherwise."""
    payload = extra.get("payload") if isinstance(extra, Mapping) and extra.get("from_trigger") else extra
    release = release_from_payload(payload, env=env, registry=registry)
    if release.job != job:
        raise ReleaseMessageError("job", f"is {release.job!r}, but this is job {job!r}'s release Asset")
    return release


def triggering_release(
    context: Mapping[str, Any], *, job: str, env: str, registry: str | None = None
) -> Release | None:
    """The newest release of ``job`` among the events of its release Asset that triggered this DAG run; None when the
    run was not triggered by one (a manual or time-scheduled run). ``registry``: the platform's ECR registry."""
    uri = get_job(job).release_asset_uri(env)
    events = context.get("triggering_asset_events") or {}
    found = [event for asset in events if getattr(asset, "uri", None) == uri for event in events[asset]]
    if not found:
        return None
    newest = max(found, key=lambda event: event.timestamp)
    try:
        return release_from_event_extra(newest.extra, env=env, job=job, registry=registry)
    except ReleaseMessageError as error:
        raise NotARelease(
            f"the event of {uri} that triggered this run ({newest.timestamp}) is no release: {error}"
        ) from None


def run_started_at(context: Mapping[str, Any]) -> dt.datetime:
    """When this task's DAG run started (``dag_run.start_date``); RunNotStarted naming it when the run has none."""
    started = getattr(context.get("dag_run"), "start_date", None)
    if started is None:
        raise RunNotStarted(
            "the DAG run has no start time (dag_run.start_date is not set): run the task in a DAG run the scheduler "
            "started, or with `airflow dags test` / `airflow tasks test`"
        )
    return started


@dataclass(frozen=True)
class RunRevision:
    arn: str
    registered_at: dt.datetime


def revision_at_start(ecs, *, job: str, env: str, started: dt.datetime, registry: str) -> RunRevision:
    """The newest trusted ACTIVE revision of ``job``'s family registered at or before ``started``
    (ecs:ListTaskDefinitions, newest first, page by page; ecs:DescribeTaskDefinition of each revision until one is
    old enough: usually one). A revision the platform did not make (eksflow.revisions.untrusted_revision_problem:
    another container, image or role) is skipped with a warning naming it."""
    from eksflow.revisions import trusted_revisions

    spec = get_job(job)
    for definition in trusted_revisions(ecs, job=spec, env=env, registry=registry):
        if definition["registeredAt"] <= started:
            return RunRevision(definition["taskDefinitionArn"], definition["registeredAt"])
    raise NoRevisionBeforeRun(
        f"family {spec.ecs_family(env)} has no trusted ACTIVE revision registered at or before this run started "
        f"({started.isoformat()}): release job {job!r} (its repository's release workflow runs `eksflow job "
        "release`), then start a new run"
    )


@dataclass(frozen=True)
class ReleasedImage:
    image: str  # <registry>/<repository>@sha256:<hex>
    source: str  # where it was found, for the task log

    def __str__(self) -> str:
        return f"{self.image} ({self.source})"


def newest_released_image(ecr, *, job: str, env: str, region: str) -> ReleasedImage:
    """The newest image of ``job``'s repository with a git-SHA tag (ecr:DescribeImages), pinned by digest."""
    repository = get_job(job).repository(env)
    newest: tuple[dict, str] | None = None
    for page in ecr.get_paginator("describe_images").paginate(
        repositoryName=repository, filter={"tagStatus": "TAGGED"}
    ):
        for detail in page.get("imageDetails", []):
            shas = sorted(tag for tag in detail.get("imageTags", []) if GIT_SHA_TAG.match(tag))
            if shas and (newest is None or detail["imagePushedAt"] > newest[0]["imagePushedAt"]):
                newest = (detail, shas[0])
    if newest is None:
        raise LookupError(
            f"no released image of job {job!r} in ECR repository {repository} (none is tagged with a git commit "
            "SHA): release one from the job's repository (its release workflow runs `eksflow job release`)"
        )
    detail, tag = newest
    image = f"{ecr_registry(detail['registryId'], region)}/{repository}@{detail['imageDigest']}"
    return ReleasedImage(image, f"newest git-SHA tag {tag} of {repository}, pushed {detail['imagePushedAt']}")


def released_image(
    context: Mapping[str, Any], ecr, *, job: str, env: str, region: str, registry: str | None = None
) -> ReleasedImage:
    """The image of ``job`` this run uses: its triggering release event's (an image of ``registry``, the platform's
    ECR registry, whose digest its repository holds: ecr:DescribeImages), else the newest released one."""
    release = triggering_release(context, job=job, env=env, registry=registry)
    if release is not None:
        repository = get_job(job).repository(env)
        try:
            ecr.describe_images(repositoryName=repository, imageIds=[{"imageDigest": release.digest}])
        except ecr.exceptions.ImageNotFoundException:
            raise NotARelease(
                f"the triggering release of job {job!r} names image {release.image}, but ECR repository {repository} "
                f"holds no image {release.digest}: the announcement is forged or stale; release the job again"
            ) from None
        return ReleasedImage(release.image, f"the triggering release of commit {release.git_sha}")
    return newest_released_image(ecr, job=job, env=env, region=region)

"""Task-definition revisions pinned by an image digest, and the revisions of a job the platform made.

A release (``eksflow job release``, a job repository's workflow, eksflow_dev.job_release) registers the revision of
the job's family that runs its image: RunTask cannot override a container's image, so running a new image means a
new revision — a copy of the family's latest ACTIVE revision with exactly one change, the job's container's
``image``, tagged with the family's tags and ``eksflow.jobs.JOB_TAG_KEY`` = the job (a job's release role may register
only so; Terraform's family, tracking the latest revision, keeps its tags). When the latest revision already runs that
image and carries those tags it is reused (a retry of the release: no revision per call). The copy carries every
field RegisterTaskDefinition takes (botocore's model of the call, so a field ECS adds later is copied too) but the
tags: tags are no part of the definition.

The kit registers nothing: ecs-runner may run only revisions tagged with their family's job (IAM, aws:ResourceTag on
RunTask), and picks among those (:func:`trusted_revisions`) — for ``image=``, the newest whose job container runs
exactly that image (:func:`revision_running`) — keeping the content checks of :func:`untrusted_revision_problem` as
defence in depth (docs/security.md).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Read-only fields DescribeTaskDefinition returns that RegisterTaskDefinition does not take (taskDefinitionArn,
# revision, status, compatibilities, requiresAttributes, registeredAt/By, ...) fall out by the model; tags too.
NOT_COPIED = frozenset({"tags"})


class RevisionError(RuntimeError):
    """The family cannot take the image (no such container): names the family, the container and the fix."""


@dataclass(frozen=True)
class Revision:
    arn: str
    image: str
    registered: bool  # False: the family's latest ACTIVE revision already ran exactly this image

    @property
    def family_revision(self) -> str:
        """``family:N``."""
        return self.arn.rsplit("/", 1)[-1]


def register_fields(ecs) -> frozenset[str]:
    """The request fields of RegisterTaskDefinition in the client's own API model."""
    members = ecs.meta.service_model.operation_model("RegisterTaskDefinition").input_shape.members
    return frozenset(members) - NOT_COPIED


def untrusted_revision_problem(
    definition: dict, tags: list[dict] | None, *, job, env: str, registry: str
) -> str | None:
    """Why a revision of ``job``'s family is not one the platform made (None when it is): it is tagged
    ``JOB_TAG_KEY`` = the job (``tags``: DescribeTaskDefinition's with include=["TAGS"]; only the job's release role
    and Terraform tag so, and ecs-runner runs nothing else), its only container is the job's, running an image pinned
    by digest in the job's repository of the platform's ECR ``registry``, and it runs as the job's task role with the
    platform's execution role (of the revision's own account). The tag is what IAM enforces; the content checks are
    defence in depth (a release role registers what its job's workflow builds: docs/security.md)."""
    from eksflow.releases import pinned_image

    problem = unreleased_revision_problem(definition, tags, job=job, env=env)
    if problem:
        return problem
    names = [c.get("name") for c in definition.get("containerDefinitions") or []]
    if names != [job.container]:
        return f"its containers are {names!r}, job {job.name!r}'s revisions have only {job.container!r}"
    (only,) = definition["containerDefinitions"]
    pinned = pinned_image(only.get("image"))
    if pinned is None or pinned.registry != registry or pinned.repository != job.repository(env):
        return (
            f"container {job.container!r} runs {only.get('image')!r}, not an image pinned by digest in "
            f"{registry}/{job.repository(env)}"
        )
    return None


def unreleased_revision_problem(definition: dict, tags: list[dict] | None, *, job, env: str) -> str | None:
    """Why a revision of ``job``'s family is not Terraform's or a release's (None when it is): it must be tagged
    ``JOB_TAG_KEY`` = the job (only they tag so) and run as the job's task role with the platform's execution role
    (of the revision's own account). What a release copies (any containers: a sidecar of Terraform's stays)."""
    from eksflow.jobs import JOB_TAG_KEY, ecs_execution_role_name

    tagged = [tag.get("value") for tag in tags or [] if tag.get("key") == JOB_TAG_KEY]
    if tagged != [job.name]:
        return (
            f"it is not tagged {JOB_TAG_KEY}={job.name} (its {JOB_TAG_KEY} tags: {tagged!r}): only a release of the "
            "job (`eksflow job release`) and Terraform register runnable revisions"
        )
    arn = definition.get("taskDefinitionArn", "")
    parts = arn.split(":")
    if len(parts) < 6:
        return f"its ARN {arn!r} is no task-definition ARN"
    role_prefix = f"arn:{parts[1]}:iam::{parts[4]}:role/"
    for field, expected in (
        ("taskRoleArn", role_prefix + job.task_role_name(env)),
        ("executionRoleArn", role_prefix + ecs_execution_role_name(env)),
    ):
        if definition.get(field) != expected:
            return f"its {field} is {definition.get(field)!r}, not {expected!r}"
    return None


def trusted_revisions(ecs, *, job, env: str, registry: str) -> Iterator[dict]:
    """The ACTIVE revisions of ``job``'s family that pass :func:`untrusted_revision_problem`, newest first
    (ecs:ListTaskDefinitions, ecs:DescribeTaskDefinition with its tags); each other one is skipped with a warning
    naming it."""
    family = job.ecs_family(env)
    pages = ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family, status="ACTIVE", sort="DESC")
    for page in pages:
        for arn in page.get("taskDefinitionArns", []):
            if arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] != family:
                continue  # familyPrefix is a prefix: eksflow-dev-etl-step-x is another family
            described = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
            definition = described["taskDefinition"]
            problem = untrusted_revision_problem(definition, described.get("tags"), job=job, env=env, registry=registry)
            if problem:
                log.warning("Skipping revision %s of %s: not one the platform made (%s)", arn, family, problem)
                continue
            yield definition


def container_image(definition: dict, container: str) -> str | None:
    """The image ``container`` of a revision runs (None when it has no such container)."""
    found = [c.get("image") for c in definition.get("containerDefinitions") or [] if c.get("name") == container]
    return found[0] if len(found) == 1 else None


def revision_running(ecs, *, job, env: str, registry: str, image: str) -> dict | None:
    """The newest trusted ACTIVE revision of ``job``'s family whose job container runs exactly ``image`` (a release
    of that image registered it), or None."""
    for definition in trusted_revisions(ecs, job=job, env=env, registry=registry):
        if container_image(definition, job.container) == image:
            return definition
    return None


def revision_with_image(ecs, job, env: str, image: str, *, tags: Mapping[str, str]) -> Revision:
    """The revision of ``job``'s family whose job container runs ``image`` (pinned by digest), tagged with the
    family's latest revision's tags and ``tags`` (a release's: ``JOB_TAG_KEY`` = its job): the family's latest ACTIVE
    revision when it already runs the image with those tags, else a new one registered as a copy of it with only that
    image replaced. The latest revision is copied only when Terraform or a release made it
    (:func:`unreleased_revision_problem`: tagged with the job, the job's roles) — a revision someone else registered
    is never blessed with the job's tag by a release. ``ecs``: a boto3 ECS client
    (ecs:DescribeTaskDefinition, ecs:RegisterTaskDefinition, ecs:TagResource on create, iam:PassRole of the revision's
    task and execution roles: a job's release role)."""
    family, container = job.ecs_family(env), job.container
    described = ecs.describe_task_definition(taskDefinition=family, include=["TAGS"])
    latest = described["taskDefinition"]
    latest_tags = {tag["key"]: tag["value"] for tag in described.get("tags") or []}
    containers = latest.get("containerDefinitions") or []
    names = [definition.get("name") for definition in containers]
    problem = unreleased_revision_problem(latest, described.get("tags"), job=job, env=env)
    if problem:
        arn = latest["taskDefinitionArn"]
        raise RevisionError(
            f"the latest ACTIVE revision of family {family}, {arn}, which a release copies, is not one the platform "
            f"made: {problem}. Deregister it (`aws ecs deregister-task-definition --task-definition {arn}`) and "
            "release again (docs/upgrade.md)"
        )
    if container not in names:
        raise RevisionError(
            f"task definition {latest['taskDefinitionArn']} has no container {container!r} (its containers: "
            f"{', '.join(map(repr, names)) or 'none'}): the job's container is the one whose image a release "
            "replaces (eksflow.jobs), name it so in the family's task definition (Terraform)"
        )
    (current,) = [definition for definition in containers if definition.get("name") == container]
    merged = latest_tags | dict(tags)
    if current.get("image") == image and merged == latest_tags:
        return Revision(latest["taskDefinitionArn"], image, registered=False)
    fields = register_fields(ecs)
    request = {key: value for key, value in latest.items() if key in fields}
    request["containerDefinitions"] = [
        {**definition, "image": image} if definition.get("name") == container else definition
        for definition in containers
    ]
    request["tags"] = [{"key": key, "value": value} for key, value in sorted(merged.items())]
    registered = ecs.register_task_definition(**request)["taskDefinition"]
    return Revision(registered["taskDefinitionArn"], image, registered=True)

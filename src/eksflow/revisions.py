"""Task-definition revisions pinned by an image digest: the one home of the step both the release command (``eksflow
job release``, a job repository's workflow) and the kit (``ecs_run_task(image=...)``, in a worker pod) take.

RunTask cannot override a container's image, so running a new image means a new revision of the family: a copy of
the family's latest ACTIVE revision with exactly one change, the job's container's ``image``. When the latest
revision already runs that image it is reused (a retry, a re-run, a second DAG run: no revision per call). The
copy carries every field RegisterTaskDefinition takes (botocore's model of the call, so a field ECS adds later is
copied too) but the tags: tags are no part of the definition. A release (``tags=``) tags its revision with the family's
tags and its own (a job's release role may register only revisions tagged with its job, ``eksflow.jobs.JOB_TAG_KEY``;
Terraform's family, tracking the latest revision, keeps its tags); the kit registers untagged revisions (ecs-runner
may not tag).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
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


def untrusted_revision_problem(definition: dict, *, job, env: str, registry: str, image: bool = True) -> str | None:
    """Why a revision of ``job``'s family is not one the platform made (None when it is): its only container is the
    job's, running an image pinned by digest in the job's repository of the platform's ECR ``registry``, and it runs
    as the job's task role with the platform's execution role (of the revision's own account). ecs-runner may
    RegisterTaskDefinition on any family (IAM cannot scope it), so a revision is trusted by what it is, not by being
    the newest (docs/security.md)."""
    from eksflow.jobs import ecs_execution_role_name
    from eksflow.releases import pinned_image

    arn = definition.get("taskDefinitionArn", "")
    parts = arn.split(":")
    if len(parts) < 6:
        return f"its ARN {arn!r} is no task-definition ARN"
    role_prefix = f"arn:{parts[1]}:iam::{parts[4]}:role/"
    names = [c.get("name") for c in definition.get("containerDefinitions") or []]
    if names != [job.container]:
        return f"its containers are {names!r}, job {job.name!r}'s revisions have only {job.container!r}"
    (only,) = definition["containerDefinitions"]
    pinned = pinned_image(only.get("image"))
    if image and (pinned is None or pinned.registry != registry or pinned.repository != job.repository(env)):
        return (
            f"container {job.container!r} runs {only.get('image')!r}, not an image pinned by digest in "
            f"{registry}/{job.repository(env)}"
        )
    for field, expected in (
        ("taskRoleArn", role_prefix + job.task_role_name(env)),
        ("executionRoleArn", role_prefix + ecs_execution_role_name(env)),
    ):
        if definition.get(field) != expected:
            return f"its {field} is {definition.get(field)!r}, not {expected!r}"
    return None


def trusted_revisions(ecs, *, job, env: str, registry: str, image: bool = True) -> Iterator[dict]:
    """The ACTIVE revisions of ``job``'s family that pass :func:`untrusted_revision_problem`, newest first
    (ecs:ListTaskDefinitions, ecs:DescribeTaskDefinition); each other one is skipped with a warning naming it."""
    family = job.ecs_family(env)
    pages = ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family, status="ACTIVE", sort="DESC")
    for page in pages:
        for arn in page.get("taskDefinitionArns", []):
            if arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] != family:
                continue  # familyPrefix is a prefix: eksflow-dev-etl-step-x is another family
            definition = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
            problem = untrusted_revision_problem(definition, job=job, env=env, registry=registry, image=image)
            if problem:
                log.warning("Skipping revision %s of %s: not one the platform made (%s)", arn, family, problem)
                continue
            yield definition


def revision_with_image(
    ecs,
    family: str,
    container: str,
    image: str,
    *,
    base: Callable[[], dict] | None = None,
    tags: Mapping[str, str] | None = None,
) -> Revision:
    """The revision of ``family`` whose ``container`` runs ``image`` (pinned by digest): its latest ACTIVE revision
    when that already runs the image, else a new one registered as a copy of it with only that image replaced.
    ``base``: the revision to start from instead of the latest (e.g. the newest trusted one, :func:`trusted_base`).
    ``ecs``: a boto3 ECS client (ecs:DescribeTaskDefinition, ecs:RegisterTaskDefinition, iam:PassRole of the
    revision's task and execution roles). ``tags``: register the copy with the family's latest revision's tags and
    these (ecs:TagResource on create: a release's; the kit registers untagged)."""
    described = (
        ecs.describe_task_definition(taskDefinition=family, **({"include": ["TAGS"]} if tags else {}))
        if tags or not base
        else {}
    )
    latest = base() if base else described["taskDefinition"]
    containers = latest.get("containerDefinitions") or []
    names = [definition.get("name") for definition in containers]
    if container not in names:
        raise RevisionError(
            f"task definition {latest['taskDefinitionArn']} has no container {container!r} (its containers: "
            f"{', '.join(map(repr, names)) or 'none'}): the job's container is the one whose image a release "
            "replaces (eksflow.jobs), name it so in the family's task definition (Terraform)"
        )
    (current,) = [definition for definition in containers if definition.get("name") == container]
    if current.get("image") == image:
        return Revision(latest["taskDefinitionArn"], image, registered=False)
    fields = register_fields(ecs)
    request = {key: value for key, value in latest.items() if key in fields}
    request["containerDefinitions"] = [
        {**definition, "image": image} if definition.get("name") == container else definition
        for definition in containers
    ]
    if tags:
        merged = {tag["key"]: tag["value"] for tag in described.get("tags") or []} | dict(tags)
        request["tags"] = [{"key": key, "value": value} for key, value in sorted(merged.items())]
    registered = ecs.register_task_definition(**request)["taskDefinition"]
    return Revision(registered["taskDefinitionArn"], image, registered=True)


class NoTrustedRevision(RevisionError):
    """The job's family has no ACTIVE revision the platform made: names the family and the fix."""


def trusted_base(ecs, *, job, env: str, registry: str) -> Callable[[], dict]:
    """The ``base`` of :func:`revision_with_image` for ``job``: its family's newest trusted revision."""

    def newest() -> dict:
        for definition in trusted_revisions(ecs, job=job, env=env, registry=registry):
            return definition
        # The first release: no revision runs a released image yet; the family's first revision (a stand-in image)
        # is copied if it has the job's container alone and the job's roles (its image is what the copy replaces).
        for definition in trusted_revisions(ecs, job=job, env=env, registry=registry, image=False):
            log.warning("No revision of %s runs a released image yet: copying %s", job.ecs_family(env),
                        definition["taskDefinitionArn"])  # fmt: skip
            return definition
        raise NoTrustedRevision(
            f"family {job.ecs_family(env)} has no ACTIVE revision the platform made (its job container alone, an "
            f"image of {registry}/{job.repository(env)} pinned by digest, the job's task and execution roles): "
            "apply the platform's Terraform (it registers the family's first revision), then release the job"
        )

    return newest

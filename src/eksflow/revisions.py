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

from collections.abc import Mapping
from dataclasses import dataclass

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


def revision_with_image(
    ecs, family: str, container: str, image: str, *, tags: Mapping[str, str] | None = None
) -> Revision:
    """The revision of ``family`` whose ``container`` runs ``image`` (pinned by digest): its latest ACTIVE revision
    when that already runs the image, else a new one registered as a copy of it with only that image replaced.
    ``ecs``: a boto3 ECS client (ecs:DescribeTaskDefinition, ecs:RegisterTaskDefinition, iam:PassRole of the
    revision's task and execution roles). ``tags``: register the copy with the latest revision's tags and these
    (ecs:TagResource on create)."""
    described = ecs.describe_task_definition(taskDefinition=family, **({"include": ["TAGS"]} if tags else {}))
    latest = described["taskDefinition"]
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

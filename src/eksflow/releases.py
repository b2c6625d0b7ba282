"""A job release as the platform announces it: the message on the release queue and the payload of the Asset event.

The release command (``eksflow job release``, run by a job repository's workflow) builds it after the image is pushed
and, for an ecs job, its task-definition revision registered; the platform's AssetWatcher parses it back. One schema,
both ends: a message that does not parse is set aside, never half-read.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

from eksflow.jobs import get_job
from eksflow.platform import validate_env

KIND = "eksflow.job-release"
VERSION = 1

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_IMAGE_RE = re.compile(
    r"^(?P<registry>[a-z0-9.-]+(:[0-9]+)?)/(?P<repository>[a-z0-9._/-]+)@(?P<digest>sha256:[0-9a-f]{64})$"
)
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_TASK_DEFINITION_RE = re.compile(
    r"^arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:task-definition/(?P<family>[A-Za-z0-9_-]+):(?P<revision>[1-9][0-9]*)$"
)


# A release message is < 2 KiB; SQS carries up to 256 KiB, so a larger body is refused before it is parsed.
MAX_MESSAGE_BYTES = 16 * 1024


class ReleaseMessageError(ValueError):
    """A release message that is not one: names the field and what is wrong with it."""

    def __init__(self, field: str, problem: str):
        self.field = field
        super().__init__(f"release message field {field!r} {problem}")


@dataclass(frozen=True)
class Release:
    env: str
    job: str
    image: str  # <registry>/<repository>@sha256:<hex>: the pushed image, pinned by digest
    git_sha: str  # the job repository's commit the image was built from
    tag: str  # the immutable tag pushed with it
    task_definition_arn: str = ""  # ecs jobs: the revision registered with exactly this image

    @property
    def digest(self) -> str:
        return self.image.rsplit("@", 1)[1]

    @property
    def revision(self) -> int | None:
        match = _TASK_DEFINITION_RE.match(self.task_definition_arn)
        return int(match["revision"]) if match else None

    def to_payload(self) -> dict:
        return {"kind": KIND, "version": VERSION, **asdict(self)}

    def to_message(self) -> str:
        return json.dumps(self.to_payload(), sort_keys=True)


def release_from_payload(payload: object, *, env: str | None = None, registry: str | None = None) -> Release:
    """The release a message body (JSON text) or payload (dict) describes; ``env``: refuse another environment's;
    ``registry``: the platform's ECR registry (``ecr_registry(account, region)``): refuse an image of another one (a
    repository's name alone says nothing about whose registry holds it)."""
    if isinstance(payload, (str, bytes)):
        size = len(payload.encode() if isinstance(payload, str) else payload)
        if size > MAX_MESSAGE_BYTES:
            raise ReleaseMessageError(
                "body", f"is {size} bytes; a release message is at most {MAX_MESSAGE_BYTES} (MAX_MESSAGE_BYTES)"
            )
        try:
            payload = json.loads(payload)
        except RecursionError:
            raise ReleaseMessageError("body", "is JSON nested too deeply to decode") from None
        except Exception as error:  # any decode failure (ValueError, UnicodeDecodeError, ...) is the body's
            raise ReleaseMessageError("body", f"is not JSON ({error})") from None
    if not isinstance(payload, dict):
        raise ReleaseMessageError("body", f"must be a JSON object, got {type(payload).__name__}")
    if payload.get("kind") != KIND:
        raise ReleaseMessageError("kind", f"must be {KIND!r}, got {payload.get('kind')!r}")
    if payload.get("version") != VERSION:
        raise ReleaseMessageError("version", f"must be {VERSION}, got {payload.get('version')!r}")
    fields = {}
    for name in ("env", "job", "image", "git_sha", "tag", "task_definition_arn"):
        value = payload.get(name, "" if name == "task_definition_arn" else None)
        if not isinstance(value, str):
            raise ReleaseMessageError(name, f"must be a string, got {value!r}")
        fields[name] = value
    for name, check in (("env", validate_env), ("job", get_job)):
        try:
            check(fields[name])
        except ValueError as error:
            raise ReleaseMessageError(name, f"is invalid: {error}") from None
    job = get_job(fields["job"])
    if env is not None and fields["env"] != env:
        raise ReleaseMessageError("env", f"is {fields['env']!r}, but this is environment {env!r}")
    image = _IMAGE_RE.match(fields["image"])
    if not image:
        raise ReleaseMessageError("image", f"must be <registry>/<repository>@sha256:<64 hex>, got {fields['image']!r}")
    if registry is not None and image["registry"] != registry:
        raise ReleaseMessageError(
            "image", f"is in registry {image['registry']!r}, not the platform's ECR registry {registry!r}"
        )
    if image["repository"] != job.repository(fields["env"]):
        raise ReleaseMessageError(
            "image",
            f"is in repository {image['repository']!r}, job {job.name!r}'s is {job.repository(fields['env'])!r}",
        )
    if not _SHA_RE.match(fields["git_sha"]):
        raise ReleaseMessageError("git_sha", f"must be a full 40-hex commit SHA, got {fields['git_sha']!r}")
    if not fields["tag"]:
        raise ReleaseMessageError("tag", "is empty")
    if job.runs_on == "ecs":
        match = _TASK_DEFINITION_RE.match(fields["task_definition_arn"])
        if not match:
            raise ReleaseMessageError(
                "task_definition_arn",
                f"must be a task-definition revision ARN (ecs job {job.name!r}), got {fields['task_definition_arn']!r}",
            )
        if match["family"] != job.ecs_family(fields["env"]):
            raise ReleaseMessageError(
                "task_definition_arn",
                f"names family {match['family']!r}, job {job.name!r}'s is {job.ecs_family(fields['env'])!r}",
            )
    elif fields["task_definition_arn"]:
        raise ReleaseMessageError("task_definition_arn", f"must be empty for sagemaker job {job.name!r}")
    return Release(**fields)


def is_digest(value: str) -> bool:
    return bool(_DIGEST_RE.match(value))


@dataclass(frozen=True)
class PinnedImage:
    """An image named by its content: ``<registry>/<repository>@sha256:<64 hex>`` (what a release carries)."""

    registry: str
    repository: str
    digest: str

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}@{self.digest}"


def pinned_image(value: object) -> PinnedImage | None:
    """The parts of an image pinned by digest, None for anything else (a tag, ``:latest``, no registry)."""
    match = _IMAGE_RE.match(value) if isinstance(value, str) else None
    return PinnedImage(match["registry"], match["repository"], match["digest"]) if match else None


def ecr_registry(registry_id: str, region: str) -> str:
    """The host of an account's ECR registry in a Region, e.g. ``123456789012.dkr.ecr.eu-west-1.amazonaws.com``."""
    suffix = ".amazonaws.com.cn" if region.startswith("cn-") else ".amazonaws.com"
    return f"{registry_id}.dkr.ecr.{region}{suffix}"

"""``eksflow job release``: a job repository's built image carried to the platform's pipelines (the reusable workflow
.github/workflows/job-release.yml runs it with the job's GitHub OIDC release role).

1. push: the image (an OCI layout, eksflow_dev.oci_layout) goes to the job's ECR repository under an immutable tag,
   the git SHA, blob by blob over ECR's layer API. An existing ``:<sha>`` is never overwritten: it is verified
   like the Airflow image (eksflow_dev.ecr_image: the revision label of the config its manifest names must be the
   SHA) and then it is the release — the same manifest when this run pushed it before, an earlier build of the
   same commit otherwise. Anything else under the tag (a squatted tag) stops the release.
2. register (ecs jobs): the revision of the job's family whose container runs the image by digest
   (eksflow.revisions: the latest ACTIVE revision if it runs it already, else its copy with only the image
   replaced). SageMaker jobs have no revision: the digest is the release.
3. announce: the release message (eksflow.releases) on the environment's release queue (eksflow.jobs; its URL from
   GetQueueUrl); the platform's AssetWatcher turns it into an event of the job's release Asset.

Every input is checked before any AWS call; a failing step says what was done and what was not. Re-running is
safe: each step reuses what an earlier run did.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from eksflow.jobs import JOB_TAG_KEY, Job, get_job, release_queue_name
from eksflow.platform import validate_env
from eksflow.releases import Release, ecr_registry, release_from_payload
from eksflow.revisions import Revision, RevisionError, revision_with_image
from eksflow_dev.ecr_image import TAKEN, VERIFY_ACTIONS, ImageCheckFailed, Registry, check_commit
from eksflow_dev.oci_layout import LayoutError, LocalImage, read_layout

# What each step calls: the job's release role (terraform, the job repositories' GitHub OIDC roles) needs exactly
# these, on the job's repository, family and the release queue.
PUSH_ACTIONS = (
    *VERIFY_ACTIONS,
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
)
REGISTER_ACTIONS = ("ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition", "ecs:TagResource", "iam:PassRole")
ANNOUNCE_ACTIONS = ("sqs:GetQueueUrl", "sqs:SendMessage")
DEFAULT_PART_BYTES = 10 * 1024 * 1024  # when InitiateLayerUpload names no part size
RERUN = "re-running the job is safe: what was done is verified and reused"
DENIED = frozenset({"AccessDenied", "AccessDeniedException"})


class ReleaseFailed(RuntimeError):
    """A step failed: says which, what was done before it and what was not."""


@dataclass(frozen=True)
class ReleaseRequest:
    env: str
    job: Job
    git_sha: str
    image: LocalImage
    region: str

    @property
    def repository(self) -> str:
        return self.job.repository(self.env)


def check_request(*, env: str, job: str, image: str, git_sha: str, region: str | None) -> ReleaseRequest:
    """Every input checked, nothing called: ValueError naming the flag and the fix."""
    try:
        env = validate_env(env)
    except ValueError as error:
        raise ValueError(f"--env: {error}") from None
    try:
        spec = get_job(job)
    except ValueError as error:
        raise ValueError(f"--job: {error}") from None
    check_commit("--git-sha", git_sha)
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise ValueError("no AWS region: pass --region or set AWS_REGION")
    local = read_layout(Path(image))
    if local.revision != git_sha:
        raise LayoutError(
            local.path,
            f"its config carries the label org.opencontainers.image.revision={local.revision or '(none)'}, not "
            f"--git-sha {git_sha}",
            "build it from that commit with --label org.opencontainers.image.revision=$GITHUB_SHA, and pass the "
            "same SHA as --git-sha",
        )
    return ReleaseRequest(env, spec, git_sha, local, region)


@dataclass(frozen=True)
class Outcome:
    release: Release
    pushed: bool  # False: the tag already named the image (an earlier run's push)
    pushed_digest: str  # this build's digest (differs from the release's when an earlier build is the release)
    revision: Revision | None
    message_id: str

    def outputs(self) -> str:
        release = self.release
        return (
            f"image={release.image}\ndigest={release.digest}\ntag={release.tag}\n"
            f"task_definition_arn={release.task_definition_arn}\nmessage_id={self.message_id}\n"
        )

    def summary(self) -> str:
        release = self.release
        revision = f"`{release.task_definition_arn}`" if release.task_definition_arn else "- (SageMaker job)"
        return (
            f"### Job {release.job} released to {release.env}\n\n"
            "| image (by digest) | tag | task-definition revision | release message |\n| --- | --- | --- | --- |\n"
            f"| `{release.image}` | `{release.tag}` | {revision} | `{self.message_id or 'not sent'}` |\n"
        )


class _Steps:
    """Runs the release's steps in order; a failure names the step, what was done and what was not."""

    def __init__(self, names: list[str]):
        self.pending = list(names)
        self.done: list[str] = []

    @contextlib.contextmanager
    def step(self, name: str, note: Callable[[], str] = lambda: "") -> Iterator[None]:
        assert self.pending[0] == name
        self.pending.pop(0)
        try:
            yield
        except (ImageCheckFailed, RevisionError, LayoutError) as error:
            raise self._failed(name, str(error)) from None
        except Exception as error:  # an AWS error: botocore's ClientError and BotoCoreError
            if type(error).__module__.split(".")[0] not in {"botocore", "boto3"}:
                raise
            code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
            raise self._failed(name, f"{error}{note() if code in DENIED else ''}") from None
        self.done.append(name)

    def _failed(self, name: str, error: str) -> ReleaseFailed:
        done = "; ".join(self.done) or "nothing"
        not_done = "; ".join([name, *self.pending])
        return ReleaseFailed(f"{name} failed: {error}. Done: {done}. Not done: {not_done}. {RERUN}")


def _denied_note(actions: tuple[str, ...], where: str, job: Job, env: str) -> Callable[[], str]:
    return lambda: (
        f" (the job's release role {job.github_release_role_name(env)} needs {', '.join(actions)} on {where})"
    )


def release(
    request: ReleaseRequest, *, session=None, announce: bool = True, progress: Callable[[str], None] = print
) -> Outcome:
    """Push, register (ecs jobs), announce (unless ``announce=False``: the emulator's seed)."""
    import boto3

    session = session or boto3.session.Session(region_name=request.region)
    job, env, tag = request.job, request.env, request.git_sha
    family = job.ecs_family(env) if job.runs_on == "ecs" else ""
    names = [f"push {request.repository}:{tag}"]
    names += [f"register a revision of {family}"] if family else []
    names += [f"announce on {release_queue_name(env)}"] if announce else []
    steps = _Steps(names)

    push_note = _denied_note(PUSH_ACTIONS, f"repository {request.repository}", job, env)
    with steps.step(names[0], push_note):
        registry = Registry(
            client=session.client("ecr"),
            repository=request.repository,
            role_hint=push_note().strip(" ()"),
            built_by="the job's release workflow",
        )
        pushed = _push(registry, request.image, tag)
        verified = registry.verify(tag, request.git_sha)
        found = registry.find(tag)
        image = f"{ecr_registry(found.registry_id, request.region)}/{request.repository}@{verified.digest}"
        if pushed:
            progress(f"pushed {request.repository}:{tag} = {verified.digest}")
        elif verified.digest == request.image.digest:
            progress(f"{request.repository}:{tag} = {verified.digest} was pushed by an earlier run: reused")
        else:
            progress(
                f"{request.repository}:{tag} = {verified.digest}, an earlier build of commit {tag} (verified by its "
                f"revision label), is the release; this build ({request.image.digest}) was not pushed: tags are "
                "immutable"
            )

    revision = None
    if family:
        where = f"family {family} (and iam:PassRole of its task and execution roles)"
        with steps.step(names[1], _denied_note(REGISTER_ACTIONS, where, job, env)):
            revision = revision_with_image(session.client("ecs"), job, env, image, tags={JOB_TAG_KEY: job.name})
            verb = "registered" if revision.registered else "reused (its latest revision runs the image)"
            progress(f"{revision.family_revision} {verb}: container {job.container!r} runs {image}")

    release_ = Release(env, job.name, image, request.git_sha, tag, revision.arn if revision else "")
    release_from_payload(
        release_.to_payload(), env=env, registry=ecr_registry(found.registry_id, request.region)
    )  # what the watcher will parse, checked before it is sent
    message_id = ""
    if announce:
        queue = release_queue_name(env)
        with steps.step(names[-1], _denied_note(ANNOUNCE_ACTIONS, f"queue {queue}", job, env)):
            sqs = session.client("sqs")
            url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            message_id = sqs.send_message(QueueUrl=url, MessageBody=release_.to_message())["MessageId"]
            progress(f"announced on {queue}: message {message_id}")
    return Outcome(release_, pushed, request.image.digest, revision, message_id)


def _push(registry: Registry, image: LocalImage, tag: str) -> bool:
    """Put ``image`` under ``tag`` unless the tag exists (verified by the caller); whether it was put now."""
    if registry.find(tag) is not None:
        return False
    answer = registry._call("batch_check_layer_availability", layerDigests=[blob.digest for blob in image.blobs])
    available = {
        layer["layerDigest"] for layer in answer.get("layers", []) if layer.get("layerAvailability") == "AVAILABLE"
    }
    for blob in image.blobs:
        if blob.digest not in available:
            _upload(registry, image, blob)
    put = registry._call(
        "put_image",
        tolerate=TAKEN,  # a concurrent run put it: verified by the caller like any existing tag
        imageManifest=image.manifest.decode(),
        imageManifestMediaType=image.media_type,
        imageTag=tag,
        imageDigest=image.digest,
    )
    return put is not None


def _upload(registry: Registry, image: LocalImage, blob) -> None:
    started = registry._call("initiate_layer_upload")
    upload_id, part_bytes = started["uploadId"], started.get("partSize") or DEFAULT_PART_BYTES
    first = 0
    with image.open_blob(blob) as stream:
        while chunk := stream.read(part_bytes):
            registry._call(
                "upload_layer_part",
                uploadId=upload_id,
                partFirstByte=first,
                partLastByte=first + len(chunk) - 1,
                layerPartBlob=chunk,
            )
            first += len(chunk)
    completed = registry._call(
        "complete_layer_upload",
        tolerate=("LayerAlreadyExistsException",),
        uploadId=upload_id,
        layerDigests=[blob.digest],
    )
    if completed is not None and completed["layerDigest"] != blob.digest:
        raise ImageCheckFailed(
            f"ECR {registry.repository}: the blob uploaded as {blob.digest} was stored as {completed['layerDigest']}"
        )

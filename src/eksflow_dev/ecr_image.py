"""The Airflow image in ECR, checked by what it is rather than by its name: ``eksflow image verify`` and
``eksflow image retag`` (the image workflow) and the deploy's digest step.

An image is verified when the image config that its manifest names carries the OCI label
``org.opencontainers.image.revision`` (the Dockerfile's ``REVISION`` build argument) equal to the expected commit.
Every link is checked by hash: the manifest's SHA-256 is the image digest deployed, the config blob's SHA-256 is
the digest the manifest names. A tag is a name anyone with push rights could have put on another image; a digest is
the content. The manifest comes from ``ecr:BatchGetImage``, the config blob through ``ecr:GetDownloadUrlForLayer``
(a pre-signed URL; the emulator serves the blob itself).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from eksflow.platform import ecr_repository_name

REVISION_LABEL = "org.opencontainers.image.revision"
IMAGE_MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)
INDEX_TYPES = (
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
COMMIT_RE = re.compile(r"[0-9a-f]{40}")
VERSION_TAG_RE = re.compile(r"v(\d+\.\d+\.\d+)")  # the git tag the image workflow releases; image tag without "v"
MAX_CONFIG_BYTES = 4 * 1024 * 1024
# What each command calls on the Airflow repository: the roles that run them need exactly these (push role: verify;
# image-tag role: retag; release role: verify).
VERIFY_ACTIONS = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
RETAG_ACTIONS = (*VERIFY_ACTIONS, "ecr:PutImage")
TAKEN = ("ImageAlreadyExistsException", "ImageTagAlreadyExistsException")  # PutImage on a tag in use


class ImageCheckFailed(RuntimeError):
    """The image is missing, is not what its tag promises, or could not be read: stop, loudly."""


@dataclass(frozen=True)
class Image:
    tag: str
    digest: str
    manifest: str
    media_type: str
    registry_id: str = ""  # the account whose registry holds it


@dataclass(frozen=True)
class VerifiedImage:
    repository: str
    tag: str
    digest: str
    revision: str

    def summary(self, title: str) -> str:
        return (
            f"### {title}\n\n| repository | tag | digest | revision label |\n| --- | --- | --- | --- |\n"
            f"| `{self.repository}` | `{self.tag}` | `{self.digest}` | `{self.revision}` |\n"
        )


def check_commit(name: str, value: str) -> str:
    if not COMMIT_RE.fullmatch(value):
        raise ValueError(f"{name} {value!r} is not a full commit SHA (40 lowercase hex digits), e.g. $GITHUB_SHA")
    return value


def image_version(git_tag: str) -> str:
    """The image tag of a release's git tag: ``v1.2.3`` → ``1.2.3``."""
    match = VERSION_TAG_RE.fullmatch(git_tag)
    if not match:
        raise ValueError(f"--version-tag {git_tag!r} is not a release tag: use v<major>.<minor>.<patch>, e.g. v1.2.3")
    return match[1]


class Registry:
    """The platform's Airflow repository (``eksflow.platform.ecr_repository_name``) in the caller's account, or
    ``repository`` (a job's, ``eksflow job release``) with ``role_hint`` saying which role's grants to check."""

    role_hint = (
        f"verifying needs {', '.join(VERIFY_ACTIONS)} on the repository, a release tag also {RETAG_ACTIONS[-1]} "
        "(the role of this job: terraform/modules/github_oidc)"
    )

    built_by = "the image workflow"

    def __init__(
        self,
        region: str | None = None,
        client=None,
        *,
        repository: str | None = None,
        role_hint: str = "",
        built_by: str = "",
    ):
        if client is None:
            import boto3
            from botocore.exceptions import NoRegionError

            try:  # AWS_REGION as the AWS CLI reads it (botocore reads only AWS_DEFAULT_REGION)
                client = boto3.client("ecr", region_name=region or os.environ.get("AWS_REGION") or None)
            except NoRegionError:
                raise ValueError("no AWS region: pass --region or set AWS_REGION") from None
        self.ecr = client
        self.repository = repository or ecr_repository_name()
        self.role_hint = role_hint or self.role_hint
        self.built_by = built_by or self.built_by

    def _call(self, action: str, *, tolerate: tuple[str, ...] = (), **params):
        """The ECR call on the repository; None when it fails with one of the ``tolerate`` error codes."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.ecr, action)(repositoryName=self.repository, **params)
        except ClientError as error:
            if error.response["Error"]["Code"] in tolerate:
                return None
            hint = ""
            if error.response["Error"]["Code"] in ("AccessDeniedException", "AccessDenied"):
                hint = f" — {self.role_hint}"
            raise ImageCheckFailed(f"ECR {self.repository}: {error}{hint}") from None
        except BotoCoreError as error:
            raise ImageCheckFailed(f"ECR {self.repository}: {error} (AWS credentials and region set?)") from None

    def find(self, tag: str) -> Image | None:
        """The image under ``tag`` (manifest exactly as stored), None when no image has that tag."""
        answer = self._call(
            "batch_get_image",
            imageIds=[{"imageTag": tag}],
            acceptedMediaTypes=[*IMAGE_MANIFEST_TYPES, *INDEX_TYPES],
        )
        for failure in answer.get("failures", []):
            if failure.get("failureCode") == "ImageNotFound":
                return None
            raise ImageCheckFailed(f"ECR {self.repository}:{tag}: {failure.get('failureReason')}")
        if not answer.get("images"):
            return None
        (image,) = answer["images"]
        manifest = image["imageManifest"]
        digest = image["imageId"]["imageDigest"]
        if "sha256:" + hashlib.sha256(manifest.encode()).hexdigest() != digest:
            raise ImageCheckFailed(f"{self.repository}:{tag}: the manifest ECR returned does not hash to {digest}")
        media_type = image.get("imageManifestMediaType") or json.loads(manifest).get("mediaType", "")
        return Image(tag, digest, manifest, media_type, image.get("registryId", ""))

    def revision(self, image: Image) -> str:
        """The revision label of the image's config ("" when the label is missing)."""
        if image.media_type in INDEX_TYPES:
            raise ImageCheckFailed(
                f"{self.repository}:{image.tag} is an image index ({image.media_type}), not one image: the image "
                "workflow pushes one linux/amd64 image per commit (docker build, no attestations)"
            )
        if image.media_type not in IMAGE_MANIFEST_TYPES:
            raise ImageCheckFailed(f"{self.repository}:{image.tag}: unknown manifest type {image.media_type!r}")
        config_digest = json.loads(image.manifest)["config"]["digest"]
        url = self._call("get_download_url_for_layer", layerDigest=config_digest)["downloadUrl"]
        if not url.startswith(("https://", "http://127.0.0.1:", "http://localhost:")):
            raise ImageCheckFailed(f"ECR gave a download URL that is not HTTPS: {url.split('?')[0]}")
        try:
            with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - scheme checked above
                config = response.read(MAX_CONFIG_BYTES + 1)
        except OSError as error:
            raise ImageCheckFailed(f"{self.repository}:{image.tag}: cannot read its image config: {error}") from None
        if "sha256:" + hashlib.sha256(config).hexdigest() != config_digest:
            raise ImageCheckFailed(f"{self.repository}:{image.tag}: its image config does not hash to {config_digest}")
        labels = (json.loads(config).get("config") or {}).get("Labels") or {}
        return labels.get(REVISION_LABEL, "")

    def verify(self, tag: str, revision: str, *, allow_missing: bool = False) -> VerifiedImage | None:
        """The image under ``tag`` when its revision label is ``revision``; None when there is none and
        ``allow_missing``; ``ImageCheckFailed`` otherwise."""
        image = self.find(tag)
        if image is None:
            if allow_missing:
                return None
            raise ImageCheckFailed(
                f"no image {self.repository}:{tag} in ECR: the image workflow pushes it when the commit reaches main"
            )
        return self._checked(image, revision)

    def _checked(self, image: Image, revision: str) -> VerifiedImage:
        check_commit("--revision", revision)
        tag = image.tag
        found = self.revision(image)
        if found != revision:
            raise ImageCheckFailed(
                f"{self.repository}:{tag} ({image.digest}) has the revision label {REVISION_LABEL}="
                f"{found or '(none)'}, not {revision}: it was not built from that commit by {self.built_by}. "
                "Tags are immutable: find out who pushed it (CloudTrail ecr:PutImage) and delete it before releasing"
            )
        return VerifiedImage(self.repository, tag, image.digest, found)

    def retag(self, tag: str, revision: str, version: str) -> tuple[VerifiedImage, bool]:
        """Put the tag ``version`` on the verified image under ``tag`` — the same manifest, so the same digest.
        Returns the image under its new tag and whether the tag was added now (False: it was already there)."""
        source = self.find(tag)
        if source is None:
            raise ImageCheckFailed(
                f"no image {self.repository}:{tag} in ECR: wait for the image workflow's build of the commit on main, "
                "then re-run this job"
            )
        image = self._checked(source, revision)
        released = VerifiedImage(image.repository, version, image.digest, image.revision)
        existing = self.find(version)
        if existing is None:
            put = self._call(
                "put_image",
                tolerate=TAKEN,  # a concurrent run may have tagged it: compared below
                imageManifest=source.manifest,
                imageManifestMediaType=source.media_type,
                imageTag=version,
                imageDigest=source.digest,
            )
            existing, added = self.find(version), put is not None
        else:
            added = False
        if existing is None or existing.digest != image.digest:
            raise ImageCheckFailed(
                f"{self.repository}:{version} already names another image "
                f"({existing.digest if existing else 'none'}), not {image.digest} ({tag}): tags are immutable — "
                "release under a new version tag"
            )
        return released, added


def write_digest(path: str, digest: str) -> None:
    """The digest alone, no newline: ``helm --set-file image.digest=<path>`` reads the file as the value."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(digest)

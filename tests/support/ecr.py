"""Images pushed to the emulator's ECR the way `docker push` stores them: each blob (a layer, the image config with
its labels) uploaded, then the manifest put under a tag. ECR's layer API is what a registry push does underneath;
no Docker is needed."""

from __future__ import annotations

import hashlib
import json
import os

from eksflow.platform import ecr_repository_name
from eksflow_dev.emulator.seed import EMULATOR_KEYS

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
REVISION_LABEL = "org.opencontainers.image.revision"
CONFIG_TYPES = {
    DOCKER_MANIFEST: "application/vnd.docker.container.image.v1+json",
    OCI_MANIFEST: "application/vnd.oci.image.config.v1+json",
}


def aws_env(endpoint_url: str) -> dict[str, str]:
    """The environment configure-aws-credentials leaves for a command, pointed at the emulator."""
    return {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": EMULATOR_KEYS["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": EMULATOR_KEYS["SecretAccessKey"],
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def create_repository(ecr) -> str:
    """The platform's Airflow repository with immutable tags, as terraform/modules/data makes it."""
    name = ecr_repository_name()
    ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")
    return name


def upload_blob(ecr, data: bytes, repository: str = "") -> str:
    name = repository or ecr_repository_name()
    upload = ecr.initiate_layer_upload(repositoryName=name)["uploadId"]
    ecr.upload_layer_part(
        repositoryName=name, uploadId=upload, partFirstByte=0, partLastByte=len(data) - 1, layerPartBlob=data
    )
    return ecr.complete_layer_upload(repositoryName=name, uploadId=upload, layerDigests=[digest(data)])["layerDigest"]


def image_config(labels: dict[str, str]) -> bytes:
    config = {"architecture": "amd64", "os": "linux", "config": {"User": "airflow", "Labels": labels}}
    return json.dumps(config, separators=(",", ":")).encode()


def push_image(
    ecr,
    tag: str,
    labels: dict[str, str],
    *,
    media_type: str = DOCKER_MANIFEST,
    layer: bytes = b"",
    repository: str = "",
) -> str:
    """Push an image with these config labels under ``tag`` (into the Airflow repository unless ``repository``
    names another); returns the digest ECR gives it."""
    repository = repository or ecr_repository_name()
    layer = layer or b"layer of " + tag.encode()
    config = image_config(labels)
    config_type = CONFIG_TYPES[media_type]
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "size": len(config), "digest": upload_blob(ecr, config, repository)},
        "layers": [
            {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(layer),
             "digest": upload_blob(ecr, layer, repository)},
        ],
    }  # fmt: skip
    put = ecr.put_image(repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag)
    return put["image"]["imageId"]["imageDigest"]


def push_index(ecr, tag: str, image_digest: str) -> str:
    """An image index (what buildx pushes with attestations) pointing at one pushed image."""
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": image_digest, "size": 1,
                       "platform": {"architecture": "amd64", "os": "linux"}}],
    }  # fmt: skip
    put = ecr.put_image(repositoryName=ecr_repository_name(), imageManifest=json.dumps(index), imageTag=tag)
    return put["image"]["imageId"]["imageDigest"]

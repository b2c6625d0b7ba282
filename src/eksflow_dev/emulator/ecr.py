"""ECR in the local emulator, where moto 5.2.5 falls short of what reading an image's revision needs:

- an image's digest is the SHA-256 of its manifest, as in ECR and every registry (moto hashed the layer
  digests, so two images with the same layers and another config — another revision label — shared a digest);
- uploaded layers (the image config blob among them) keep their bytes, and ``GetDownloadUrlForLayer`` answers
  with a URL on the emulator itself (``/eksflow/ecr-blobs/...``) that serves them — ECR answers with a
  pre-signed S3 URL; moto kept only the sizes and did not implement the call.
"""

from __future__ import annotations

import hashlib
from typing import Any

BLOB_PATH = "/eksflow/ecr-blobs/"


def _blobs(repository: Any) -> dict[str, bytes]:
    if not hasattr(repository, "blobs"):
        repository.blobs = {}
    return repository.blobs


def blob(path: str) -> bytes | None:
    """The bytes of ``/eksflow/ecr-blobs/<account>/<region>/<repository name>/<digest>``, None if unknown."""
    from moto.ecr.models import ecr_backends

    account, _, rest = path.removeprefix(BLOB_PATH).partition("/")
    region, _, rest = rest.partition("/")
    name, _, digest = rest.rpartition("/")
    try:
        repository = ecr_backends[account][region].repositories[name]
    except KeyError:
        return None
    return _blobs(repository).get(digest)


def patch_ecr() -> None:
    from moto.core.exceptions import ServiceException
    from moto.core.responses import ActionResult
    from moto.ecr.models import ECRBackend, Image
    from moto.ecr.responses import ECRResponse

    class LayersNotFoundException(ServiceException):
        code = "LayersNotFoundException"

    def _create_digest(self) -> None:
        self._image_digest = "sha256:" + hashlib.sha256(self.image_manifest.encode()).hexdigest()

    original_complete = ECRBackend.complete_layer_upload

    def complete_layer_upload(self, repository_name, upload_id, layer_digests, registry_id=None):
        repository = self._get_repository(repository_name, registry_id)
        upload = repository.uploads.get(upload_id)
        data = bytes(upload.layer_parts) if upload else b""  # the original drops the upload
        result = original_complete(self, repository_name, upload_id, layer_digests, registry_id=registry_id)
        _blobs(repository)[result["layerDigest"]] = data
        return result

    def get_download_url_for_layer(self) -> ActionResult:
        name, digest = self._get_param("repositoryName"), self._get_param("layerDigest")
        repository = self.ecr_backend._get_repository(name, self._get_param("registryId"))
        if digest not in _blobs(repository):
            raise LayersNotFoundException(f"The specified layer {digest} could not be found in repository {name}")
        host = self.headers.get("Host", "127.0.0.1")
        url = f"http://{host}{BLOB_PATH}{repository.account_id}/{repository.region_name}/{name}/{digest}"
        return ActionResult({"downloadUrl": url, "layerDigest": digest})

    Image._create_digest = _create_digest
    ECRBackend.complete_layer_upload = complete_layer_upload
    ECRResponse.get_download_url_for_layer = get_download_url_for_layer

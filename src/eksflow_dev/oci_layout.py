"""A built image as the release command takes it: an OCI image layout (https://github.com/opencontainers/image-spec,
image-layout.md), a folder or a tar of one — what ``docker buildx build --output type=oci,dest=image.tar`` and
``docker save`` (Docker 25+) write. No Docker daemon is needed to push it: its blobs and manifest go to ECR over ECR's
layer API (eksflow_dev.job_release).

The layout must hold exactly one image (one platform, no attestations: ``--provenance=false --sbom=false``) whose
config carries the OCI label ``org.opencontainers.image.revision`` (the commit it was built from). Every blob is
checked against its digest before anything is pushed. ``write_layout`` makes one (the emulator's seed, the tests).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from eksflow_dev.ecr_image import INDEX_TYPES, REVISION_LABEL

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
IMAGE_MANIFEST_TYPES = (OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json")
MAX_JSON_BYTES = 4 * 1024 * 1024
BUILD_HINT = (
    "build it as an OCI layout of one image: docker buildx build --platform linux/amd64 --provenance=false "
    "--sbom=false --label org.opencontainers.image.revision=$GITHUB_SHA --output type=oci,dest=image.tar ."
)


class LayoutError(ValueError):
    """The --image is not an OCI layout of one image the release can push: names what and the fix."""

    def __init__(self, path: Path, problem: str, fix: str = BUILD_HINT):
        super().__init__(f"--image {path}: {problem}; {fix}")


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class LocalImage:
    """One image of a layout, every blob checked against its digest."""

    path: Path
    manifest: bytes  # exactly as stored: its SHA-256 is the image digest
    media_type: str
    config: Blob
    layers: tuple[Blob, ...]
    labels: dict[str, str]

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()

    @property
    def blobs(self) -> tuple[Blob, ...]:
        return (self.config, *self.layers)

    @property
    def revision(self) -> str:
        return self.labels.get(REVISION_LABEL, "")

    @contextlib.contextmanager
    def open_blob(self, blob: Blob) -> Iterator[BinaryIO]:
        with _Layout(self.path) as layout, layout.open(blob.digest) as stream:
            yield stream


class _Layout:
    """A layout folder or tar, read by path inside it."""

    def __init__(self, path: Path):
        self.path = path
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}

    def __enter__(self) -> _Layout:
        if self.path.is_file():
            try:
                self._tar = tarfile.open(self.path)
            except (tarfile.TarError, OSError) as error:
                raise LayoutError(self.path, f"is neither a folder nor a tar ({error})") from None
            self._members = {m.name.removeprefix("./"): m for m in self._tar.getmembers() if m.isfile()}
        elif not self.path.is_dir():
            raise LayoutError(self.path, "no such file or folder")
        return self

    def __exit__(self, *exc) -> None:
        if self._tar is not None:
            self._tar.close()

    def exists(self, name: str) -> bool:
        return name in self._members if self._tar else (self.path / name).is_file()

    @contextlib.contextmanager
    def open(self, digest: str) -> Iterator[BinaryIO]:
        name = _blob_path(self.path, digest)
        if not self.exists(name):
            raise LayoutError(self.path, f"has no blob {digest} (a manifest names it)", "rebuild the layout")
        if self._tar:
            stream = self._tar.extractfile(self._members[name])
            assert stream is not None  # a regular file
            with stream:
                yield stream
        else:
            with (self.path / name).open("rb") as stream:
                yield stream

    def read_json(self, name: str, what: str) -> tuple[bytes, dict]:
        if not self.exists(name):
            raise LayoutError(self.path, f"is not an OCI image layout (no {name})")
        if self._tar:
            with self._tar.extractfile(self._members[name]) as stream:  # type: ignore[union-attr]
                data = stream.read(MAX_JSON_BYTES + 1)
        else:
            data = (self.path / name).read_bytes()[: MAX_JSON_BYTES + 1]
        return data, _json(self.path, data, what)

    def blob_json(self, digest: str, what: str) -> tuple[bytes, dict]:
        with self.open(digest) as stream:
            data = stream.read(MAX_JSON_BYTES + 1)
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise LayoutError(self.path, f"its {what} does not hash to {digest}", "rebuild the layout")
        return data, _json(self.path, data, what)

    def check_blob(self, blob: Blob) -> None:
        digest, size = hashlib.sha256(), 0
        with self.open(blob.digest) as stream:
            while chunk := stream.read(1024 * 1024):
                digest.update(chunk)
                size += len(chunk)
        if "sha256:" + digest.hexdigest() != blob.digest or size != blob.size:
            raise LayoutError(
                self.path, f"blob {blob.digest} does not match its digest and size ({size} bytes)", "rebuild the layout"
            )


def _blob_path(path: Path, digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    if algorithm != "sha256" or len(hexdigest) != 64 or not all(c in "0123456789abcdef" for c in hexdigest):
        raise LayoutError(path, f"names a blob {digest!r} that is not sha256:<64 hex>", "rebuild the layout")
    return f"blobs/sha256/{hexdigest}"


def _json(path: Path, data: bytes, what: str) -> dict:
    if len(data) > MAX_JSON_BYTES:
        raise LayoutError(path, f"its {what} is larger than {MAX_JSON_BYTES} bytes", "rebuild the layout")
    try:
        value = json.loads(data)
    except ValueError as error:
        raise LayoutError(path, f"its {what} is not JSON ({error})", "rebuild the layout") from None
    if not isinstance(value, dict):
        raise LayoutError(path, f"its {what} is not a JSON object", "rebuild the layout")
    return value


def _blob(path: Path, descriptor: object, what: str) -> Blob:
    if not isinstance(descriptor, dict) or not isinstance(descriptor.get("digest"), str):
        raise LayoutError(path, f"its {what} descriptor has no digest", "rebuild the layout")
    size = descriptor.get("size")
    if not isinstance(size, int) or size < 0:
        raise LayoutError(path, f"its {what} descriptor has no size", "rebuild the layout")
    return Blob(descriptor["digest"], size, str(descriptor.get("mediaType", "")))


def read_layout(path: Path) -> LocalImage:
    """The one image of the OCI layout at ``path`` (folder or tar), every blob checked; LayoutError otherwise."""
    with _Layout(path) as layout:
        _, marker = layout.read_json("oci-layout", "oci-layout file")
        if marker.get("imageLayoutVersion") != "1.0.0":
            raise LayoutError(path, f"has imageLayoutVersion {marker.get('imageLayoutVersion')!r}, not '1.0.0'")
        _, index = layout.read_json("index.json", "index.json")
        entries = index.get("manifests") or []
        if len(entries) != 1:
            raise LayoutError(path, f"holds {len(entries)} images, the release pushes exactly one")
        entry = _blob(path, entries[0], "image")
        if entry.media_type in INDEX_TYPES:
            raise LayoutError(path, "holds an image index (several platforms or attestations), not one image")
        manifest_bytes, manifest = layout.blob_json(entry.digest, "manifest")
        media_type = entry.media_type or str(manifest.get("mediaType", ""))
        if media_type not in IMAGE_MANIFEST_TYPES:
            raise LayoutError(path, f"holds a {media_type or 'manifest without media type'}, not an image manifest")
        config = _blob(path, manifest.get("config"), "config")
        layers = tuple(_blob(path, layer, "layer") for layer in manifest.get("layers") or [])
        _, config_json = layout.blob_json(config.digest, "image config")
        for layer in layers:
            layout.check_blob(layer)
    labels = (config_json.get("config") or {}).get("Labels") or {}
    return LocalImage(path, manifest_bytes, media_type, config, layers, {str(k): str(v) for k, v in labels.items()})


def write_layout(path: Path, labels: dict[str, str], layers: tuple[bytes, ...] = (b"",)) -> Path:
    """An OCI layout folder of one linux/amd64 image with these config labels and layer contents (a tar each)."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes, media_type: str) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    layer_descriptors = [put(_tar_of(content), "application/vnd.oci.image.layer.v1.tar") for content in layers]
    diff_ids = [d["digest"] for d in layer_descriptors]  # uncompressed tars: diff ID = digest
    config = {"architecture": "amd64", "os": "linux", "config": {"Labels": labels},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}  # fmt: skip
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": put(json.dumps(config, separators=(",", ":")).encode(), OCI_CONFIG),
                "layers": layer_descriptors}  # fmt: skip
    manifest_descriptor = put(json.dumps(manifest, separators=(",", ":")).encode(), OCI_MANIFEST)
    (path / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [manifest_descriptor]}
    (path / "index.json").write_text(json.dumps(index))
    return path


def _tar_of(content: bytes) -> bytes:
    """A layer: a tar with one file, deterministic (no times, no owners)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("app/content")
        info.size, info.mtime, info.mode = len(content), 0, 0o644
        tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()

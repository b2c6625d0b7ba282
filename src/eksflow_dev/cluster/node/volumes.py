"""Pod volumes on the node: emptyDir, configMap, secret, projected (service-account tokens, configMaps,
secrets, downward API) and downwardAPI, written under the pod's directory with the modes and the fsGroup
ownership the kubelet gives them; hostPath and the rest are refused (FailedMount)."""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from eksflow_dev.cluster.node.env import _field

# lookup(kind, name) -> object or None; token(account, audience, seconds) -> token text
Lookup = Callable[[str, str], dict | None]
Token = Callable[[str, str | None, int], str]


class VolumeError(Exception):
    """A volume that cannot be set up yet (the kubelet retries, the pod stays ContainerCreating)."""


def _write(path: Path, data: bytes, mode: int, group: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chown(path, 0, group)
    path.chmod(mode)


def _keys(data: dict[str, bytes], items: list[dict] | None, default_mode: int, what: str, optional: bool):
    if items:
        for item in items:
            if item["key"] not in data:
                if optional:
                    continue
                raise VolumeError(f'{what}: key "{item["key"]}" not found')
            yield item["path"], data[item["key"]], item.get("mode", default_mode)
    else:
        for key, value in data.items():
            yield key, value, default_mode


def _source_data(kind: str, ref: dict, lookup: Lookup) -> tuple[dict[str, bytes] | None, str]:
    name = ref.get("name") or ref.get("secretName")
    obj = lookup(kind, name)
    what = f'{kind.lower()} "{name}"'
    if obj is None:
        return None, what
    if kind == "Secret":
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}, what
    data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return data, what


def prepare(pod: dict, volume: dict, root: Path, lookup: Lookup, token: Token, group: int) -> Path:
    """Create one volume under root/<name>; returns its directory."""
    path = root / volume["name"]
    if "emptyDir" in volume:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)
        return path
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    path.chmod(0o755)
    if "configMap" in volume or "secret" in volume:
        kind = "ConfigMap" if "configMap" in volume else "Secret"
        ref = volume["configMap"] if kind == "ConfigMap" else volume["secret"]
        data, what = _source_data(kind, ref, lookup)
        if data is None:
            if ref.get("optional"):
                return path
            raise VolumeError(f"{what} not found")
        for rel, value, mode in _keys(data, ref.get("items"), ref.get("defaultMode", 0o644), what, ref.get("optional")):
            _write(path / rel, value, mode, group)
        return path
    if "projected" in volume:
        default_mode = volume["projected"].get("defaultMode", 0o644)
        for source in volume["projected"].get("sources") or []:
            if "serviceAccountToken" in source:
                spec = source["serviceAccountToken"]
                text = token(
                    pod["spec"]["serviceAccountName"], spec.get("audience"), spec.get("expirationSeconds", 3600)
                )
                _write(path / spec["path"], text.encode(), default_mode, group)
            elif "downwardAPI" in source:
                for item in source["downwardAPI"].get("items") or []:
                    value = _field(pod, item["fieldRef"]["fieldPath"])
                    _write(path / item["path"], value.encode(), item.get("mode", default_mode), group)
            else:
                kind = "ConfigMap" if "configMap" in source else "Secret"
                ref = source["configMap"] if kind == "ConfigMap" else source["secret"]
                data, what = _source_data(kind, ref, lookup)
                if data is None:
                    if ref.get("optional"):
                        continue
                    raise VolumeError(f"{what} not found")
                for rel, value, mode in _keys(data, ref.get("items"), default_mode, what, ref.get("optional")):
                    _write(path / rel, value, mode, group)
        return path
    if "downwardAPI" in volume:
        for item in volume["downwardAPI"].get("items") or []:
            value = _field(pod, item["fieldRef"]["fieldPath"])
            _write(path / item["path"], value.encode(), item.get("mode", 0o644), group)
        return path
    kinds = sorted(set(volume) - {"name"})
    raise VolumeError(f'volume "{volume["name"]}": type {kinds} is not supported by the local node')


def read_only(volume: dict) -> bool:
    """configMap, secret, projected and downwardAPI volumes are always mounted read-only."""
    return any(k in volume for k in ("configMap", "secret", "projected", "downwardAPI"))

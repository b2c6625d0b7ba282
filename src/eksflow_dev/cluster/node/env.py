"""A container's environment as the kubelet builds it: the `kubernetes` Service variables, service links,
envFrom, env with valueFrom (fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef) and $(VAR)
expansion, in Kubernetes' order."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


class EnvError(Exception):
    """The container cannot start yet (CreateContainerConfigError), e.g. a Secret key that does not exist."""


def expand(text: str, env: dict[str, str]) -> str:
    """$(VAR) from env (unknown references stay as written), $$ -> $."""
    return _REF.sub(lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


def _field(pod: dict, path: str) -> str:
    meta = pod["metadata"]
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": pod["spec"].get("nodeName"),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName"),
        "status.podIP": (pod.get("status") or {}).get("podIP"),
        "status.hostIP": (pod.get("status") or {}).get("hostIP"),
    }
    if path in simple:
        return simple[path] or ""
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return (meta.get(match.group(1)) or {}).get(match.group(2), "")
    raise EnvError(f"fieldRef {path} is not supported")


def _quantity(value: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "m": 0.001}
    for suffix, factor in units.items():
        if str(value).endswith(suffix):
            return int(float(str(value)[: -len(suffix)]) * factor)
    return int(float(value))


def memory_limit(container: dict) -> int | None:
    limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
    return _quantity(limit) if limit else None


def container_env(pod: dict, container: dict, services: list[dict], lookup: Callable[[str, str], dict | None]) -> dict:
    """lookup(kind, name) -> the ConfigMap/Secret of the pod's namespace, or None."""
    env: dict[str, str] = {"HOSTNAME": pod["metadata"]["name"]}
    for service in services:
        if service["metadata"]["name"] == "kubernetes" and service["metadata"]["namespace"] == "default":
            ip, port = service["spec"]["clusterIP"], service["spec"]["ports"][0]["port"]
            env.update(
                KUBERNETES_SERVICE_HOST=ip,
                KUBERNETES_SERVICE_PORT=str(port),
                KUBERNETES_SERVICE_PORT_HTTPS=str(port),
                KUBERNETES_PORT=f"tcp://{ip}:{port}",
            )
    if pod["spec"].get("enableServiceLinks", True):
        for service in services:
            meta, spec = service["metadata"], service["spec"]
            if meta["namespace"] != pod["metadata"]["namespace"] or spec.get("clusterIP") in (None, "None"):
                continue
            prefix = meta["name"].upper().replace("-", "_")
            env[f"{prefix}_SERVICE_HOST"] = spec["clusterIP"]
            if spec.get("ports"):
                env[f"{prefix}_SERVICE_PORT"] = str(spec["ports"][0]["port"])
    for source in container.get("envFrom") or []:
        kind, ref = (
            ("ConfigMap", source["configMapRef"]) if "configMapRef" in source else ("Secret", source["secretRef"])
        )
        obj = lookup(kind, ref["name"])
        if obj is None:
            if ref.get("optional"):
                continue
            raise EnvError(f'{kind.lower()} "{ref["name"]}" not found')
        for key, value in (obj.get("data") or {}).items():
            env[source.get("prefix", "") + key] = base64.b64decode(value).decode() if kind == "Secret" else value
    for var in container.get("env") or []:
        name = var["name"]
        if "value" in var or "valueFrom" not in var:
            env[name] = expand(var.get("value", ""), env)
            continue
        source = var["valueFrom"]
        if "fieldRef" in source:
            env[name] = _field(pod, source["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in source:
            ref = source["resourceFieldRef"]
            kind, resource = ref["resource"].split(".", 1)
            value = ((container.get("resources") or {}).get(kind) or {}).get(resource)
            env[name] = str(_quantity(value) // _quantity(ref.get("divisor", "1"))) if value else "0"
        else:
            kind, ref = (
                ("ConfigMap", source["configMapKeyRef"])
                if "configMapKeyRef" in source
                else ("Secret", source["secretKeyRef"])
            )
            obj = lookup(kind, ref["name"])
            data = (obj or {}).get("data") or {}
            if ref["key"] not in data:
                if ref.get("optional"):
                    continue
                what = f'{kind.lower()} "{ref["name"]}"'
                raise EnvError(f"{what} not found" if obj is None else f"couldn't find key {ref['key']} in {what}")
            env[name] = base64.b64decode(data[ref["key"]]).decode() if kind == "Secret" else data[ref["key"]]
    return env

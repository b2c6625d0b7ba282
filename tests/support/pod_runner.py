"""One container of a rendered pod spec, run on this machine as the local node's kubelet runs it
(eksflow_dev.cluster.node): the volumes it mounts written from the ConfigMaps and Secrets given, its env resolved
from them, its user, groups, read-only root and mounts, in the node's image of it. No API server, sandbox or
Service: the network is this machine's (servers on 127.0.0.1 are reachable) and /etc/hosts is the one given."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from eksflow_dev.cluster.node import env as envs
from eksflow_dev.cluster.node import image as images
from eksflow_dev.cluster.node import runtime, volumes

_CRI_LINE = re.compile(r"^\S+ (?:stdout|stderr) ([FP]) (.*)$", re.DOTALL)


def run_rendered_container(
    pod_spec: dict,
    container_name: str,
    root: Path,
    *,
    configmaps: dict[str, dict[str, str]],
    secrets: dict[str, dict[str, str]],
    hosts: dict[str, str],
    command: list[str] | None = None,
    timeout: float = 180,
) -> tuple[int, str]:
    """(exit code, stdout and stderr) of the container named so (init or not); `command` replaces its own, as a
    container `command` does. hosts: name -> IP for its /etc/hosts."""
    pod = {"metadata": {"name": "pod", "namespace": "eksflow"}, "spec": pod_spec}
    (container,) = [
        c for c in [*pod_spec.get("initContainers", []), *pod_spec["containers"]] if c["name"] == container_name
    ]
    objects = {("ConfigMap", name): {"data": data} for name, data in configmaps.items()}
    for name, data in secrets.items():
        objects[("Secret", name)] = {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}

    def lookup(kind: str, name: str) -> dict | None:
        return objects.get((kind, name))

    def no_token(*_):
        raise AssertionError("the container mounts a service-account token: run it on the local cluster")

    pod_context = pod_spec.get("securityContext") or {}
    context = container.get("securityContext") or {}
    group = pod_context.get("fsGroup", 0)
    declared = {v["name"]: v for v in pod_spec.get("volumes", [])}
    mounts = []
    for mount in container.get("volumeMounts", []):
        volume = declared[mount["name"]]
        source = volumes.prepare(pod, volume, root / "volumes", lookup, no_token, group)
        if mount.get("subPath"):
            source = source / mount["subPath"]
        read_only = bool(mount.get("readOnly")) or volumes.read_only(volume)
        mounts.append(runtime.Mount(source, mount["mountPath"], read_only))
    hosts_file = root / "hosts"
    hosts_file.write_text("127.0.0.1\tlocalhost\n" + "".join(f"{ip}\t{name}\n" for name, ip in hosts.items()))
    image = images.resolve(container["image"])
    assert image is not None, f"{container['image']}: not an image of the local node"
    spec = runtime.ContainerSpec(
        name=container_name,
        image=image,
        command=command or container.get("command"),
        args=None if command else container.get("args"),
        env=envs.container_env(pod, container, [], lookup),
        working_dir=container.get("workingDir"),
        run_as_user=context.get("runAsUser", pod_context.get("runAsUser")),
        run_as_group=context.get("runAsGroup", pod_context.get("runAsGroup")),
        supplemental_groups=[group],
        read_only_root=bool(context.get("readOnlyRootFilesystem")),
        mounts=mounts,
        log_path=root / "container.log",
        hosts_file=hosts_file,
        hostname="pod",
    )
    started = runtime.start(spec)
    try:
        code = started.wait(timeout)
    finally:
        started.stop(0)
        started.cleanup()
    if started.reason == "StartError":
        return code, f"StartError: {started.message}"
    return code, _log_text(spec.log_path)


def _log_text(path: Path) -> str:
    text = []
    for line in path.read_text(errors="replace").split("\n")[:-1]:
        match = _CRI_LINE.match(line)
        if match:
            text.append(match.group(2) + ("\n" if match.group(1) == "F" else ""))
    return "".join(text)

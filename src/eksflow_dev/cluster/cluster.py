"""Start and stop the local cluster: the control plane (API server + controllers) and the node, each a
process in its own session, logged under the state directory and stopped by PID; a kubeconfig for helm and
kubectl; host processes (PostgreSQL, the AWS emulator, the DAG repository) exposed to pods as Services; and
port-forwards from the host's 127.0.0.1 to Services (the Airflow UI)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from eksflow_dev.cluster.client import Client, ClientError
from eksflow_dev.cluster.layout import Layout
from eksflow_dev.cluster.pki import Pki
from eksflow_dev.local import processes

REPO = Path(__file__).resolve().parents[3]
GATEWAY = "10.244.0.1"
# Set on every host process of a local cluster (value: its state dir), so a test can find any left behind.
STATE_MARKER = "EKSFLOW_LOCAL_STATE"
API_SERVICE_IP = "10.96.0.1"
TOOLS = {
    "ip": "iproute2",
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "setpriv": "util-linux",
    "mount": "util-linux",
}


def kubernetes_version() -> str:
    """The EKS version Terraform pins (terraform/modules/eks/variables.tf default): the API server is that."""
    text = (REPO / "terraform/modules/eks/variables.tf").read_text()
    block = text[text.index('variable "kubernetes_version"') :]
    return re.search(r'default\s*=\s*"([0-9.]+)"', block).group(1) + ".0"


def missing_prerequisites() -> list[str]:
    """What this machine lacks to run the local cluster, each with its fix ([] when nothing)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("the local cluster needs root (network, mount and PID namespaces): run as root")
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin:/sbin") is None:
            problems.append(f"`{tool}` is missing: install {package}")
    if not Path("/usr/bin/dumb-init").exists():
        problems.append("/usr/bin/dumb-init (the platform image's PID 1) is missing: `make system-deps`")
    return problems


def forward_argv(listen: str, connect: str, *, http_host_check: bool) -> list[str]:
    """The forwarder process relaying listen (NS:IP:PORT) to connect (NS:IP:PORT): eksflow_dev.cluster.node.forward."""
    argv = [sys.executable, "-m", "eksflow_dev.cluster.node.forward", "--listen", listen, "--connect", connect]
    return [*argv, "--http-host-check"] if http_host_check else argv


def kill_leftover_containers(node_pid: int) -> list[int]:
    """SIGKILL every process still in a container cgroup of that node (a node that was killed cannot stop its
    containers), then remove the cgroups. Returns the PIDs killed."""
    import signal

    from eksflow_dev.cluster.node.runtime import memory_cgroup_base

    base = memory_cgroup_base(f"eksflow-{node_pid}")
    if base is None or not base.exists():
        return []
    killed = []
    for procs in base.glob("*/cgroup.procs"):
        for pid in procs.read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
    for _ in range(50):
        remaining = [d for d in base.glob("*") if d.is_dir()]
        for directory in remaining:
            with contextlib.suppress(OSError):
                directory.rmdir()
        if not [d for d in base.glob("*") if d.is_dir()]:
            break
        time.sleep(0.1)
    with contextlib.suppress(OSError):
        base.rmdir()
    return killed


def service_host(namespace: str, name: str) -> str:
    """The in-cluster DNS name of a Service."""
    return f"{name}.{namespace}.svc.cluster.local"


@dataclass
class LocalCluster:
    state_dir: Path
    region: str = "eu-west-1"
    version: str = field(default_factory=kubernetes_version)
    api_port: int = 0
    pids: dict[str, int] = field(default_factory=dict)
    _managed: dict[str, processes.Managed] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state_dir = self.state_dir.resolve()  # the kubeconfig names files under it (see kubeconfig)

    @property
    def layout(self) -> Layout:
        return Layout(self.state_dir)

    def client(self, user_agent: str = "eksflow-local-cluster") -> Client:
        pki = self.layout.pki_dir
        return Client("127.0.0.1", self.api_port, pki / "ca.crt", (pki / "admin.token").read_text().strip(), user_agent)

    # ------------------------------------------------------------------ lifecycle
    def start(self, *, progress=print) -> None:
        problems = missing_prerequisites()
        if problems:
            raise RuntimeError("cannot start the local cluster:\n  " + "\n  ".join(problems))
        self.start_control_plane(progress=progress)
        progress("starting the node (pods as processes)")
        self._spawn(
            "node",
            [
                sys.executable,
                "-m",
                "eksflow_dev.cluster.node",
                "--state-dir",
                str(self.state_dir),
                "--api-port",
                str(self.api_port),
            ],
        )
        self._wait(self._node_ready, 30, "node")
        self._write_state()

    def start_control_plane(self, *, progress=print) -> None:
        """The API server and the controllers only (no node: pods stay Pending)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.layout.logs_dir.mkdir(parents=True, exist_ok=True)
        Pki(self.layout.pki_dir).create(
            ["127.0.0.1", GATEWAY, API_SERVICE_IP],
            [
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
        )
        self.api_port = processes.free_port()
        progress(
            f"starting the local cluster's API server (Kubernetes {self.version}) on https://127.0.0.1:{self.api_port}"
        )
        python = sys.executable
        self._spawn(
            "controlplane",
            [
                python,
                "-m",
                "eksflow_dev.cluster.controlplane",
                "--state-dir",
                str(self.state_dir),
                "--port",
                str(self.api_port),
                "--kubernetes-version",
                self.version,
                "--region",
                self.region,
            ],
        )
        self._wait(lambda: self.client().get("/readyz") is not None, 30, "controlplane")
        self.write_kubeconfig()
        self._write_state()

    def _spawn(self, name: str, argv: list[str]) -> processes.Managed:
        env = {**os.environ, STATE_MARKER: str(self.state_dir)}
        managed = processes.start(re.sub(r"[^A-Za-z0-9_.-]", "-", name), argv, env, self.layout.logs_dir)
        self._managed[name] = managed
        self.pids[name] = managed.process.pid
        return managed

    def _wait(self, ready, timeout: float, name: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            managed = self._managed.get(name)
            if managed is not None and managed.process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {managed.process.returncode}:\n{processes.tail(managed.log_path)}"
                )
            with contextlib.suppress(ClientError, OSError, ValueError):
                if ready():
                    return
            time.sleep(0.2)
        raise TimeoutError(f"{name} not ready after {timeout:.0f}s; see {self.layout.logs_dir / (name + '.log')}")

    def _node_ready(self) -> bool:
        nodes = self.client().get("/api/v1/nodes")["items"]
        conditions = [c for n in nodes for c in (n.get("status") or {}).get("conditions", [])]  # none yet: registering
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def stop(self) -> None:
        for name in ("port-forwards", "node", "controlplane"):
            for key in [k for k in self.pids if k == name or k.startswith(name + ":")]:
                pid = self.pids.pop(key)
                processes.stop_pid(pid, timeout=90 if name == "node" else 15)
                if name == "node":
                    kill_leftover_containers(pid)
                managed = self._managed.pop(key, None)
                if managed is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        managed.process.wait(timeout=5)
        for key in list(self.pids):
            processes.stop_pid(self.pids.pop(key))
        if self.layout.state_file.exists():
            self.layout.state_file.unlink()

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers for the stack
    def write_kubeconfig(self) -> Path:
        token = (self.layout.pki_dir / "admin.token").read_text().strip()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "eksflow-local",
            "clusters": [
                {
                    "name": "eksflow-local",
                    "cluster": {
                        "server": f"https://127.0.0.1:{self.api_port}",
                        "certificate-authority": str(self.layout.pki_dir / "ca.crt"),
                    },
                }
            ],
            "users": [{"name": "eksflow-local-admin", "user": {"token": token}}],
            "contexts": [
                {"name": "eksflow-local", "context": {"cluster": "eksflow-local", "user": "eksflow-local-admin"}}
            ],
        }
        fd = os.open(self.layout.kubeconfig, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the admin token
        with os.fdopen(fd, "w") as out:
            out.write(yaml.safe_dump(config, sort_keys=False))
        return self.layout.kubeconfig

    def ensure_namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        client = self.client()
        if client.find(f"/api/v1/namespaces/{name}") is None:
            client.create("/api/v1/namespaces", {"metadata": {"name": name, "labels": labels or {}}})

    def expose_host_port(self, namespace: str, name: str, port: int, host_port: int) -> str:
        """A Service `name` in `namespace` whose endpoint is a process on the host's 127.0.0.1:host_port (the
        node forwards its gateway to it). Returns the in-cluster DNS name."""
        self.ensure_namespace(namespace)
        client = self.client()
        base = f"/api/v1/namespaces/{namespace}"
        for path in (f"{base}/services/{name}", f"{base}/endpoints/{name}"):
            with contextlib.suppress(ClientError):
                client.delete(path)
        client.create(
            f"{base}/services",
            {"metadata": {"name": name}, "spec": {"ports": [{"name": "tcp", "port": port, "targetPort": host_port}]}},
        )
        client.create(
            f"{base}/endpoints",
            {
                "metadata": {"name": name},
                "subsets": [{"addresses": [{"ip": GATEWAY}], "ports": [{"name": "tcp", "port": host_port}]}],
            },
        )
        return service_host(namespace, name)

    def port_forward(self, namespace: str, service: str, port: int, *, http_host_check: bool) -> str:
        """http://127.0.0.1:<free port> relayed to the Service's cluster IP (a process, like kubectl port-forward).
        `http_host_check`: an HTTP service a browser on this machine could reach by DNS rebinding; only requests
        naming 127.0.0.1:<port> or localhost:<port> reach it (node/host_check.py)."""
        cluster_ip = self.client().get(f"/api/v1/namespaces/{namespace}/services/{service}")["spec"]["clusterIP"]
        node_ns = f"/proc/{self.pids['node']}/ns/net"
        key = f"port-forwards:{namespace}/{service}:{port}"
        managed = self._spawn(
            key,
            forward_argv(
                "/proc/self/ns/net:127.0.0.1:0", f"{node_ns}:{cluster_ip}:{port}", http_host_check=http_host_check
            ),
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            match = re.search(r"listening \S+:127\.0\.0\.1:(\d+)", managed.log_path.read_text(errors="replace"))
            if match:
                self._write_state()
                return f"http://127.0.0.1:{match.group(1)}"
            if managed.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(
            f"port-forward to {namespace}/{service}:{port} did not start:\n{processes.tail(managed.log_path)}"
        )

    def _write_state(self) -> None:
        state = {"api_port": self.api_port, "pids": self.pids, "kubeconfig": str(self.layout.kubeconfig)}
        self.layout.state_file.write_text(json.dumps(state, indent=2))

    def kubectl_env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.layout.kubeconfig)}

"""The local cluster for tests: started on demand, stopped by PID, with kubectl/helm pointed at it; the chart
installed on it (the platform the cluster suites share)."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from eksflow_dev.cluster.api.access_entries import AccessPolicy, add_access_entry
from eksflow_dev.cluster.client import Client, ClientError
from eksflow_dev.cluster.cluster import LocalCluster, missing_prerequisites
from eksflow_dev.cluster.stack import ClusterStack
from tests.helm import CHART, helm, kubectl_binary, local_value_files

REPO = Path(__file__).resolve().parents[2]


def require_cluster_prerequisites() -> None:
    problems = missing_prerequisites()
    if problems:
        pytest.skip("the local cluster cannot run here: " + "; ".join(problems))


@contextlib.contextmanager
def control_plane(state_dir: Path) -> Iterator[LocalCluster]:
    require_cluster_prerequisites()
    cluster = LocalCluster(state_dir)
    try:
        cluster.start_control_plane(progress=lambda _: None)
        yield cluster
    finally:
        cluster.stop()


def kubectl(
    cluster: LocalCluster, *args: str, check: bool = True, stdin: str | None = None, env: dict[str, str] | None = None
):
    """The real kubectl against the cluster, as its admin unless `env` says otherwise (as_access_entry)."""
    result = subprocess.run(
        [kubectl_binary(), *args],
        env=env or cluster.kubectl_env(),
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def chart_render(namespace: str, *sets: str) -> list[dict]:
    """The chart as the local cluster installs it (values-local.yaml and the Terraform-like layer), with --set."""
    with tempfile.TemporaryDirectory() as tmp:
        files = [a for v in local_value_files(Path(tmp)) for a in ("-f", str(v))]
        values = [a for s in sets for a in ("--set", s)]
        rendered = helm("template", "eksflow", str(CHART), "--namespace", namespace, *files, *values).stdout
    return [d for d in yaml.safe_load_all(rendered) if d]


def client_as(cluster: LocalCluster, namespace: str, account: str) -> Client:
    """A client holding a token of this service account (TokenRequest), as a pod of it would."""
    token = cluster.client().create(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
        {"spec": {"audiences": [], "expirationSeconds": 600}},
    )["status"]["token"]
    return Client("127.0.0.1", cluster.api_port, cluster.layout.pki_dir / "ca.crt", token, f"test-as-{account}")


def as_access_entry(
    cluster: LocalCluster, principal_arn: str, groups: list[str], policies: list[AccessPolicy] = ()
) -> dict[str, str]:
    """kubectl/helm's environment as an IAM principal with an EKS access entry (kubernetes_groups, access
    policies), as `aws eks update-kubeconfig` sets it up: a kubeconfig of its own whose token authenticates as it.
    EKS's username for an assumed role is its session ARN; the principal's ARN stands for it here."""
    token = add_access_entry(cluster.layout.access_entries, principal_arn, principal_arn, groups, list(policies))
    config = yaml.safe_load(cluster.layout.kubeconfig.read_text())
    config["users"] = [{"name": "principal", "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = "principal"
    kubeconfig = cluster.state_dir / f"kubeconfig-{len(list(cluster.state_dir.glob('kubeconfig-*')))}"
    kubeconfig.write_text(yaml.safe_dump(config))
    kubeconfig.chmod(0o600)
    return {**cluster.kubectl_env(), "KUBECONFIG": str(kubeconfig)}


def audit(cluster: LocalCluster) -> list[dict]:
    """Every call the API server answered: user, userAgent, method, path, query, verb, resource, code."""
    return [json.loads(line) for line in cluster.layout.audit_log.read_text().splitlines()]


def dags_worktree(root: Path, extra_dag_files: tuple[Path, ...] = ()) -> Path:
    """A DAG worktree for the cluster's DAG repository: the repository's dags/ plus `extra_dag_files`, copied
    (git-sync delivers files, not links to this machine)."""
    worktree = root / "dags-worktree"
    shutil.copytree(REPO / "dags", worktree / "dags", ignore=shutil.ignore_patterns("__pycache__"))
    for path in extra_dag_files:
        shutil.copy2(path, worktree / "dags" / path.name)
    return worktree


@contextlib.contextmanager
def platform_on_cluster(
    root: Path, extra_dag_files: tuple[Path, ...] = (), *, iam: bool = False
) -> Iterator[ClusterStack]:
    """The chart installed on the local cluster (--wait --rollback-on-failure), worker pods kept after success
    so that kubectl finds them as the runbook does; `iam`: IAM enforced (ClusterStack.iam); stopped by PID."""
    require_cluster_prerequisites()
    keep = root / "keep-worker-pods.yaml"
    keep.write_text("airflow: {kubernetesExecutor: {deleteWorkerPodsOnSuccess: false}}\n")
    worktree = dags_worktree(root, extra_dag_files)
    stack = ClusterStack(root / "stack", dags_worktree=worktree, extra_values=[keep], iam=iam)
    try:
        stack.start(progress=lambda _: None)
        yield stack
    finally:
        stack.stop()


def wait_for(predicate, timeout: float, what: str):
    """The first truthy value of `predicate`, polled; TimeoutError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise TimeoutError(f"{what} not within {timeout:.0f}s")


def finished_try_log(stack: ClusterStack, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
    """A finished try's log, read back from S3 by the api-server. The worker uploads it as its pod ends, which
    can be a moment after the scheduler saw the task finish: until then the api-server finds no remote log."""
    quoted = urllib.parse.quote(run_id, safe="")
    path = f"/dags/{dag_id}/dagRuns/{quoted}/taskInstances/{task_id}/logs/{try_number}?full_content=true"
    return wait_for(
        lambda: "s3://" in (text := json.dumps(stack.api.request("GET", path))) and text, 120, "the log in S3"
    )


def processes_with(needle: bytes, source: str) -> list[int]:
    """PIDs whose /proc/<pid>/<source> (environ, cmdline, cgroup) contains `needle`."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if needle in (proc / source).read_bytes():
                    found.append(int(proc.name))
    return found


@contextlib.contextmanager
def stand_in_kubelet(cluster: LocalCluster, namespace: str) -> Iterator[None]:
    """For the control plane alone (no node, so no container ever runs): reports every pod of the namespace as a
    kubelet would once its containers did what they should — a Job's or a helm test's pod Succeeded, any other
    Running and Ready — so that helm's hooks, --wait and `helm test` finish. Says nothing about the containers:
    for tests of what the API server allows, not of what the pods do."""
    stop = threading.Event()
    admin = cluster.client("stand-in-kubelet")
    pods = f"/api/v1/namespaces/{namespace}/pods"

    def report(pod: dict) -> None:
        owners = {ref["kind"] for ref in pod["metadata"].get("ownerReferences") or []}
        runs_to_completion = "Job" in owners or "helm.sh/hook" in (pod["metadata"].get("annotations") or {})
        status = pod.setdefault("status", {})
        wanted = "Succeeded" if runs_to_completion else "Running"
        if status.get("phase") == wanted or pod["metadata"].get("deletionTimestamp"):
            return
        status["phase"] = wanted
        ready = "False" if runs_to_completion else "True"
        status["conditions"] = [{"type": t, "status": ready} for t in ("Ready", "ContainersReady")]
        with contextlib.suppress(ClientError):  # gone or changed meanwhile: the next event brings it again
            admin.request("PUT", f"{pods}/{pod['metadata']['name']}/status", pod)

    def run() -> None:
        while not stop.is_set():
            with contextlib.suppress(ClientError, OSError):
                listed = admin.get(pods)
                for pod in listed["items"]:
                    report(pod)
                for event in admin.watch(pods, listed["metadata"]["resourceVersion"], timeout=5):
                    if stop.is_set():
                        return
                    if event["type"] in ("ADDED", "MODIFIED"):
                        report(event["object"])

    thread = threading.Thread(target=run, name="stand-in-kubelet", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)

"""The local cluster for tests: started on demand, stopped by PID, with kubectl/helm pointed at it."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from eksflow_dev.cluster.cluster import LocalCluster, missing_prerequisites
from tests.helm import kubectl_binary


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


def kubectl(cluster: LocalCluster, *args: str, check: bool = True, stdin: str | None = None):
    result = subprocess.run(
        [kubectl_binary(), *args],
        env=cluster.kubectl_env(),
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def audit(cluster: LocalCluster) -> list[dict]:
    """Every call the API server answered: user, userAgent, method, path, query, verb, resource, code."""
    return [json.loads(line) for line in cluster.layout.audit_log.read_text().splitlines()]

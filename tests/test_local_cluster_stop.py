"""Stopping the local platform after a start that failed half-way: whatever had started — API server, node,
PostgreSQL, the emulator, the DAG repository — is stopped by PID, as `make demo` and the tests rely on (a leaked
cluster holds ports, cgroups and a PostgreSQL on the machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eksflow_dev.cluster.cluster import STATE_MARKER
from eksflow_dev.cluster.node.runtime import memory_cgroup_base
from eksflow_dev.cluster.stack import ClusterStack
from tests.support.cluster import dags_worktree, processes_with, require_cluster_prerequisites

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


def test_a_start_that_fails_at_the_helm_install_leaves_no_process_behind(tmp_path):
    require_cluster_prerequisites()
    refused = tmp_path / "refused-by-the-schema.yaml"
    refused.write_text("workers: {notAValue: true}\n")
    stack = ClusterStack(tmp_path / "stack", dags_worktree=dags_worktree(tmp_path), extra_values=[refused])
    try:
        with pytest.raises(RuntimeError, match="notAValue"):
            stack.start(progress=lambda _: None)
        started = {**stack.cluster.pids, **{m.name: m.process.pid for m in stack._managed}}
        database = stack.db.root
    finally:
        stack.stop()
    assert {"controlplane", "node", "emulator", "dags-repo"} <= set(started), started

    assert [pid for pid in started.values() if Path(f"/proc/{pid}").exists()] == []
    assert processes_with(f"{STATE_MARKER}={stack.state_dir}".encode(), "environ") == []
    assert processes_with(str(database).encode(), "cmdline") == []  # PostgreSQL (started by pg_ctl, no marker)
    cgroups = memory_cgroup_base(f"eksflow-{started['node']}")
    assert cgroups is None or not cgroups.exists()
    assert not (stack.state_dir / "stack.json").exists()

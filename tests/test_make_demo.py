"""The README's first command, run as a user types it: `make demo` in the checkout (the default, relative state
folder `.eksflow/demo`, IAM not enforced) installs the chart on a local cluster, runs the reference pipelines and
stops everything it started."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from eksflow_dev.cluster.cluster import STATE_MARKER
from tests.support.cluster import processes_with, require_cluster_prerequisites

pytestmark = [pytest.mark.slow, pytest.mark.cluster]
REPO = Path(__file__).resolve().parents[1]


def test_make_demo_runs_the_reference_pipelines_and_stops_everything():
    require_cluster_prerequisites()
    result = subprocess.run(
        ["make", "--no-print-directory", "demo"], cwd=REPO, capture_output=True, text=True, timeout=1200, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "demo succeeded" in result.stdout, output[-5000:]
    for dag_id in ("batch_data_pipeline", "ml_pipeline", "aws_housekeeping"):
        assert f"{dag_id}: success" in result.stdout, output[-5000:]
    state_dir = REPO / ".eksflow" / "demo"
    assert processes_with(f"{STATE_MARKER}={state_dir}".encode(), "environ") == []

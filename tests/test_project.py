"""The front door: the lock pins what pyproject asks for, `make help` documents every target, and the
local cluster's up/down and Ctrl-C paths leave nothing running (host processes nor containers)."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from eksflow.platform import ECS_RUNTASK_POOL, ECS_RUNTASK_POOL_SLOTS
from eksflow_dev.cluster.cluster import STATE_MARKER
from eksflow_dev.cluster.login import LOGIN_FILE, read_login_file
from eksflow_dev.local.api import AirflowApi
from tests.support.cluster import processes_with

REPO = Path(__file__).resolve().parents[1]
EKSFLOW = [sys.executable, "-m", "eksflow.cli"]


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        if match:
            pins.setdefault(match.group(1).lower().replace("_", "-"), match.group(2))
    return pins


def test_lock_is_universal_and_pins_every_direct_dependency():
    header = (REPO / "requirements.lock").read_text().splitlines()[:3]
    assert any("--universal" in line and "--python-version 3.11" in line for line in header)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = lock_pins()
    for requirement in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        name = re.split(r"[\[=<>~ ]", requirement, maxsplit=1)[0].lower()
        assert name in pins, f"{name} is not pinned in requirements.lock: run `make lock`"
        exact = re.search(r"==([\w.]+)", requirement)
        if exact:
            assert pins[name] == exact.group(1), f"{name}: pyproject says {exact.group(1)}, lock {pins[name]}"
    assert pins["apache-airflow"] == "3.3.2"
    assert "aiobotocore" in pins  # deferrable AWS operators need it


def test_installed_versions_match_the_lock():
    from importlib.metadata import version

    pins = lock_pins()
    for name in ("apache-airflow", "apache-airflow-providers-amazon", "moto", "boto3", "sqlalchemy"):
        assert version(name) == pins[name], f"venv has {name} {version(name)}, lock {pins[name]}: run `make venv`"


def test_make_help_lists_every_target_with_a_description():
    makefile = (REPO / "Makefile").read_text()
    phony = set(re.search(r"^\.PHONY:((?:.*\\\n)*.*)$", makefile, re.M).group(1).replace("\\", " ").split())
    documented = set(re.findall(r"^([a-z][a-z0-9-]*):.*## ", makefile, re.M))
    assert phony == documented
    out = subprocess.run(["make", "-s", "help"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert {line.split()[1] for line in out.splitlines()} == phony
    assert {"demo", "test", "up", "down", "bench"} <= phony


def test_ci_entry_point_runs_make_test_with_strict_skips():
    script = (REPO / ".ci" / "run").read_text()
    assert "make test" in script and "EKSFLOW_STRICT_SKIPS=1" in script


def test_down_without_a_stack_says_so(tmp_path):
    result = subprocess.run(
        [*EKSFLOW, "--state-dir", str(tmp_path), "down"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "no local cluster was running"


def test_up_with_iam_but_without_terraform_stops_before_starting_anything(tmp_path):
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # python only: no terraform
    result = subprocess.run(
        [*EKSFLOW, "--state-dir", str(tmp_path), "up", "--iam"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "eksflow: error: IAM enforced (IAM=1, --iam) needs terraform" in result.stderr, result.stderr
    assert _processes_with_env(f"{STATE_MARKER}={tmp_path / 'up'}") == []
    assert not (tmp_path / "up" / "stack.json").exists()


def test_make_up_refuses_a_bad_iam_value_before_any_prerequisite_runs(tmp_path):
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "up", "IAM=yes"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "IAM='yes': use IAM=1 or leave it unset" in result.stderr, result.stdout + result.stderr
    assert result.stdout == ""  # no recipe (venv, tools, system packages) ran


def _processes_with_env(marker: str) -> list[int]:
    return processes_with(marker.encode(), "environ")


def _container_processes(node_pid: int) -> list[int]:
    """Processes in a container cgroup of that node (containers carry no marker in their environment)."""
    return processes_with(f"/eksflow-{node_pid}/".encode(), "cgroup")


def _wait_gone(marker: str, timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _processes_with_env(marker):
        time.sleep(0.5)
    return _processes_with_env(marker)


@pytest.mark.slow
def test_up_serves_the_ui_and_down_stops_every_process(tmp_path):
    up = subprocess.run(
        [*EKSFLOW, "--state-dir", str(tmp_path), "up"], capture_output=True, text=True, timeout=300, check=False
    )
    marker = f"{STATE_MARKER}={tmp_path / 'up'}"
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        url = re.search(r"Airflow UI: (http://127\.0\.0\.1:\d+)", up.stdout).group(1)
        with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=10) as response:  # noqa: S310
            assert response.status == 200
        login_file = (tmp_path / "up").resolve() / LOGIN_FILE  # the CLI names it absolute
        assert f"the password is in {login_file}" in up.stdout
        assert stat.S_IMODE(login_file.stat().st_mode) == 0o600
        with pytest.raises(RuntimeError, match="HTTP 401"):
            AirflowApi(url).pool(ECS_RUNTASK_POOL)  # no login
        pool = AirflowApi(*read_login_file(login_file)).pool(ECS_RUNTASK_POOL)  # as the chart's hook sets it
        assert (pool["slots"], pool["include_deferred"]) == (ECS_RUNTASK_POOL_SLOTS, True)
        assert "make down" in up.stdout
        assert _processes_with_env(marker)
        node = json.loads((tmp_path / "up" / "cluster" / "cluster.json").read_text())["pids"]["node"]
        assert _container_processes(node), "the node runs the chart's pods"
    finally:
        down = subprocess.run(
            [*EKSFLOW, "--state-dir", str(tmp_path), "down"], capture_output=True, text=True, timeout=120, check=False
        )
    assert down.stdout.startswith("stopped: ")
    assert not login_file.exists()
    assert _wait_gone(marker) == []
    assert _container_processes(node) == []


@pytest.mark.slow
def test_ctrl_c_during_the_demo_stops_everything_it_started(tmp_path):
    demo = subprocess.Popen(
        [*EKSFLOW, "--state-dir", str(tmp_path), "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    marker = f"{STATE_MARKER}={tmp_path / 'demo'}"
    output = []
    try:
        deadline = time.monotonic() + 300
        for line in demo.stdout:
            output.append(line)
            if "helm upgrade --install" in line or time.monotonic() > deadline:
                break
        state = tmp_path / "demo" / "cluster" / "cluster.json"
        assert "helm upgrade --install" in "".join(output) and state.exists(), "".join(output)
        node = json.loads(state.read_text())["pids"]["node"]
        time.sleep(10)  # the chart's pods start while helm waits
    finally:
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=180)
    assert demo.returncode == 130, "".join(output) + rest
    assert "interrupted; everything started was stopped" in rest
    assert _wait_gone(marker) == []
    assert _container_processes(node) == []

"""Shared fixtures: the patched AWS emulator over HTTP, a migrated Airflow home, strict skips in CI."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from eksflow.local import processes
from eksflow.local.seed import SeedResult, seed

REPO = Path(__file__).resolve().parents[1]
REGION = "eu-west-1"

# Skips that may stay skips in CI (nothing here yet: only the Docker-based kind e2e will be allowed).
ALLOWED_CI_SKIP_MARK = "allowed_ci_skip"


def pytest_configure(config):
    config.addinivalue_line("markers", f"{ALLOWED_CI_SKIP_MARK}: a skip CI accepts (Docker-only suites)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    strict = os.environ.get("EKSFLOW_STRICT_SKIPS") == "1"
    if report.skipped and strict and item.get_closest_marker(ALLOWED_CI_SKIP_MARK) is None:
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which counts as a failure: {report.longrepr}"


@dataclass
class Emulator:
    url: str
    pid: int
    seeded: SeedResult

    def client(self, service: str):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")  # noqa: S310
        urllib.request.urlopen(request, timeout=30).close()  # noqa: S310
        self.seeded = seed(self.url, REGION)


def start_emulator(tmp_path: Path, extra_env: dict[str, str] | None = None) -> tuple[processes.Managed, str]:
    port = processes.free_port()
    env = {**os.environ, **(extra_env or {})}
    managed = processes.start(
        "emulator", [sys.executable, "-m", "eksflow.local.emulator", "--port", str(port)], env, tmp_path
    )
    url = f"http://127.0.0.1:{port}"
    processes.wait_http(f"{url}/moto-api/data.json", 30, process=managed)
    return managed, url


@pytest.fixture(scope="session")
def emulator(tmp_path_factory) -> Iterator[Emulator]:
    managed, url = start_emulator(tmp_path_factory.mktemp("emulator"))
    try:
        yield Emulator(url=url, pid=managed.process.pid, seeded=seed(url, REGION))
    finally:
        processes.stop_pid(managed.process.pid)
        managed.process.wait(timeout=10)


@pytest.fixture()
def fresh_emulator(emulator: Emulator) -> Emulator:
    """The session emulator, reset to the seed state."""
    emulator.reset()
    return emulator


@dataclass
class AirflowHome:
    path: Path
    env: dict[str, str]

    def run(self, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 300):
        return subprocess.run(
            [str(Path(sys.executable).with_name("airflow")), *args],
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory) -> AirflowHome:
    """A migrated SQLite Airflow home for `airflow dags test` (no emulator settings yet)."""
    home = tmp_path_factory.mktemp("airflow")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIRFLOW", "EKSFLOW_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__FERNET_KEY": "",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "EKSFLOW_WAITER_DELAY_SECONDS": "1",
            "EKSFLOW_RETRY_DELAY_SECONDS": "1",
            "EKSFLOW_SCHEDULES": "off",
        }
    )
    airflow = AirflowHome(home, env)
    result = airflow.run("db", "migrate")
    assert result.returncode == 0, result.stderr[-3000:]
    return airflow

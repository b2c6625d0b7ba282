"""Airflow's own processes on this machine for the event-driven tests: `airflow dag-processor`, `triggerer`, and where
a DAG run must happen `scheduler` (LocalExecutor) + `api-server` (the task execution API), on a PostgreSQL metadata
DB, with the chart's airflow.cfg (rendered for the local cluster) and only what a process here must change. Each
process in its own session (signals reach the whole process tree, as the image's dumb-init forwards them), stopped
by PID. Also the bounded wait every test polls with.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg2

from eksflow_dev.cluster.postgres import Postgres
from eksflow_dev.dagcheck.home import chart_airflow_cfg
from eksflow_dev.local import processes
from eksflow_dev.local.offline import offline_env

T = TypeVar("T")

# How often a bounded wait looks again (pacing a poll, never a synchronization).
POLL_SECONDS = 0.25


def wait_for(probe: Callable[[], T], timeout: float, what: str, diagnostics: Callable[[], str] = str) -> T:
    """``probe()``'s first truthy value, looked for until ``timeout`` seconds have passed; then fail saying ``what``
    was awaited and ``diagnostics()`` (e.g. a process's log tail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}; last value {value!r}\n{diagnostics()}")
        time.sleep(POLL_SECONDS)


def database_url(db: Postgres, database: str, driver: str = "postgresql+psycopg2") -> str:
    return f"{driver}://postgres@127.0.0.1:{db.port}/{database}"


def connect(db: Postgres, database: str):
    connection = psycopg2.connect(host="127.0.0.1", port=db.port, user="postgres", dbname=database)
    connection.autocommit = True
    return connection


def create_database(db: Postgres, name: str, template: str | None = None) -> None:
    with contextlib.closing(connect(db, db.database)) as connection, connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


def migrated_template(db: Postgres, root: Path) -> str:
    """A database migrated by `airflow db migrate` once, to copy per stack (CREATE DATABASE … TEMPLATE: a copy takes
    a second, a migration most of a minute)."""
    name = "airflow_migrated"
    create_database(db, name)
    env = {**_base_env(root / "migrate-home"), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url(db, name)}
    result = subprocess.run(
        [_airflow(), "db", "migrate"], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stderr[-3000:]}")
    return name


def _airflow() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def _base_env(home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "airflow.cfg").exists():
        (home / "airflow.cfg").write_text(chart_airflow_cfg(home))
    repo = Path(__file__).resolve().parents[2]
    return {
        **offline_env(),
        "PYTHONPATH": os.pathsep.join([str(repo / "src"), str(repo), os.environ.get("PYTHONPATH", "")]),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__FERNET_KEY": "",  # the chart's comes from a Secret
        "AIRFLOW__LOGGING__REMOTE_LOGGING": "False",
        "PYTHONFAULTHANDLER": "1",  # SIGABRT prints every thread's stack: what a hung process was doing
    }


@dataclass
class AirflowStack:
    """Airflow components sharing one home and one metadata DB (``stack.start("triggerer")``)."""

    home: Path
    db: Postgres
    database: str
    env: dict[str, str]
    api_port: int
    running: dict[str, processes.Managed] = field(default_factory=dict)

    COMMANDS = {
        "dag-processor": ["dag-processor"],
        "triggerer": ["triggerer", "--skip-serve-logs"],
        "scheduler": ["scheduler", "--skip-serve-logs"],
        "api-server": ["api-server", "--host", "127.0.0.1", "--port"],
    }

    def start(self, component: str) -> processes.Managed:
        argv = [_airflow(), *self.COMMANDS[component]]
        if component == "api-server":
            argv.append(str(self.api_port))
        managed = processes.start(component, argv, self.env, self.home / "logs")
        self.running[component] = managed
        if component == "api-server":
            processes.wait_http(f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health", 180, process=managed)
        return managed

    def signal(self, component: str, sig: signal.Signals, timeout: float = 180) -> int:
        """Send ``sig`` to the component's whole process tree (as a pod's stop does) and wait for it to exit."""
        managed = self.running.pop(component)
        try:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(managed.process.pid, sig)
            code = managed.process.wait(timeout=timeout)
            wait_for(lambda: not _group_alive(managed.process.pid), timeout, f"{component}'s processes to exit")
        except (subprocess.TimeoutExpired, AssertionError) as hung:
            # Every Python process of the tree prints its threads' stacks (PYTHONFAULTHANDLER) into the log.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(managed.process.pid, signal.SIGABRT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                managed.process.wait(timeout=10)
            processes.stop_pid(managed.process.pid, timeout=0)  # leave nothing behind, then fail
            managed.process.wait(timeout=10)
            log = processes.tail(self.home / "logs" / f"{component}.log", 150)
            problem = f"{component} did not exit within {timeout:.0f} s of {sig.name} ({hung})"
            raise AssertionError(f"{problem}:\n{log}") from hung
        return code

    def ensure(self, *components: str) -> None:
        """Start those of ``components`` that are not running (a test that failed midway may have stopped one)."""
        for component in components:
            if component not in self.running:
                self.start(component)

    def log(self, component: str) -> str:
        return (self.home / "logs" / f"{component}.log").read_text(errors="replace")

    def tail(self, *components: str) -> str:
        names = components or tuple(self.COMMANDS)
        return "\n".join(f"--- {name}\n{processes.tail(self.home / 'logs' / f'{name}.log', 40)}" for name in names)

    def query(self, sql: str, params: Any = ()) -> list[tuple]:
        with contextlib.closing(connect(self.db, self.database)) as connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def airflow(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [_airflow(), *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def stop(self) -> None:
        for component in list(self.running):
            managed = self.running.pop(component)
            processes.stop_pid(managed.process.pid, timeout=30)
            with contextlib.suppress(subprocess.TimeoutExpired):
                managed.process.wait(timeout=10)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def airflow_stack(
    root: Path, db: Postgres, template: str, dags_folder: Path, extra_env: dict[str, str] | None = None
) -> Iterator[AirflowStack]:
    """An Airflow home on a fresh copy of the migrated metadata DB; components started by the test, all stopped at
    the end. Intervals are shortened so that a test waits seconds, not minutes."""
    database = f"airflow_{root.name.replace('-', '_').lower()}"[:60]
    create_database(db, database, template=template)
    home = root / "home"
    api_port = processes.free_port()
    env = {
        **_base_env(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url(db, database),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        # The chart's Airflow Secret (the bootstrap hook makes these keys on the cluster).
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(48),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "2",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
        # A SIGKILLed triggerer's triggers go to the next one after this long without a heartbeat.
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "5",
        "EKSFLOW_SCHEDULES": "off",
        **(extra_env or {}),
    }
    stack = AirflowStack(home=home, db=db, database=database, env=env, api_port=api_port)
    try:
        yield stack
    finally:
        stack.stop()

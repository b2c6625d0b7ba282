"""The older process stack: AWS emulator + Airflow (api-server, scheduler, dag-processor, triggerer, LocalExecutor)
on 127.0.0.1, with Airflow settings of its own. Only `make bench`'s AWS part still starts it (its worker
pod-time is the task processes' lifetime here); everything else runs the chart on the local cluster
(eksflow_dev.cluster.stack). To be replaced there too (issue 11)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from eksflow.connections import local_connections
from eksflow.platform import ECS_RUNTASK_POOL, ECS_RUNTASK_POOL_DESCRIPTION, ECS_RUNTASK_POOL_SLOTS
from eksflow_dev.cluster.cluster import REPO
from eksflow_dev.emulator.seed import SeedResult, seed
from eksflow_dev.local import processes
from eksflow_dev.local.api import AirflowApi
from eksflow_dev.local.offline import REGION, offline_env

REPO_ROOT = REPO
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


@dataclass
class StackOptions:
    state_dir: Path
    dags_folder: Path = REPO_ROOT / "dags"
    database_url: str | None = None  # default: SQLite in state_dir
    parallelism: int = 4
    schedules: bool = False  # time schedules off: only runs the caller triggers happen
    ecs_pool_slots: int = ECS_RUNTASK_POOL_SLOTS  # ECS tasks in flight across all DAGs (the chart's default)
    emulator_env: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)


class LocalStack:
    def __init__(self, options: StackOptions):
        self.options = options
        self.state_dir = options.state_dir.resolve()
        self.log_dir = self.state_dir / "logs"
        self.airflow_home = self.state_dir / "airflow"
        self.processes: list[processes.Managed] = []
        self.emulator_url = ""
        self.api_url = ""
        self.seeded: SeedResult | None = None
        self.env: dict[str, str] = {}

    # ------------------------------------------------------------------ lifecycle
    def start(self, *, progress=print) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.airflow_home.mkdir(parents=True, exist_ok=True)
        emulator_port, api_port = processes.free_port(), processes.free_port()
        self.emulator_url = f"http://127.0.0.1:{emulator_port}"
        self.api_url = f"http://127.0.0.1:{api_port}"

        progress(f"starting AWS emulator on {self.emulator_url}")
        emulator = self._spawn(
            "emulator",
            [sys.executable, "-m", "eksflow_dev.emulator", "--port", str(emulator_port)],
            {**offline_env(), **self.options.emulator_env},
        )
        processes.wait_http(f"{self.emulator_url}/moto-api/data.json", 30, process=emulator)

        self.env = self._airflow_env(api_port)
        progress("migrating the Airflow metadata DB and seeding the emulator")
        migrate = subprocess.Popen(
            [self._airflow_bin(), "db", "migrate"],
            env=self.env,
            stdout=(self.log_dir / "db-migrate.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        self.seeded = seed(self.emulator_url, REGION)
        self.env.update(self.seeded.settings_env)
        if migrate.wait(timeout=300) != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{processes.tail(self.log_dir / 'db-migrate.log')}")

        progress(f"starting Airflow ({', '.join(COMPONENTS)})")
        api = self._spawn(
            "api-server",
            [self._airflow_bin(), "api-server", "--host", "127.0.0.1", "--port", str(api_port)],
            self.env,
        )
        for component in COMPONENTS[1:]:
            self._spawn_component(component)
        processes.wait_http(f"{self.api_url}/api/v2/monitor/health", 120, process=api)
        self.api.set_pool(  # as the chart's migration hook does: ECS steps wait for a pool that exists
            ECS_RUNTASK_POOL, self.options.ecs_pool_slots, ECS_RUNTASK_POOL_DESCRIPTION, include_deferred=True
        )
        self._write_state()

    def restart(self, component: str) -> None:
        """Kill one Airflow component hard (as a lost node would) and start a fresh one, e.g. the triggerer."""
        (managed,) = [m for m in self.processes if m.name == component]
        os.killpg(managed.process.pid, signal.SIGKILL)  # its own process group: children go too
        managed.process.wait(timeout=10)
        self.processes.remove(managed)
        self._spawn_component(component)
        self._write_state()

    def stop(self) -> None:
        for managed in reversed(self.processes):
            processes.stop_pid(managed.process.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                managed.process.wait(timeout=5)
        self.processes.clear()
        state = self.state_dir / "stack.json"
        if state.exists():
            state.unlink()

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def api(self) -> AirflowApi:
        return AirflowApi(self.api_url)

    def check_alive(self) -> None:
        for managed in self.processes:
            if managed.process.poll() is not None:
                raise RuntimeError(
                    f"{managed.name} exited with {managed.process.returncode}:\n{processes.tail(managed.log_path)}"
                )

    # ------------------------------------------------------------------ environment
    def _airflow_bin(self) -> str:
        return str(Path(sys.executable).with_name("airflow"))

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> processes.Managed:
        managed = processes.start(name, argv, env, self.log_dir)
        self.processes.append(managed)
        return managed

    def _spawn_component(self, component: str) -> processes.Managed:
        """scheduler, dag-processor or triggerer (the api-server needs its address, see start)."""
        # The log server would bind every interface; the api-server reads the local log files instead.
        extra = ["--skip-serve-logs"] if component in {"scheduler", "triggerer"} else []
        return self._spawn(component, [self._airflow_bin(), component, *extra], self.env)

    def _airflow_env(self, api_port: int) -> dict[str, str]:
        db_url = self.options.database_url or f"sqlite:///{self.airflow_home / 'airflow.db'}"
        secret = self._persistent_secret()
        env = offline_env()
        env["AWS_ENDPOINT_URL"] = self.emulator_url
        env.update(local_connections(self.emulator_url, REGION))
        env.update(
            {
                "AIRFLOW_HOME": str(self.airflow_home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.options.dags_folder.resolve()),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(self.options.parallelism),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
                "AIRFLOW__CORE__FERNET_KEY": "",
                "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(api_port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": secret,
                "AIRFLOW__API_AUTH__JWT_SECRET": secret,
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "300",
                "AIRFLOW__TRIGGERER__CAPACITY": "200",
                "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "EKSFLOW_SCHEDULES": "on" if self.options.schedules else "off",
                "EKSFLOW_RETRY_DELAY_SECONDS": "2",
                "EKSFLOW_WAITER_DELAY_SECONDS": "2",
            }
        )
        env.update(self.options.extra_env)
        return env

    def _persistent_secret(self) -> str:
        path = self.state_dir / "secret"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def _write_state(self) -> None:
        state = {
            "api_url": self.api_url,
            "emulator_url": self.emulator_url,
            "pids": {m.name: m.process.pid for m in self.processes},
        }
        (self.state_dir / "stack.json").write_text(json.dumps(state, indent=2))


def stop_from_state(state_dir: Path) -> list[str]:
    """Stop a stack started by another process (``make down``), by the PIDs it recorded."""
    path = state_dir / "stack.json"
    if not path.exists():
        return []
    state = json.loads(path.read_text())
    stopped = []
    for name, pid in reversed(list(state.get("pids", {}).items())):
        processes.stop_pid(int(pid))
        stopped.append(name)
    path.unlink()
    return stopped

"""Secrets only where Airflow 3.3.2 reads them (issue 12: the dag-processor and the triggerer, which run DAG code,
got the DB URL, fernet key, JWT secret and API secret key as env).

Rendered: each container gets exactly the secrets below, each for the reason its test states (from Airflow's
source). Executed: every component's own command, run with exactly the env the chart renders for it (the Secret
values filled in) against a throwaway PostgreSQL, still does its work: the migration hook migrates, the api-server
serves and encrypts, the dag-processor parses a DAG that reads an encrypted Variable and writes an asset trigger,
the triggerer decrypts and runs that trigger, the scheduler's task tokens verify at the api-server, and the
triggerer's log server (its own container) serves a log to the api-server and to nobody without the API key.
The full proof is the local-cluster suite (tests/test_local_cluster.py)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helm import VALUE_FILES, pod_spec, render

DB = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
FERNET = "AIRFLOW__CORE__FERNET_KEY"
API_KEY = "AIRFLOW__API__SECRET_KEY"
JWT = "AIRFLOW__API_AUTH__JWT_SECRET"
SECRET_VARIABLES = {DB, FERNET, API_KEY, JWT}

# container (<workload>/<container>) -> the secret variables it gets. Why each, from Airflow 3.3.2's source:
# DB      every component but the worker pods and the log server talks to the metadata DB directly (workers go
#         through the execution API; in 3.3 the dag-processor and triggerer still query the DB themselves:
#         dag_processing/manager.py, jobs/triggerer_job_runner.py TriggerRunnerSupervisor.load_triggers).
# FERNET  whoever encrypts or decrypts Connection/Variable secrets or trigger kwargs (models/crypto.py get_fernet;
#         without the key it silently stores plaintext: _NullFernet).
# API_KEY signs/checks log-fetch tokens (utils/log/file_task_handler.py _fetch_logs_from_service,
#         utils/serve_logs/log_server.py create_app), the api-server's file/continuation tokens
#         (api_fastapi/core_api/app.py) and the AWS auth manager's login-state cookie (routes/login.py).
# JWT     signs the execution-API tokens of task workloads (executors/base_executor.py jwt_generator, in the
#         scheduler) and checks/reissues them and the UI's tokens (api_fastapi/execution_api/app.py, auth managers).
EXPECTED = {
    "api-server/api-server": {DB, FERNET, API_KEY, JWT},
    "scheduler/scheduler": {DB, FERNET, JWT},
    "dag-processor/dag-processor": {DB, FERNET},
    "triggerer/triggerer": {DB, FERNET},
    "triggerer/trigger-log-server": {API_KEY},
    **{f"{c}/wait-for-migrations": {DB} for c in ("api-server", "scheduler", "dag-processor", "triggerer")},
    "migrate-db/migrate": {DB},
}


def _containers(docs: list[dict]) -> dict[str, dict]:
    found = {}
    for doc in docs:
        spec = pod_spec(doc)
        for container in [*(spec or {}).get("initContainers", []), *(spec or {}).get("containers", [])]:
            found[f"{doc['metadata']['name'].removeprefix('eksflow-')}/{container['name']}"] = container
    return found


def _secret_variables(container: dict) -> set[str]:
    return {e["name"] for e in container.get("env", []) if e["name"] in SECRET_VARIABLES}


@pytest.fixture(scope="module")
def containers():
    return _containers(render())


@pytest.mark.parametrize("values", ["dev", "prod", "kind"])
def test_each_container_gets_exactly_the_secrets_airflow_reads_there(values):
    found = _containers(render(base=VALUE_FILES[values]))
    got = {name: _secret_variables(c) for name, c in found.items() if _secret_variables(c)}
    assert got == EXPECTED
    for name, container in found.items():
        for env in container.get("env", []):
            if env["name"] in SECRET_VARIABLES:
                assert set(env) == {"name", "valueFrom"} and "secretKeyRef" in env["valueFrom"], name


def test_processes_that_run_dag_code_get_neither_the_jwt_secret_nor_the_api_key(containers):
    """The dag-processor's parsing children and the triggerer's trigger runner are forks: they inherit the
    environment. They serve DAG code through an in-process execution API whose auth is bypassed
    (api_fastapi/execution_api/app.py InProcessExecutionAPI; the client sends no token), so no JWT is signed or
    checked there, and neither serves logs (the triggerer runs with --skip-serve-logs; its log server is a
    container of its own)."""
    for name in ("dag-processor/dag-processor", "triggerer/triggerer"):
        assert not _secret_variables(containers[name]) & {JWT, API_KEY}, name
    assert "--skip-serve-logs" in containers["triggerer/triggerer"]["args"]
    assert "ports" not in containers["triggerer/triggerer"]


def test_the_fernet_key_stays_where_dag_code_runs_because_airflow_decrypts_there(containers):
    """Airflow needs the key in the process that runs DAG code: the trigger runner decrypts its trigger's kwargs
    itself (jobs/triggerer_job_runner.py TriggerRunner.create_triggers: Trigger._decrypt_kwargs), and the
    dag-processor encrypts asset-watcher trigger kwargs (dag_processing/collection.py
    add_asset_trigger_references) and decrypts the Connections/Variables DAG code asks for. A documented
    limitation, not a choice of the chart (docs/security.md)."""
    for name in ("dag-processor/dag-processor", "triggerer/triggerer"):
        assert FERNET in _secret_variables(containers[name]), name


def test_the_worker_pods_and_hooks_without_airflow_get_no_secret():
    """Task pods reach Airflow only through the execution API with a per-task token (task-sdk's task runner):
    no DB, no keys. The secrets-bootstrap hook creates the keys but never reads them into its env."""
    from tests.helm import rendered_templates

    docs = render()
    for name, pod in rendered_templates(docs).items():
        assert not _secret_variables(pod["spec"]["containers"][0]), name
    assert not _secret_variables(_containers(docs)["secrets-bootstrap/bootstrap"])


def test_platform_containers_without_the_database_bypass_the_entrypoints_database_wait(containers):
    """The image's entrypoint runs `airflow db check` (20 tries) before args; without a DB URL Airflow checks a
    SQLite file on a read-only root and the container never starts: such containers set `command`."""
    for name, container in containers.items():
        if container["image"].startswith("eksflow") and DB not in _secret_variables(container):
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            assert "command" in container or env.get("CONNECTION_CHECK_MAX_COUNT") == "0", name


def test_the_bootstrap_creates_every_key_the_components_read(containers):
    """One home for the key names: the keys referenced by the components are the ones the hook generates."""
    script = containers["secrets-bootstrap/bootstrap"]["args"][0]
    referenced = {
        e["valueFrom"]["secretKeyRef"]["key"]
        for c in containers.values()
        for e in c.get("env", [])
        if e["name"] in SECRET_VARIABLES - {DB}
    }
    assert referenced == {"fernet-key", "api-secret-key", "jwt-secret"}
    for key in referenced:
        assert f'"{key}":' in script, key


def test_an_existing_airflow_secret_is_referenced_by_every_key():
    found = _containers(render(sets=("airflowSecrets.existingSecret=airflow-keys", "database.existingSecret=db")))
    for name, container in found.items():
        for env in container.get("env", []):
            if env["name"] in SECRET_VARIABLES:
                expected = "db" if env["name"] == DB else "airflow-keys"
                assert env["valueFrom"]["secretKeyRef"]["name"] == expected, name


# ---- executed: the components' own commands with exactly their rendered env, against PostgreSQL ----------------

PROBE_DAG = '''
import json, os
from airflow.sdk import DAG, Asset, AssetWatcher, Variable
from probe_trigger import ProbeTrigger

def _secrets_seen():
    """What DAG code can read: its environment and the environment the process was started with."""
    with open("/proc/self/environ", "rb") as f:
        started = {e.split(b"=", 1)[0].decode() for e in f.read().split(b"\\0") if b"=" in e}
    names = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY",
             "AIRFLOW__API_AUTH__JWT_SECRET"}
    return {"environ": sorted(names & set(os.environ)), "proc": sorted(names & started),
            "db_url": os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")}

def _probe():
    with open(OUT + "/parse.json.tmp", "w") as f:
        json.dump({"variable": Variable.get("probe_secret"), **_secrets_seen()}, f)
    os.replace(OUT + "/parse.json.tmp", OUT + "/parse.json")

# The parsing child's way to a Variable (through its parent), as a DAG-level callback in this process takes it. Read
# from a thread: the platform's parse guard (eksflow.parse_guard) refuses Variable reads on the importing thread.
import threading
reader = threading.Thread(target=_probe)
reader.start()
reader.join()

asset = Asset("probe", watchers=[AssetWatcher(name="probe", trigger=ProbeTrigger(out=OUT, token="kw-s3cret"))])
with DAG("secrets_probe", schedule=[asset], is_paused_upon_creation=False):
    pass
'''

PROBE_TRIGGER = """
import json, os
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

class ProbeTrigger(BaseEventTrigger):
    def __init__(self, out, token):
        super().__init__()
        self.out, self.token = out, token

    def serialize(self):
        return "probe_trigger.ProbeTrigger", {"out": self.out, "token": self.token}

    async def run(self):
        names = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY",
                 "AIRFLOW__API_AUTH__JWT_SECRET"}
        with open(self.out + "/trigger.json.tmp", "w") as f:
            json.dump({"token": self.token, "environ": sorted(names & set(os.environ))}, f)
        os.replace(self.out + "/trigger.json.tmp", self.out + "/trigger.json")
        yield TriggerEvent({"ok": True})
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Platform:
    """The chart's rendered containers run as local processes: the Secrets' values filled into their env."""

    def __init__(self, root: Path, db_url: str):
        from cryptography.fernet import Fernet

        from eksflow_dev.dagcheck.home import chart_airflow_cfg
        from eksflow_dev.local.offline import offline_env
        from tests.helm import local_value_files

        self.root, self.out = root, root / "out"
        self.home, self.dags, self.code = root / "airflow", root / "dags", root / "code"
        for folder in (self.home, self.dags, self.code, self.out):
            folder.mkdir()
        (root / "chart").mkdir()
        (self.home / "airflow.cfg").write_text(chart_airflow_cfg(root / "chart"))
        (self.dags / "probe.py").write_text(f"OUT = {str(self.out)!r}\n" + PROBE_DAG)
        (self.code / "probe_trigger.py").write_text(PROBE_TRIGGER)
        (root / "passwords.json").write_text(json.dumps({"admin": secrets.token_urlsafe(16)}))
        # The Secrets' values by key (database.secretKey, the Airflow Secret's keys).
        self.values = {
            "connection": db_url,
            "fernet-key": Fernet.generate_key().decode(),
            "api-secret-key": secrets.token_urlsafe(48),
            "jwt-secret": secrets.token_urlsafe(48),
        }
        # The local cluster's values, as the airflow.cfg above.
        self.containers = _containers(render(*local_value_files(root / "chart"), base=None))
        # Where things are on this machine instead of in the image (no secret among them); the triggers' module
        # is importable as an installed package is in the image.
        self.base = {
            **offline_env(),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__LOGGING__REMOTE_LOGGING": "False",
            # The api-server pod's copy of the login Secret (its volumes and init container: test_local_login.py).
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(root / "passwords.json"),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "PYTHONPATH": os.pathsep.join([str(self.code), *sys.path[1:]]),
        }
        self.processes: list[subprocess.Popen] = []

    def env(self, container: str, **extra: str) -> dict[str, str]:
        env = dict(self.base)
        for var in self.containers[container].get("env", []):
            if "value" in var:
                env[var["name"]] = var["value"]
            elif ref := var.get("valueFrom", {}).get("secretKeyRef"):
                env[var["name"]] = self.values[ref["key"]]
        assert not (SECRET_VARIABLES - EXPECTED[container]) & set(env), "the base env must add no secret"
        return {**env, **extra}

    def run(self, container: str, argv: list[str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        argv = argv or self.containers[container]["args"]
        done = subprocess.run(argv, env=self.env(container), capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{container}: {done.stderr[-3000:]}"
        return done

    def start(self, container: str, argv: list[str] | None = None) -> subprocess.Popen:
        log = open(self.root / f"{container.replace('/', '_')}.log", "w")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            argv or self.containers[container]["args"],
            env=self.env(container),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def log(self, container: str) -> str:
        return (self.root / f"{container.replace('/', '_')}.log").read_text()[-4000:]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, 15)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait(timeout=10)

    def python(self, container: str, code: str) -> str:
        return self.run(container, [sys.executable, "-c", textwrap.dedent(code)]).stdout.strip().splitlines()[-1]


def _wait_for(path: Path, process: subprocess.Popen, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not path.exists() and process.poll() is None:
        time.sleep(1)
    return json.loads(path.read_text()) if path.exists() else {}


@pytest.fixture(scope="module")
def platform(postgres, tmp_path_factory):
    running = Platform(tmp_path_factory.mktemp("secrets"), postgres.url)
    running.run("migrate-db/migrate", timeout=600)  # the hook's own script: migrate, then the ECS pool
    running.run("scheduler/wait-for-migrations", timeout=120)
    try:
        yield running
    finally:
        running.stop()


def test_migrations_and_their_check_need_only_the_database(platform):
    """The hook's `airflow db migrate` + `airflow pools set` and the init containers' `airflow db check-migrations`
    ran above with the DB URL alone (no migration of 3.3.2 touches encrypted columns: airflow/migrations/)."""
    assert "ecs_runtask" in platform.run("api-server/api-server", ["airflow", "pools", "list"]).stdout


def test_the_api_server_starts_and_encrypts_variables_with_its_env(platform):
    port = _free_port()
    args = platform.containers["api-server/api-server"]["args"]  # its own command, on a free port here
    server = platform.start(
        "api-server/api-server", [*args[: args.index("--port") + 1], str(port), "--host", "127.0.0.1"]
    )
    deadline, health = time.monotonic() + 180, None
    while time.monotonic() < deadline and server.poll() is None and health is None:
        try:
            health = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=10))
        except OSError:
            time.sleep(2)
    assert health and health["metadatabase"]["status"] == "healthy", platform.log("api-server/api-server")
    platform.run("api-server/api-server", ["airflow", "variables", "set", "probe_secret", "var-s3cret"])
    stored = platform.python(
        "migrate-db/migrate",  # the DB URL alone: what is in the table
        """
        from sqlalchemy import create_engine, text
        from airflow.configuration import conf
        row = create_engine(conf.get("database", "sql_alchemy_conn")).connect().execute(
            text("select val, is_encrypted from variable where key = 'probe_secret'")).one()
        print(row[0] != "var-s3cret" and row[1])
        """,
    )
    assert stored == "True"


def test_the_dag_processor_and_triggerer_work_without_the_jwt_secret_and_api_key(platform):
    """The dag-processor parses a DAG that reads the encrypted Variable at parse time (served by its in-process
    execution API, decrypted with its fernet key) and whose asset watcher it stores as a trigger with encrypted
    kwargs; the triggerer loads that trigger and its runner decrypts the kwargs and runs it. What DAG code sees
    is recorded: never the JWT secret or the API key; the fernet key, and the DB URL in the environment the
    process started with (Airflow overwrites os.environ only: sdk/execution_time/supervisor.py block_orm_access)."""
    platform.run("api-server/api-server", ["airflow", "variables", "set", "probe_secret", "var-s3cret"])
    processor = platform.start("dag-processor/dag-processor")
    parsed = _wait_for(platform.out / "parse.json", processor, 180)
    assert parsed, platform.log("dag-processor/dag-processor")
    triggerer = platform.start("triggerer/triggerer")
    fired = _wait_for(platform.out / "trigger.json", triggerer, 240)
    assert fired, platform.log("triggerer/triggerer") + platform.log("dag-processor/dag-processor")

    assert parsed["variable"] == "var-s3cret"
    assert fired["token"] == "kw-s3cret"
    assert parsed["environ"] == [FERNET, DB] and fired["environ"] == [FERNET, DB]
    assert parsed["db_url"] == "airflow-db-not-allowed:///"  # Airflow's attempt...
    assert parsed["proc"] == [FERNET, DB]  # ...which /proc/self/environ undoes: the documented limitation
    stored = platform.python(
        "migrate-db/migrate",
        """
        from sqlalchemy import create_engine, text
        from airflow.configuration import conf
        kwargs = create_engine(conf.get("database", "sql_alchemy_conn")).connect().execute(
            text("select kwargs from trigger where classpath = 'probe_trigger.ProbeTrigger'")).scalar_one()
        print("kw-s3cret" not in kwargs)
        """,
    )
    assert stored == "True"  # encrypted by the dag-processor, not stored in the clear


def test_the_schedulers_task_tokens_verify_at_the_api_server(platform):
    """The scheduler signs each workload's execution-API token (executors/base_executor.py jwt_generator, with
    make_secret_key_if_needed=False: it refuses to start without the secret); the api-server checks it."""
    token = platform.python(
        "scheduler/scheduler",
        """
        from airflow.executors.executor_loader import ExecutorLoader
        generator = ExecutorLoader.get_default_executor().jwt_generator
        print(generator.generate({"sub": "00000000-0000-0000-0000-000000000001"}))
        """,
    )
    claims = platform.python(
        "api-server/api-server",
        f"""
        from airflow.api_fastapi.execution_api.app import _jwt_validator
        print(_jwt_validator().validated_claims({token!r})["sub"])
        """,
    )
    assert claims == "00000000-0000-0000-0000-000000000001"


def test_the_trigger_log_server_serves_the_api_server_and_nobody_without_the_key(platform):
    """The triggerer pod's log-server container (API key, no DB) serves a log file the triggerer wrote to the
    shared logs volume to the api-server's request (signed with the same key); a request signed with any other
    key, e.g. from the triggerer container, is refused."""
    port = _free_port()
    relative = "dag_id=d/run_id=r/task_id=t/attempt=1.log.trigger.1.log"
    log = platform.home / "logs" / relative
    log.parent.mkdir(parents=True)
    log.write_text("deferred and waiting\n")
    argv = [sys.executable, *platform.containers["triggerer/trigger-log-server"]["command"][1:]]
    platform.base["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(port)  # a free port on this machine
    try:
        platform.start("triggerer/trigger-log-server", argv)
        fetch = f"""
            import time
            from airflow.utils.log.file_task_handler import _fetch_logs_from_service
            for _ in range(90):
                try:
                    r = _fetch_logs_from_service("http://127.0.0.1:{port}/log/{relative}", "{relative}")
                    break
                except OSError:
                    time.sleep(1)
            print(r.status_code, r.text.strip())
            """
        served = platform.python("api-server/api-server", fetch)
        assert served == "200 deferred and waiting", platform.log("triggerer/trigger-log-server")
        assert platform.python("triggerer/triggerer", fetch).split()[0] == "403"
    finally:
        platform.base.pop("AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT")

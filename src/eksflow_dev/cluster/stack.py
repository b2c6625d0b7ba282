"""The platform on the local cluster: the chart installed with the real helm (`--wait --rollback-on-failure`)
from helm/eksflow/values-local.yaml, next to what EKS would have around it — PostgreSQL (RDS), the AWS
emulator, the DAG repository git-sync reads — run as processes on 127.0.0.1 and reached from pods as
Services of namespace eksflow-local-deps. Airflow's configuration is the chart's: nothing here sets it."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from eksflow.platform import NAMESPACE
from eksflow_dev.cluster import iam_roles, login, postgres
from eksflow_dev.cluster.cluster import REPO, STATE_MARKER, LocalCluster, kill_leftover_containers, service_host
from eksflow_dev.cluster.platform_values import ENV, values_layer
from eksflow_dev.deploy import DB_CA_CONFIGMAP, DB_CA_KEY, DB_SECRET, RELEASE, db_url
from eksflow_dev.emulator.control import bootstrap_admin, set_iam_enforcement
from eksflow_dev.emulator.seed import EMULATOR_KEYS, SeedResult, seed
from eksflow_dev.kind import seeded_values
from eksflow_dev.local import processes
from eksflow_dev.local.api import AirflowApi, Login
from eksflow_dev.local.offline import REGION, offline_env

CHART = REPO / "helm" / "eksflow"
LOCAL_VALUES = CHART / "values-local.yaml"
DEPS_NAMESPACE = "eksflow-local-deps"
# In-cluster ports of the dependencies, as values-local.yaml names them.
EMULATOR_PORT, DAGS_REPO_PORT, POSTGRES_PORT = 5000, 8000, 5432
AWS_ADMIN_USER = "eksflow-local-aws-admin"  # the operator side of the emulator (not a Kubernetes user)
RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")}


def helm_binary() -> str:
    import shutil

    for candidate in (shutil.which("helm"), REPO / ".tools" / "bin" / "helm"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise RuntimeError("helm is not installed: run `make tools`")


@dataclass
class ClusterStack:
    state_dir: Path
    dags_worktree: Path = REPO
    extra_values: list[Path] = field(default_factory=list)
    emulator_env: dict[str, str] = field(default_factory=dict)
    iam: bool = False  # IAM enforced, with the roles terraform/modules/irsa makes (needs terraform)
    cluster: LocalCluster | None = None
    db: postgres.Postgres | None = None
    emulator_url: str = ""
    api_url: str = ""
    api_login: Login | None = None  # the chart's simple auth manager login (eksflow_dev.cluster.login)
    seeded: SeedResult | None = None
    admin_keys: dict[str, str] = field(default_factory=lambda: dict(EMULATOR_KEYS))
    _managed: list[processes.Managed] = field(default_factory=list)
    _api: AirflowApi | None = None

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def platform_values(self) -> Path:
        """What `make chart-values` makes from Terraform outputs on EKS, for env local."""
        return self.state_dir / "platform-values.yaml"

    @property
    def aws_admin_env(self) -> Path:
        """With IAM enforced: the administrator's AWS environment for a shell (`source` it), mode 0600."""
        return self.state_dir / "aws-admin.env"

    @property
    def login_file(self) -> Path:
        """While running: the Airflow login (URL, users, passwords), mode 0600; new at each start."""
        return self.state_dir / login.LOGIN_FILE

    @property
    def api(self) -> AirflowApi:
        """The API client, logged in as the chart's first ADMIN user (one token, renewed when it expires)."""
        if self._api is None or self._api.base_url != self.api_url:
            self._api = AirflowApi(self.api_url, self.api_login)
        return self._api

    def aws_client(self, service: str):
        """A boto3 client of the emulator as an administrator (what an operator's shell has on AWS): with IAM
        enforced the emulator's dummy keys are refused; pods have only their roles' web-identity sessions."""
        return boto3.session.Session(
            aws_access_key_id=self.admin_keys["AccessKeyId"],
            aws_secret_access_key=self.admin_keys["SecretAccessKey"],
            region_name=REGION,
        ).client(service, endpoint_url=self.emulator_url)

    # ------------------------------------------------------------------ lifecycle
    def start(self, *, progress=print) -> None:
        if self.iam:
            iam_roles.require_terraform()  # before anything starts
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.cluster = LocalCluster(self.state_dir / "cluster")
        self.cluster.start(progress=progress)
        progress("starting PostgreSQL, the AWS emulator and the DAG repository (this checkout's working tree)")
        # As RDS on EKS: TLS only, and the pods verify the certificate against its CA and the name they connect to.
        postgres_host = service_host(DEPS_NAMESPACE, "postgres")
        self.db = postgres.start(tls_names=(postgres_host,))
        self._start_emulator()
        dags_port = self._start_dags_repo()
        self.seeded = seed(self.emulator_url, REGION, ENV)
        role_arns = None
        if self.iam:
            progress("IAM: terraform apply of terraform/modules/irsa to the emulator, then enforcement on")
            role_arns = iam_roles.apply(self.state_dir / "terraform", self.emulator_url, self.seeded.settings_env)
            self.admin_keys = bootstrap_admin(self.emulator_url, AWS_ADMIN_USER, REGION)
            self._write_aws_admin_env()
            set_iam_enforcement(self.emulator_url, True)
        cluster = self.cluster
        cluster.ensure_namespace(DEPS_NAMESPACE)
        cluster.expose_host_port(DEPS_NAMESPACE, "postgres", POSTGRES_PORT, self.db.port)
        cluster.expose_host_port(
            DEPS_NAMESPACE, "aws-emulator", EMULATOR_PORT, int(self.emulator_url.rsplit(":", 1)[1])
        )
        cluster.expose_host_port(DEPS_NAMESPACE, "dags-repo", DAGS_REPO_PORT, dags_port)
        cluster.ensure_namespace(NAMESPACE, RESTRICTED)
        self._apply("configmaps", DB_CA_CONFIGMAP, {"data": {DB_CA_KEY: self.db.ca_file.read_text()}})
        self._secret(DB_SECRET, {"connection": db_url(f"{postgres_host}:{POSTGRES_PORT}", "postgres")})
        self.platform_values.write_text(values_layer(REGION, role_arns))
        layer = self.state_dir / "seeded-values.yaml"
        layer.write_text(seeded_values(self.seeded.settings_env))
        chart_login = login.chart_login(self._value_files(layer))
        passwords = login.new_passwords(chart_login) if chart_login else {}
        if chart_login:
            self._secret(chart_login.secret, login.secret_data(chart_login, passwords))
        progress("helm upgrade --install (values-local.yaml) --wait --rollback-on-failure")
        self.helm_upgrade(layer)
        # Only requests naming 127.0.0.1:<port> or localhost:<port> pass (DNS rebinding, node/host_check.py).
        self.api_url = cluster.port_forward(NAMESPACE, f"{RELEASE}-api-server", 8080, http_host_check=True)
        if chart_login:
            login.write_login_file(self.login_file, self.api_url, chart_login, passwords)
            self.api_url, self.api_login = login.read_login_file(self.login_file)
        # Ready pods reach the Service's endpoints and the node's proxy a moment after helm returns, as on EKS.
        processes.wait_http(f"{self.api_url}/api/v2/monitor/health", 60)
        self._write_state()

    def helm(self, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [helm_binary(), *args],
            env=self.cluster.kubectl_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        (self.log_dir / "helm.log").open("a").write(f"$ helm {' '.join(args)}\n{result.stdout}{result.stderr}\n")
        if check and result.returncode != 0:
            raise RuntimeError(f"helm {' '.join(args[:2])} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
        return result

    def _value_files(self, *layers: Path) -> list[Path]:
        return [LOCAL_VALUES, self.platform_values, *layers, *self.extra_values]

    def helm_upgrade(self, *layers: Path, sets: tuple[str, ...] = (), timeout: str = "10m", check: bool = True):
        files = self._value_files(*layers)
        args = [
            "upgrade",
            "--install",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            *[a for f in files for a in ("-f", str(f))],
            *[a for s in sets for a in ("--set", s)],
            "--wait",
            "--rollback-on-failure",
            "--timeout",
            timeout,
        ]
        return self.helm(*args, check=check)

    def stop(self) -> None:
        for managed in reversed(self._managed):
            processes.stop_pid(managed.process.pid)
        self._managed.clear()
        if self.cluster is not None:
            self.cluster.stop()
        if self.db is not None:
            self.db.stop()
            self.db = None
        for written in (self.state_dir / "stack.json", self.aws_admin_env, self.login_file):
            written.unlink(missing_ok=True)

    def __enter__(self) -> ClusterStack:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def check_alive(self) -> None:
        for managed in [*self._managed, *self.cluster._managed.values()]:
            if managed.process.poll() is not None:
                raise RuntimeError(
                    f"{managed.name} exited with {managed.process.returncode}:\n{processes.tail(managed.log_path)}"
                )

    # ------------------------------------------------------------------ pieces
    @property
    def _marker(self) -> dict[str, str]:
        return {STATE_MARKER: str(self.state_dir)}

    def _start_emulator(self) -> None:
        port = processes.free_port()
        managed = processes.start(
            "emulator",
            [sys.executable, "-m", "eksflow_dev.emulator", "--port", str(port)],
            {**offline_env(), **self.emulator_env, **self._marker},
            self.log_dir,
        )
        self._managed.append(managed)
        self.emulator_url = f"http://127.0.0.1:{port}"
        processes.wait_http(f"{self.emulator_url}/moto-api/data.json", 30, process=managed)

    def _start_dags_repo(self) -> int:
        port = processes.free_port()
        managed = processes.start(
            "dags-repo",
            [
                sys.executable,
                "-m",
                "eksflow_dev.cluster.dagsrepo",
                "--worktree",
                str(self.dags_worktree),
                "--bare",
                str(self.state_dir / "eksflow.git"),
                "--port",
                str(port),
                "--interval",
                "2",
            ],
            {**offline_env(), **self._marker},
            self.log_dir,
        )
        self._managed.append(managed)
        deadline = time.monotonic() + 60
        while "serving" not in processes.tail(managed.log_path):
            if managed.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the DAG repository did not start:\n{processes.tail(managed.log_path)}")
            time.sleep(0.1)
        return port

    def _apply(self, resource: str, name: str, body: dict) -> None:
        """A Secret or ConfigMap of the platform namespace, replaced if it exists."""
        client = self.cluster.client()
        with contextlib.suppress(Exception):
            client.delete(f"/api/v1/namespaces/{NAMESPACE}/{resource}/{name}")
        client.create(f"/api/v1/namespaces/{NAMESPACE}/{resource}", {"metadata": {"name": name}, **body})

    def _secret(self, name: str, data: dict[str, str]) -> None:
        self._apply("secrets", name, {"type": "Opaque", "stringData": data})

    def _write_aws_admin_env(self) -> None:
        lines = {
            "AWS_ENDPOINT_URL": self.emulator_url,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": self.admin_keys["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": self.admin_keys["SecretAccessKey"],
        }
        self.aws_admin_env.touch(mode=0o600)
        self.aws_admin_env.write_text("".join(f"export {k}={v}\n" for k, v in lines.items()))

    def _write_state(self) -> None:
        """What `make down` (another process) needs to stop everything: PIDs in stop order, the DB's folder."""
        pids = {**{m.name: m.process.pid for m in self._managed}, **self.cluster.pids}
        state = {
            "api_url": self.api_url,
            "emulator_url": self.emulator_url,
            "pids": pids,
            "kubeconfig": str(self.cluster.layout.kubeconfig),
            "postgres_root": str(self.db.root),
        }
        (self.state_dir / "stack.json").write_text(json.dumps(state, indent=2))


def stop_from_state(state_dir: Path) -> list[str]:
    """Stop a stack another process started (`make down`), by the PIDs it recorded: port-forwards and the
    node first (the node gives its pods their grace period), then the API server, the host processes, the DB."""
    path = state_dir / "stack.json"
    if not path.exists():
        return []
    state = json.loads(path.read_text())
    pids: dict[str, int] = state.get("pids", {})
    order = sorted(
        pids, key=lambda name: (not name.startswith("port-forwards"), name != "node", name != "controlplane")
    )
    for name in order:
        processes.stop_pid(int(pids[name]), timeout=90 if name == "node" else 15)
        if name == "node":
            kill_leftover_containers(int(pids[name]))
    stopped = list(order)
    if state.get("postgres_root"):
        postgres.Postgres(Path(state["postgres_root"]), 0).stop()
        stopped.append("postgres")
    path.unlink()
    for written in ("aws-admin.env", login.LOGIN_FILE):
        (state_dir / written).unlink(missing_ok=True)
    return stopped

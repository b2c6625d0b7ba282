"""The local stack's Airflow login (issue 12 row 17: `make up` served the API/UI with every visitor an admin).

Rendered: values-local.yaml runs the simple auth manager with all-admins off, its users, and a passwords file that
only the api-server gets (a Secret copied by an init container into a memory emptyDir: Airflow opens the file
read-write). Executed: the api-server's own command (`airflow api-server`, Airflow 3.3.2) with the chart's
rendered airflow.cfg on SQLite, its pod's volumes as folders on this machine — the Secret's content exactly as the
stack generates it (eksflow_dev.cluster.login), the init container's own command run to copy it — and the stack's
API client (eksflow_dev.local.api.AirflowApi) logging in with the login file the stack writes. The same on the
local cluster, through the port-forward: tests/test_local_cluster.py."""

from __future__ import annotations

import configparser
import json
import os
import secrets
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from eksflow_dev.cluster import login as local_login
from eksflow_dev.local import processes
from eksflow_dev.local.api import AirflowApi, Login
from eksflow_dev.local.offline import offline_env
from tests.helm import CHART, VALUE_FILES, helm, local_value_files, pod_spec, render, template_args

SIMPLE = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


def _cfg_text(docs: list[dict]) -> str:
    (configmap,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("airflow-config")]
    return configmap["data"]["airflow.cfg"]


def _cfg(docs: list[dict]) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(_cfg_text(docs))
    return parser


def _api_server_pod(docs: list[dict]) -> dict:
    (deployment,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-api-server")]
    return pod_spec(deployment)


@pytest.fixture(scope="module")
def local_docs(tmp_path_factory) -> list[dict]:
    return render(*local_value_files(tmp_path_factory.mktemp("chart")), base=None)


# ---- rendered ---------------------------------------------------------------------------------------------------


def test_the_local_values_run_the_simple_auth_manager_with_a_login_not_every_visitor_an_admin(local_docs):
    core = _cfg(local_docs)["core"]
    assert core["auth_manager"] == SIMPLE
    assert core["simple_auth_manager_all_admins"] == "False"
    assert core["simple_auth_manager_users"] == "admin:ADMIN"
    assert "LOCAL CLUSTER ONLY" in (CHART / "values-local.yaml").read_text()


def test_only_the_api_server_gets_the_passwords_and_its_airflow_cfg_names_its_private_writable_copy(local_docs):
    passwords_file = _cfg(local_docs)["core"]["simple_auth_manager_passwords_file"]
    pod = _api_server_pod(local_docs)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["simple-auth-secret"]["secret"]["secretName"] == "eksflow-local-login"
    assert volumes["simple-auth"]["emptyDir"]["medium"] == "Memory"
    (server,) = pod["containers"]
    (own,) = [m for m in server["volumeMounts"] if m["name"] == "simple-auth"]
    assert passwords_file.startswith(own["mountPath"] + "/") and not own.get("readOnly")
    assert not [m for m in server["volumeMounts"] if m["name"] == "simple-auth-secret"]
    (copy,) = [c for c in pod["initContainers"] if c["name"] == "simple-auth-passwords"]
    assert copy["command"][:3] == ["install", "-m", "0600"] and copy["command"][-1] == passwords_file
    for doc in local_docs:  # no other workload mounts the Secret
        spec = pod_spec(doc)
        if spec and doc["metadata"]["name"] != "eksflow-api-server":
            assert "eksflow-local-login" not in json.dumps(spec), doc["metadata"]["name"]


def test_kind_keeps_every_visitor_an_admin_and_renders_no_passwords():
    docs = render(base=VALUE_FILES["kind"])
    core = _cfg(docs)["core"]
    assert core["simple_auth_manager_all_admins"] == "True" and "simple_auth_manager_passwords_file" not in core
    assert "simple-auth" not in json.dumps(_api_server_pod(docs))


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("auth.manager=simple",), "auth.manager=simple needs a login, auth.simple.passwordsSecret"),
        (
            ("auth.manager=simple", "auth.simple.passwordsSecret=login", "auth.simpleAllAdminsForLocalUseOnly=true"),
            "auth.simple.passwordsSecret and auth.simpleAllAdminsForLocalUseOnly are both set",
        ),
        (("auth.manager=simple", "auth.simple.passwordsSecret=Not_A_Name"), "passwordsSecret"),
        (("auth.manager=simple", "auth.simple.passwordsSecret=login", "auth.simple.users[0]=admin"), "users"),
    ],
    ids=["no-login-no-ack", "login-and-all-admins", "bad-secret-name", "user-without-role"],
)
def test_a_simple_auth_manager_without_a_clear_login_mode_is_refused_naming_the_value(sets, message):
    refused = helm(*template_args(*sets), check=False)
    assert refused.returncode != 0 and message in refused.stderr, refused.stderr


# ---- executed: the api-server's own command with the rendered airflow.cfg -----------------------------------------


@dataclass
class LoginServer:
    url: str
    login_file: Path
    log: Path
    env: dict[str, str]


def _pod_folders(pod: dict, root: Path) -> dict[str, Path]:
    """The api-server pod's simple-auth volumes as folders here (mountPath -> folder), the Secret's file in its."""
    folders = {}
    for mount in (m for c in pod["initContainers"] for m in c.get("volumeMounts", [])):
        if mount["name"].startswith("simple-auth"):
            folders[mount["mountPath"]] = root / mount["name"]
            folders[mount["mountPath"]].mkdir(exist_ok=True)
    return folders


def _here(text: str, folders: dict[str, Path]) -> str:
    for mount_path, folder in sorted(folders.items(), key=lambda item: -len(item[0])):
        text = text.replace(mount_path + "/", f"{folder}/")
    return text


@pytest.fixture(scope="module")
def login_server(tmp_path_factory, local_docs) -> LoginServer:
    root = tmp_path_factory.mktemp("login")
    home = root / "airflow"
    home.mkdir()
    chart_login = local_login.chart_login(local_value_files(root))  # what the stack reads, as it runs helm
    passwords = local_login.new_passwords(chart_login)
    pod = _api_server_pod(local_docs)
    folders = _pod_folders(pod, root)
    # The Secret volume, as the kubelet writes it: its item under the stack's key.
    (secret,) = [v["secret"] for v in pod["volumes"] if v.get("secret", {}).get("secretName") == chart_login.secret]
    (item,) = secret["items"]
    assert item["key"] == chart_login.key
    secret_file = root / "simple-auth-secret" / item["path"]
    secret_file.write_text(local_login.secret_data(chart_login, passwords)[item["key"]])
    secret_file.chmod(secret["defaultMode"])
    (copy,) = [c for c in pod["initContainers"] if c["name"] == "simple-auth-passwords"]
    subprocess.run([_here(arg, folders) for arg in copy["command"]], check=True, timeout=30)

    rendered = _cfg_text(local_docs)
    assert _here(rendered, folders) != rendered, "the passwords file is under a mount of the pod"
    (home / "airflow.cfg").write_text(_here(rendered, folders))
    env = {
        **offline_env(),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__REMOTE_LOGGING": "False",
        # The chart's Airflow Secret (the bootstrap hook makes these keys on the cluster).
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(48),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    migrated = subprocess.run(
        ["airflow", "db", "migrate"], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    port = processes.free_port()
    args = pod["containers"][0]["args"]  # its own command, on a free loopback port here
    argv = [*args[: args.index("--port") + 1], str(port), "--host", "127.0.0.1"]
    server = processes.start("api-server", argv, env, root)
    url = f"http://127.0.0.1:{port}"
    try:
        processes.wait_http(f"{url}/api/v2/monitor/health", 180, process=server)
        login_file = root / local_login.LOGIN_FILE
        local_login.write_login_file(login_file, url, chart_login, passwords)
        yield LoginServer(url, login_file, server.log_path, env)
    finally:
        processes.stop_pid(server.process.pid)
        server.process.wait(timeout=30)


def _status(url: str, *, method: str = "GET", headers: dict | None = None, body: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize("path", ["/api/v2/dags", "/api/v2/pools", "/api/v2/config", "/api/v2/variables"])
def test_an_anonymous_api_call_is_refused(login_server, path):
    assert _status(login_server.url + path) == 401


def test_the_no_credentials_token_route_of_all_admins_mode_is_closed(login_server):
    assert _status(f"{login_server.url}/auth/token") == 403


def test_the_stacks_client_logs_in_with_the_login_file_and_gets_answers(login_server):
    url, login = local_login.read_login_file(login_server.login_file)
    assert url == login_server.url and login.username == "admin"
    api = AirflowApi(url, login)
    assert api.pool("default_pool")["name"] == "default_pool"
    assert api.dag_ids() == set()
    assert stat.S_IMODE(login_server.login_file.stat().st_mode) == 0o600
    assert login.password not in repr(login)


@pytest.mark.parametrize(
    "login", [Login("admin", "not-the-password"), Login("nobody", "x")], ids=["wrong-password", "unknown-user"]
)
def test_a_wrong_login_gets_401(login_server, login):
    with pytest.raises(RuntimeError, match=r"refused: HTTP 401: .*Invalid credentials"):
        AirflowApi(login_server.url, login).token()


def test_the_ui_sends_visitors_to_the_login_form_and_its_cookie_works(login_server):
    """The UI's login: /api/v2/auth/login redirects to the simple auth manager's form (/auth/login, not the
    no-credentials /auth/token/login); the form posts to /auth/token and keeps the token in the `_token` cookie."""
    request = urllib.request.Request(f"{login_server.url}/api/v2/auth/login", method="GET")  # noqa: S310

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    with pytest.raises(urllib.error.HTTPError) as redirect:
        urllib.request.build_opener(NoRedirect).open(request, timeout=30)
    assert redirect.value.code == 307 and redirect.value.headers["Location"] == "/auth/login"
    _, login = local_login.read_login_file(login_server.login_file)
    token = AirflowApi(login_server.url, login).token()
    assert _status(f"{login_server.url}/api/v2/dags", headers={"Cookie": f"_token={token}"}) == 200


# Signed by the api-server's auth manager with its JWT secret, 10 minutes past its expiry.
EXPIRED_TOKEN = """
from airflow.api_fastapi.app import create_auth_manager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
user = SimpleAuthManagerUser(username="admin", role="ADMIN")
print(create_auth_manager().generate_jwt(user, expiration_time_in_seconds=-600))
"""


def test_an_expired_token_is_renewed_by_the_client(login_server):
    _, login = local_login.read_login_file(login_server.login_file)
    signed = subprocess.run(
        [sys.executable, "-c", EXPIRED_TOKEN], env=login_server.env, capture_output=True, text=True, timeout=120
    )
    assert signed.returncode == 0, signed.stderr[-2000:]
    expired = signed.stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {expired}"}
    assert _status(f"{login_server.url}/api/v2/pools", headers=headers) == 401
    api = AirflowApi(login_server.url, login)
    api._token = expired
    assert api.pool("default_pool")["name"] == "default_pool"
    assert api._token != expired


def test_airflow_printed_no_password_and_generated_none(login_server):
    """Every user has a password in the Secret: Airflow's start-up generates (and prints) one only otherwise."""
    log = login_server.log.read_text(errors="replace")
    assert "Password for user" not in log
    for user in json.loads(login_server.login_file.read_text())["users"]:
        assert user["password"] not in log


# What the dag-processor records for a DAG file that does not import (the API needs a login to list it).
IMPORT_ERROR = """
from airflow.models.errors import ParseImportError
from airflow.utils import timezone
from airflow.utils.session import create_session
with create_session() as session:
    session.add(ParseImportError(filename="probe.py", bundle_name="dags-folder", stacktrace="probe: no DAG",
                                 timestamp=timezone.utcnow()))
"""


def test_the_cli_runs_the_pipelines_with_the_login_file_and_without_it_is_refused(login_server):
    """`eksflow pipelines --login <file>` logs in (here it stops at once at the import error it may now read);
    `--api-url` alone, the kind path without login, gets 401; neither or both is a usage error."""
    recorded = subprocess.run(
        [sys.executable, "-c", IMPORT_ERROR], env=login_server.env, capture_output=True, text=True
    )
    assert recorded.returncode == 0, recorded.stderr[-2000:]
    cli = [sys.executable, "-m", "eksflow.cli", "pipelines"]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*cli, *args], capture_output=True, text=True, timeout=120, check=False)

    logged_in = run("--login", str(login_server.login_file))
    assert logged_in.returncode == 1 and "DAG import errors:\nprobe.py: probe: no DAG" in logged_in.stderr
    anonymous = run("--api-url", login_server.url)
    assert anonymous.returncode == 1 and "HTTP 401" in anonymous.stderr, anonymous.stderr
    for args in ((), ("--api-url", login_server.url, "--login", str(login_server.login_file))):
        usage = run(*args)
        assert usage.returncode == 2 and "one of --api-url" in usage.stderr and "--login" in usage.stderr
    missing = run("--login", str(login_server.login_file.with_name("absent.json")))
    assert missing.returncode == 2 and "no login file" in missing.stderr

"""The local stack's Airflow login (issue 12 row 17). The chart runs the simple auth manager with a login
(auth.simple in values-local.yaml: the users, and the Secret holding Airflow's passwords file); at each start the
stack generates a new random password per user, creates that Secret through the Kubernetes API, and writes the
login to a file of mode 0600 in its state folder, for the person at the keyboard (`make up` prints where) and for
its own API client. The password is never in git, values, a command line or a log; `make down` removes the file.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml

from eksflow_dev.local.api import Login

LOGIN_FILE = "airflow-login.json"
CHART_DEFAULTS = Path(__file__).resolve().parents[3] / "helm" / "eksflow" / "values.yaml"


@dataclass(frozen=True)
class ChartLogin:
    """What the chart reads: the Secret, its key, and the users (username -> role)."""

    secret: str
    key: str
    users: dict[str, str]


def _merge(base: dict, layer: dict) -> dict:
    """helm's merge of values files: maps merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in layer.items():
        merged[key] = (
            _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


def chart_login(value_files: list[Path]) -> ChartLogin | None:
    """auth as the chart gets it from values.yaml and `value_files` (in helm's order); None when the chart runs no
    login (the AWS auth manager, or the simple one with every visitor an admin)."""
    values: dict = {}
    for path in (CHART_DEFAULTS, *value_files):
        values = _merge(values, yaml.safe_load(Path(path).read_text()) or {})
    auth = values["auth"]
    simple = auth["simple"]
    if auth["manager"] != "simple" or not simple["passwordsSecret"]:
        return None
    users = dict(user.split(":", 1) for user in simple["users"])
    return ChartLogin(simple["passwordsSecret"], simple["passwordsSecretKey"], users)


def new_passwords(login: ChartLogin) -> dict[str, str]:
    """A new random password per user: Airflow's passwords file (a user without one would get a password Airflow
    generates and prints to the api-server's log)."""
    return {user: secrets.token_urlsafe(24) for user in login.users}


def secret_data(login: ChartLogin, passwords: dict[str, str]) -> dict[str, str]:
    """The Secret's stringData: the passwords file under the key the chart reads."""
    return {login.key: json.dumps(passwords)}


def write_login_file(path: Path, url: str, login: ChartLogin, passwords: dict[str, str]) -> None:
    """The login for people and the stack's client, mode 0600 from its creation."""
    users = [{"username": u, "role": role, "password": passwords[u]} for u, role in login.users.items()]
    text = json.dumps({"url": url, "login_url": f"{url}/auth/login", "users": users}, indent=2) + "\n"
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def read_login_file(path: Path) -> tuple[str, Login]:
    """The API URL and the login of its first ADMIN user (else its first user) from a login file."""
    try:
        content = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no login file; it exists while `make up` runs (eksflow up writes it)") from None
    users = content["users"]
    user = next((u for u in users if u["role"].upper() == "ADMIN"), users[0])
    return content["url"], Login(user["username"], user["password"])

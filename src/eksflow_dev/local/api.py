"""A small client for the local Airflow REST API (v2), reached through a port-forward on 127.0.0.1. With a `Login`
(the local cluster: the chart's simple auth manager with a password generated per start, eksflow_dev.cluster.login)
it takes a token from the auth manager's /auth/token and sends it as a bearer token, taking a new one when the
api-server answers 401 (expired); without one (kind's all-admins values) it sends no credentials."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Login:
    username: str
    password: str = field(repr=False)  # never printed (tracebacks, test reports)


class AirflowApi:
    def __init__(self, base_url: str, login: Login | None = None):
        self.base_url = base_url.rstrip("/")
        self.login = login
        self._token: str | None = None

    def token(self) -> str:
        """A new access token for `login` from the simple auth manager (POST /auth/token, JSON body)."""
        if self.login is None:
            raise RuntimeError(f"no login for {self.base_url}: give AirflowApi a Login")
        body = json.dumps({"username": self.login.username, "password": self.login.password}).encode()
        req = urllib.request.Request(  # noqa: S310 - loopback only
            f"{self.base_url}/auth/token", data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310
                return json.loads(response.read())["access_token"]
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise RuntimeError(
                f"login to {self.base_url} as {self.login.username!r} refused: HTTP {error.code}: {detail}"
            ) from None

    def _send(self, method: str, path: str, data: bytes | None) -> bytes:
        headers = {"Content-Type": "application/json"}
        if self.login is not None:
            self._token = self._token or self.token()
            headers["Authorization"] = f"Bearer {self._token}"
        req = urllib.request.Request(  # noqa: S310 - loopback only
            f"{self.base_url}/api/v2{path}", data=data, method=method, headers=headers
        )
        with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310
            return response.read()

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        try:
            try:
                payload = self._send(method, path, data)
            except urllib.error.HTTPError as error:
                if error.code != 401 or self.login is None:
                    raise
                self._token = None  # expired ([api_auth] jwt_expiration_time): log in again, once
                payload = self._send(method, path, data)
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path}: HTTP {error.code}: {error.read().decode(errors='replace')}") from None
        return json.loads(payload) if payload else None

    def dag_ids(self) -> set[str]:
        return {d["dag_id"] for d in self.request("GET", "/dags?limit=100")["dags"]}

    def import_errors(self) -> list[dict]:
        return self.request("GET", "/importErrors")["import_errors"]

    def wait_for_dags(self, dag_ids: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            errors = self.import_errors()
            if errors:
                details = "\n".join(f"{e['filename']}: {e['stack_trace']}" for e in errors)
                raise RuntimeError(f"DAG import errors:\n{details}")
            if dag_ids <= self.dag_ids():
                return
            time.sleep(0.5)
        raise TimeoutError(f"DAGs {sorted(dag_ids - self.dag_ids())} not parsed after {timeout:.0f}s")

    def pool(self, name: str) -> dict:
        return self.request("GET", f"/pools/{urllib.request.quote(name, safe='')}")

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        run = self.request("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        return run["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns?order_by=-run_after&limit=20")["dag_runs"]

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}/taskInstances?limit=1000"
        return self.request("GET", path)["task_instances"]

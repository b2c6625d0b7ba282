"""A small client for the local Airflow REST API (v2). The chart on the local cluster uses the simple auth manager
in all-admins mode (values-local.yaml), so requests need no token; the API is reached through a port-forward
on 127.0.0.1."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any


class AirflowApi:
    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(  # noqa: S310 - loopback only
            f"{self.base_url}/api/v2{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310
                payload = response.read()
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

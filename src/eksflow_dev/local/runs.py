"""Waiting for DAG runs through the Airflow REST API of a running platform (the local cluster's, or any with an
`api` (eksflow_dev.local.api.AirflowApi) and a `check_alive()` that raises when a part of it died)."""

from __future__ import annotations

import time


def wait_for_run(stack, dag_id: str, run_id: str, timeout: float, progress=print) -> dict:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        stack.check_alive()
        run = stack.api.run(dag_id, run_id)
        tis = stack.api.task_instances(dag_id, run_id)
        counts: dict[str, int] = {}
        for ti in tis:
            counts[ti["state"] or "none"] = counts.get(ti["state"] or "none", 0) + 1
        line = f"  {dag_id}: {run['state']:<8} " + " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        if line != last:
            progress(line)
            last = line
        if run["state"] in {"success", "failed"}:
            return run
        time.sleep(1)
    raise TimeoutError(f"{dag_id} run {run_id} did not finish in {timeout:.0f}s")


def wait_for_new_run(stack, dag_id: str, known: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        for run in stack.api.runs(dag_id):
            if run["dag_run_id"] not in known:
                return run["dag_run_id"]
        time.sleep(1)
    raise TimeoutError(f"no new run of {dag_id} within {timeout:.0f}s")

"""``make demo``: run the three reference pipelines end to end on the local cluster, in order
(data -> ML via the Asset -> housekeeping), then print a summary table and stop everything."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from eksflow_dev.local.api import AirflowApi, Login
from eksflow_dev.local.runs import wait_for_new_run, wait_for_run

DATA_DAG, ML_DAG, HOUSEKEEPING_DAG = "batch_data_pipeline", "ml_pipeline", "aws_housekeeping"
REFERENCE_DAGS = {DATA_DAG, ML_DAG, HOUSEKEEPING_DAG}
DEMO_CONF = {
    DATA_DAG: {"partitions": 4, "day": "2026-11-28"},
    # The seed holds exactly the resources housekeeping should act on; the demo lets it act.
    HOUSEKEEPING_DAG: {"dry_run_terminate": False, "dry_run_delete": False},
}


@dataclass
class DemoResult:
    runs: dict[str, dict] = field(default_factory=dict)  # dag_id -> run
    task_instances: dict[str, list[dict]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return len(self.runs) == len(REFERENCE_DAGS) and all(r["state"] == "success" for r in self.runs.values())


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _duration(ti: dict) -> float | None:
    if ti.get("duration") is not None:
        return float(ti["duration"])
    if ti.get("start_date") and ti.get("end_date"):
        start = datetime.fromisoformat(ti["start_date"])
        return (datetime.fromisoformat(ti["end_date"]) - start).total_seconds()
    return None


def summary_table(result: DemoResult) -> str:
    rows = [("DAG", "task", "state", "duration")]
    for dag_id in (DATA_DAG, ML_DAG, HOUSEKEEPING_DAG):
        for ti in sorted(result.task_instances.get(dag_id, []), key=lambda t: (t["start_date"] or "", t["map_index"])):
            task = ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else "")
            seconds = _duration(ti)
            rows.append((dag_id, task, ti["state"] or "none", f"{seconds:.1f}s" if seconds is not None else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@dataclass
class RemoteAirflow:
    """An Airflow this process did not start (kind through kubectl port-forward, or `make up`'s with its login):
    only its API."""

    api_url: str
    login: Login | None = None

    @cached_property
    def api(self) -> AirflowApi:
        return AirflowApi(self.api_url, self.login)

    def check_alive(self) -> None:
        """Its processes are not ours to watch; an unreachable API fails the next request."""


def run_pipelines(stack, *, timeout: float = 600, progress=print) -> DemoResult:
    """The reference pipelines in order on `stack` (a ClusterStack or a RemoteAirflow: its `api` and
    `check_alive`)."""
    result = DemoResult()
    api = stack.api
    api.wait_for_dags(REFERENCE_DAGS, timeout=300)
    for dag_id in sorted(REFERENCE_DAGS):
        api.unpause(dag_id)
    known_ml = {r["dag_run_id"] for r in api.runs(ML_DAG)}

    def finish(dag_id: str, run_id: str) -> bool:
        result.runs[dag_id] = wait_for_run(stack, dag_id, run_id, timeout, progress)
        result.task_instances[dag_id] = api.task_instances(dag_id, run_id)
        return result.runs[dag_id]["state"] == "success"

    def trigger(dag_id: str) -> str:
        progress(f"triggering {dag_id} {DEMO_CONF[dag_id]}")
        return api.trigger(dag_id, DEMO_CONF[dag_id])

    if not finish(DATA_DAG, trigger(DATA_DAG)):
        return result
    progress(f"waiting for {ML_DAG}, scheduled by the curated_events Asset")
    if not finish(ML_DAG, wait_for_new_run(stack, ML_DAG, known_ml, timeout=120)):
        return result
    finish(HOUSEKEEPING_DAG, trigger(HOUSEKEEPING_DAG))
    return result


def demo(stack, *, progress=print) -> DemoResult:
    """Start `stack` (the chart on the local cluster: eksflow_dev.cluster.stack.ClusterStack), run the pipelines,
    stop it."""
    started = time.monotonic()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        stack.start(progress=progress)
        result = run_pipelines(stack, progress=progress)
    except BaseException:
        progress(f"demo failed; component logs are in {stack.log_dir}")
        raise
    finally:
        progress("stopping the local cluster")
        stack.stop()
        signal.signal(signal.SIGTERM, previous)
    result.seconds = time.monotonic() - started
    return result

"""``make bench`` (AWS part): what waiting for AWS costs in worker pods, measured on real local stacks.

- **Worker pod-time.** The data and ML pipelines run with every emulated AWS job (ECS task, training job,
  endpoint create/update) taking S1 and then S2 seconds, on two stacks side by side: deferrable (the
  platform's default) and non-deferrable (``EKSFLOW_DEFERRABLE=off``). A task's worker process is what a
  worker pod is on EKS; its lifetime is sampled from the process table. Per mode: Σ worker seconds of the
  AWS-job tasks, pipeline wall time, the slope (extra worker seconds per AWS job per extra second of job
  time) and the fixed worker overhead per AWS job (the intercept). Goal: slope <= 0.05, overhead <= 15 s.
- **AWS calls per job-minute while waiting** (polling cost, throttling risk): measured here, and the
  configured poll intervals of the platform vs. the provider's defaults.
- **Task memory.** Peak RSS of each task process, per role, with the pod templates' requests/limits.
- **Fan-out.** The data pipeline at 10 and 200 partitions: wall time, peak concurrent task processes
  (worker pods), peak ECS tasks in flight (occupied slots of the ``ecs_runtask`` pool, sized below the
  DAG's own ``max_active_tis_per_dag`` so that the pool is the ceiling) and the peak ECS RunTask calls per
  second, which the pool bounds.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from eksflow.platform import ECS_RUNTASK_POOL, ECS_RUNTASK_POOL_SLOTS
from eksflow_dev.emulator.control import control
from eksflow_dev.local.api import AirflowApi
from eksflow_dev.local.demo import DATA_DAG, HOUSEKEEPING_DAG, ML_DAG
from eksflow_dev.local.processes import reset_state
from eksflow_dev.local.runs import wait_for_new_run, wait_for_run
from eksflow_dev.local.stack import REPO_ROOT, LocalStack, StackOptions

SLOPE_GOAL = 0.05
OVERHEAD_GOAL_S = 15.0
# Tasks whose work is one AWS job the task waits for; their worker time is what deferral saves.
AWS_JOB_TASKS = {"transform_partition", "merge_partitions", "train", "deploy_endpoint"}
AWS_JOB_CALLS = ("ecs:RunTask", "sagemaker:CreateTrainingJob", "sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint")
STATUS_CALLS = ("ecs:DescribeTasks", "sagemaker:DescribeTrainingJob", "sagemaker:DescribeEndpoint")
_WORKER_TITLE = re.compile(r"airflow worker -- ([0-9a-f]{8}-[0-9a-f-]{27})")
QUIET = lambda _: None  # noqa: E731
POOL_SAMPLE_EVERY = 5  # tracker intervals between samples of the ECS pool (an API call)


@dataclass
class WorkerLife:
    ti_id: str
    first: float
    last: float
    peak_rss: int = 0
    supervisor_rss: int = 0  # the process that forked the task runner; on EKS it shares the pod


@dataclass
class WorkerTracker:
    """Samples the task processes ("airflow worker -- <task instance id>") under one stack's scheduler."""

    root_pid: int
    api: AirflowApi  # the ECS pool's occupied slots are sampled every POOL_SAMPLE_EVERY intervals
    interval: float = 0.1
    lives: dict[int, WorkerLife] = field(default_factory=dict)
    peak_concurrency: int = 0
    peak_pool_occupied: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def reset(self) -> None:
        self.lives.clear()
        self.peak_concurrency = 0
        self.peak_pool_occupied = 0

    def _run(self) -> None:
        tick = 0
        while not self._stop.is_set():
            now, alive, tick = time.monotonic(), 0, tick + 1
            if tick % POOL_SAMPLE_EVERY == 0:
                with contextlib.suppress(RuntimeError, OSError):
                    occupied = self.api.pool(ECS_RUNTASK_POOL)["occupied_slots"]
                    self.peak_pool_occupied = max(self.peak_pool_occupied, occupied)
            try:
                children = psutil.Process(self.root_pid).children(recursive=True)
            except psutil.NoSuchProcess:
                return
            for process in children:
                try:
                    match = _WORKER_TITLE.search(" ".join(process.cmdline()))
                    if not match:
                        continue
                    rss = process.memory_info().rss
                    parent = process.parent()
                    supervisor_rss = parent.memory_info().rss if parent else 0
                except psutil.Error:
                    continue
                alive += 1
                life = self.lives.setdefault(process.pid, WorkerLife(match[1], now, now))
                life.last, life.peak_rss = now, max(life.peak_rss, rss)
                life.supervisor_rss = max(life.supervisor_rss, supervisor_rss)
            self.peak_concurrency = max(self.peak_concurrency, alive)
            time.sleep(self.interval)


@dataclass
class Measurement:
    job_seconds: float
    wall: float
    aws_jobs: int
    job_worker_seconds: float
    status_calls: int
    peak_workers: int
    rss_by_task: dict[str, tuple[int, int]]
    runtask_times: list[float] = field(default_factory=list)
    peak_pool_occupied: int = 0


def _task_ids(stack: LocalStack, runs: dict[str, str]) -> dict[str, str]:
    """task instance id -> task id, over the given runs."""
    ids = {}
    for dag_id, run_id in runs.items():
        for ti in stack.api.task_instances(dag_id, run_id):
            ids[ti["id"]] = ti["task_id"]
    return ids


def _start_stack(
    state_dir: Path, deferrable: bool, ecs_pool_slots: int = ECS_RUNTASK_POOL_SLOTS
) -> tuple[LocalStack, WorkerTracker]:
    reset_state(state_dir)
    stack = LocalStack(
        StackOptions(
            state_dir=state_dir,
            parallelism=32,
            ecs_pool_slots=ecs_pool_slots,
            extra_env={"EKSFLOW_DEFERRABLE": "on" if deferrable else "off"},
        )
    )
    stack.start(progress=QUIET)
    stack.api.wait_for_dags({DATA_DAG, ML_DAG, HOUSEKEEPING_DAG}, timeout=300)
    for dag_id in (DATA_DAG, ML_DAG, HOUSEKEEPING_DAG):
        stack.api.unpause(dag_id)
    scheduler = next(m for m in stack.processes if m.name == "scheduler")
    tracker = WorkerTracker(scheduler.process.pid, stack.api)
    tracker.start()
    return stack, tracker


def run_pipelines_once(
    stack: LocalStack,
    tracker: WorkerTracker,
    job_seconds: float,
    partitions: int,
    with_ml: bool = True,
    with_housekeeping: bool = False,
) -> Measurement:
    control(stack.emulator_url, "job-seconds", str(job_seconds))
    control(stack.emulator_url, "stats/reset", "")
    tracker.reset()
    known_ml = {r["dag_run_id"] for r in stack.api.runs(ML_DAG)}
    started = time.monotonic()
    runs = {DATA_DAG: stack.api.trigger(DATA_DAG, {"partitions": partitions, "day": "2026-11-28"})}
    if wait_for_run(stack, DATA_DAG, runs[DATA_DAG], timeout=3600, progress=QUIET)["state"] != "success":
        raise RuntimeError(f"{DATA_DAG} failed at job seconds {job_seconds}")
    if with_ml:
        runs[ML_DAG] = wait_for_new_run(stack, ML_DAG, known_ml, timeout=300)
        if wait_for_run(stack, ML_DAG, runs[ML_DAG], timeout=3600, progress=QUIET)["state"] != "success":
            raise RuntimeError(f"{ML_DAG} failed at job seconds {job_seconds}")
    if with_housekeeping:  # no AWS waits; run for its role's memory figure
        runs[HOUSEKEEPING_DAG] = stack.api.trigger(HOUSEKEEPING_DAG, {})
        wait_for_run(stack, HOUSEKEEPING_DAG, runs[HOUSEKEEPING_DAG], timeout=600, progress=QUIET)
    wall = time.monotonic() - started
    stats = control(stack.emulator_url, "stats")
    tasks = _task_ids(stack, runs)
    job_lives = [life for life in tracker.lives.values() if tasks.get(life.ti_id) in AWS_JOB_TASKS]
    rss: dict[str, tuple[int, int]] = {}  # task -> (runner peak, its supervisor's peak)
    for life in tracker.lives.values():
        task = tasks.get(life.ti_id, "?")
        runner, supervisor = rss.get(task, (0, 0))
        rss[task] = (max(runner, life.peak_rss), max(supervisor, life.supervisor_rss))
    return Measurement(
        job_seconds=job_seconds,
        wall=wall,
        aws_jobs=sum(stats["calls"].get(call, 0) for call in AWS_JOB_CALLS),
        job_worker_seconds=sum(life.last - life.first for life in job_lives),
        status_calls=sum(stats["calls"].get(call, 0) for call in STATUS_CALLS),
        peak_workers=tracker.peak_concurrency,
        rss_by_task=rss,
        runtask_times=stats.get("timeline", {}).get("ecs:RunTask", []),
        peak_pool_occupied=tracker.peak_pool_occupied,
    )


def slope_and_overhead(low: Measurement, high: Measurement) -> tuple[float, float]:
    jobs = max(low.aws_jobs, 1)
    slope = (high.job_worker_seconds - low.job_worker_seconds) / (jobs * (high.job_seconds - low.job_seconds))
    overhead = low.job_worker_seconds / jobs - slope * low.job_seconds
    return slope, overhead


def pod_time(state_root: Path, scales: tuple[float, float], partitions: int) -> dict[str, list[Measurement]]:
    """Per mode: a warm-up run (first parses and imports; all three pipelines, for the memory table), then the
    two measured scales."""

    def mode(deferrable: bool) -> list[Measurement]:
        stack, tracker = _start_stack(state_root / ("deferrable" if deferrable else "non-deferrable"), deferrable)
        try:
            warm_up = run_pipelines_once(stack, tracker, 1, partitions, with_housekeeping=True)
            return [warm_up, *(run_pipelines_once(stack, tracker, seconds, partitions) for seconds in scales)]
        finally:
            tracker.stop()
            stack.stop()

    with ThreadPoolExecutor(max_workers=2) as pool:
        deferred, polling = pool.submit(mode, True), pool.submit(mode, False)
        return {"deferrable": deferred.result(), "non-deferrable": polling.result()}


def fan_out(
    state_root: Path, sizes: tuple[int, ...], pool_slots: int, job_seconds: float = 5.0
) -> list[tuple[int, Measurement]]:
    stack, tracker = _start_stack(state_root / "fan-out", deferrable=True, ecs_pool_slots=pool_slots)
    try:
        return [(size, run_pipelines_once(stack, tracker, job_seconds, size, with_ml=False)) for size in sizes]
    finally:
        tracker.stop()
        stack.stop()


def peak_rate(times: list[float], window: float = 1.0) -> int:
    ordered, best, start = sorted(times), 0, 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def poll_intervals() -> list[tuple[str, float, float]]:
    """(wait, the platform's seconds between status calls, the provider's default)."""
    from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerEndpointOperator, SageMakerTrainingOperator

    from eksflow.kit.defaults import WAITER_DELAY_SECONDS

    def default(cls, name: str) -> float:
        return float(inspect.signature(cls.__init__).parameters[name].default)

    return [
        ("ECS task", WAITER_DELAY_SECONDS, default(EcsRunTaskOperator, "waiter_delay")),
        ("SageMaker training", WAITER_DELAY_SECONDS, default(SageMakerTrainingOperator, "check_interval")),
        ("SageMaker endpoint", WAITER_DELAY_SECONDS, default(SageMakerEndpointOperator, "check_interval")),
    ]


def task_roles() -> dict[str, str]:
    """task id -> role of the reference DAGs (their pod templates)."""
    import os

    from airflow.dag_processing.dagbag import DagBag

    from eksflow.roles import role_for_pod_template

    os.environ.setdefault("EKSFLOW_ECS_SUBNETS", "subnet-0a")
    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    return {
        task.task_id: role_for_pod_template(task.executor_config["pod_template_file"]).name
        for dag in bag.dags.values()
        for task in dag.tasks
    }


def report(pods: dict[str, list[Measurement]], fans: list[tuple[int, Measurement]], pool_slots: int) -> str:
    """The bench tables; sections without measurements are left out."""
    lines: list[str] = []
    slopes = _pod_time_lines(pods, lines) if pods else {}
    if pods:
        _memory_lines(pods, lines)
    if fans:
        _fan_out_lines(fans, pool_slots, lines)
    if slopes:
        lines += ["", f"pod-time slope: deferrable={slopes['deferrable'][0]:.3f} "
                  f"non-deferrable={slopes['non-deferrable'][0]:.3f}"]  # fmt: skip
    return "\n".join(lines)


def _pod_time_lines(pods: dict[str, list[Measurement]], lines: list[str]) -> dict[str, tuple[float, float]]:
    lines += ["", "worker pod-time (AWS-job tasks; a task process = a worker pod on EKS)"]
    lines.append(f"{'mode':<16}{'job s':>7}{'jobs':>6}{'Σ worker s':>12}{'wall s':>9}{'status calls/job-min':>22}")
    slopes = {}
    for mode, (_, low, high) in pods.items():
        for m in (low, high):
            job_minutes = max(m.aws_jobs * m.job_seconds / 60, 1e-9)
            lines.append(
                f"{mode:<16}{m.job_seconds:>7.0f}{m.aws_jobs:>6}{m.job_worker_seconds:>12.1f}{m.wall:>9.1f}"
                f"{m.status_calls / job_minutes:>22.1f}"
            )
        slopes[mode] = slope_and_overhead(low, high)
    for mode, (slope, overhead) in slopes.items():
        verdict = "ok" if mode != "deferrable" or (slope <= SLOPE_GOAL and overhead <= OVERHEAD_GOAL_S) else "OVER"
        lines.append(
            f"{mode}: slope {slope:.3f} worker s per job s (goal <= {SLOPE_GOAL} deferrable), "
            f"fixed overhead {overhead:.1f} s per AWS job (goal <= {OVERHEAD_GOAL_S:.0f} s) {verdict}"
        )
    lines.append("")
    lines.append("status polling: seconds between calls per waiting job (platform vs provider default)")
    for wait, ours, provider in poll_intervals():
        rate = lambda seconds: f"{seconds:>5.0f}s = {60 / seconds:>4.1f}/min"  # noqa: E731
        lines.append(f"  {wait:<20} ours {rate(ours)}   provider default {rate(provider)}")
    lines.append("  (measured above with the local stack's 2 s poll interval)")
    return slopes


def _memory_lines(pods: dict[str, list[Measurement]], lines: list[str]) -> None:
    from eksflow.roles import ROLES

    roles = task_roles()
    peak: dict[str, tuple[int, int]] = {}
    for measurements in pods.values():
        for m in measurements:
            for task, (runner, supervisor) in m.rss_by_task.items():
                role = roles.get(task)
                if role:
                    old_runner, old_supervisor = peak.get(role, (0, 0))
                    peak[role] = (max(old_runner, runner), max(old_supervisor, supervisor))
    lines += ["", "task memory per role: peak RSS of the task runner and of its supervisor (one worker pod on EKS;"]
    lines.append("their sum counts pages shared since the fork twice, so it is an upper bound) vs the pod template")
    lines.append(f"{'role':<18}{'runner':>9}{'supervisor':>12}{'sum +30%':>10}{'request':>9}{'limit':>8}  verdict")
    for role, (runner, supervisor) in sorted(peak.items()):
        resources = ROLES[role].resources
        need = (runner + supervisor) * 1.3 / 2**20
        verdict = "ok" if need <= _mebibytes(resources.memory_limit) else "RAISE THE LIMIT"
        request, limit = resources.memory_request, resources.memory_limit
        mib = lambda value: f"{value / 2**20:.0f}Mi"  # noqa: E731
        lines.append(f"{role:<18}{mib(runner):>9}{mib(supervisor):>12}{need:>8.0f}Mi{request:>9}{limit:>8}  {verdict}")


def _fan_out_lines(fans: list[tuple[int, Measurement]], pool_slots: int, lines: list[str]) -> None:
    lines += ["", f"fan-out (data pipeline, deferrable, 5 s ECS tasks, pool {ECS_RUNTASK_POOL}: {pool_slots} slots)"]
    lines.append(
        f"{'partitions':>10}{'wall s':>9}{'peak task processes':>21}{'peak ECS in flight':>20}{'peak RunTask/s':>16}"
    )
    for size, m in fans:
        verdict = "ok" if 0 < m.peak_pool_occupied <= pool_slots else "NOT HELD BY THE POOL"
        lines.append(
            f"{size:>10}{m.wall:>9.1f}{m.peak_workers:>21}{m.peak_pool_occupied:>20}"
            f"{peak_rate(m.runtask_times):>16}  {verdict}"
        )


def _mebibytes(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    return float(quantity) / 2**20


def run(scales: tuple[float, float] | None, partitions: int, fan_sizes: tuple[int, ...], pool_slots: int) -> str:
    """``scales`` None: no pod-time runs (fan-out only)."""
    state_root = REPO_ROOT / ".eksflow" / "bench-aws"
    pods = pod_time(state_root, scales, partitions) if scales else {}
    fans = fan_out(state_root, fan_sizes, pool_slots) if fan_sizes else []
    text = report(pods, fans, pool_slots)
    measured = {
        "pod_time": {mode: [m.__dict__ for m in ms] for mode, ms in pods.items()},
        "fan_out": {"pool_slots": pool_slots, "runs": {size: m.__dict__ for size, m in fans}},
    }
    (state_root / "report.json").write_text(json.dumps(measured, indent=2, default=str))
    return text

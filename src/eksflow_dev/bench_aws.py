"""``make bench`` (AWS part): what waiting for AWS costs in worker pods, measured on the chart on the local
cluster (eksflow_dev.cluster.stack.ClusterStack: the KubernetesExecutor makes one real worker pod per task).

One cluster serves the whole AWS part; ``helm upgrade`` switches it between configurations (one values layer
after values-local.yaml): deferrable (the platform's default), non-deferrable (``EKSFLOW_DEFERRABLE=off`` in
every Airflow container and worker pod, through the chart's ``extraEnv``), and the fan-out's ECS pool size. The
modes run one after the other, not side by side: local clusters can run at once (the test suites run several),
but on a small machine (2 cores) each would slow the other's worker pods and so the figures. One after the
other, a machine whose load changes between the modes skews their comparison: measure on a quiet machine.
Worker pods are kept after success (``airflow.kubernetesExecutor.deleteWorkerPodsOnSuccess: false``) until
measured, then deleted.

- **Worker pod-time.** The data and ML pipelines run with every emulated AWS job (ECS task, training job,
  endpoint create/update) taking S1 and then S2 seconds, per mode. A worker pod's lifetime is read from its
  API status: ``status.startTime`` (the node took the pod: from then on it holds its requests) to the
  ``finishedAt`` of its ``base`` container (the task runner exited). Not ``creationTimestamp``: a pod waiting
  for a node is queueing, not costing a node, and its wait depends on the cluster, not on the task. Both
  stamps have whole seconds, as in Kubernetes. Pods are matched to tasks by the annotations the
  KubernetesExecutor sets (``dag_id``, ``task_id``, ``run_id``: raw values; the labels are sanitized), over
  the measured runs; a deferred task has a pod before and one after its wait. Per mode: Σ pod seconds of the
  AWS-job tasks, pipeline wall time, the slope (extra worker seconds per AWS job per extra second of job
  time) and the fixed worker overhead per AWS job (the intercept). Goal: slope <= 0.05, overhead <= 15 s.
  An emulated ECS task advances one state per status read (4 to STOPPED), so it lasts at least 4 polls (~8 s
  at the local 2 s): job seconds below that do not shorten ECS tasks.
- **AWS calls per job-minute while waiting** (polling cost, throttling risk): the emulator's call counts, and
  the configured poll intervals of the platform vs. the provider's defaults.
- **Task memory.** The peak memory of each worker pod's container: ``memory.max_usage_in_bytes`` of its
  cgroup v1 memory cgroup on the node (supervisor and task runner together, shared pages counted once, as
  the limit counts them), sampled while the container runs; the container's cgroup is found by the pod
  name in its processes' ``HOSTNAME``. Per role (the pod's ``eksflow.io/role`` label), with the pod
  template's request and limit.
- **Fan-out.** The data pipeline at 10 and 200 partitions: wall time, peak concurrent worker pods (the
  maximum overlap of their lifetimes), peak ECS tasks in flight (occupied slots of the ``ecs_runtask`` pool,
  sampled through the API; sized below the DAG's own ``max_active_tis_per_dag`` so that the pool is the
  ceiling) and the peak ECS RunTask calls per second, which the pool bounds.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path

import yaml

from eksflow.platform import ECS_RUNTASK_POOL, ECS_RUNTASK_POOL_SLOTS, NAMESPACE, ROLE_LABEL
from eksflow_dev.cluster.cluster import REPO
from eksflow_dev.cluster.node.runtime import memory_cgroup_base
from eksflow_dev.cluster.stack import LOCAL_VALUES, ClusterStack
from eksflow_dev.emulator.control import control
from eksflow_dev.local.demo import DATA_DAG, HOUSEKEEPING_DAG, ML_DAG
from eksflow_dev.local.processes import reset_state
from eksflow_dev.local.runs import wait_for_new_run, wait_for_run

SLOPE_GOAL = 0.05
OVERHEAD_GOAL_S = 15.0
# Tasks whose work is one AWS job the task waits for; their worker time is what deferral saves.
AWS_JOB_TASKS = {"transform_partition", "merge_partitions", "train", "deploy_endpoint"}
AWS_JOB_CALLS = ("ecs:RunTask", "sagemaker:CreateTrainingJob", "sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint")
STATUS_CALLS = ("ecs:DescribeTasks", "sagemaker:DescribeTrainingJob", "sagemaker:DescribeEndpoint")
# Task instances running at once: the DAG's own max_active_tis_per_dag (16), above the fan-out's pool slots so
# that the pool is the ceiling there (values-local.yaml's 8 would tie with an 8-slot pool).
BENCH_PARALLELISM = 16
WORKER_SELECTOR = "kubernetes_executor=True"  # the label the KubernetesExecutor puts on its worker pods
WORKER_CONTAINER = "base"  # the task runner's container in a worker pod
MEMORY_SAMPLE_SECONDS = 0.5
POOL_SAMPLE_SECONDS = 1.0


_STARTED = time.monotonic()


def progress(message: str) -> None:
    minutes, seconds = divmod(int(time.monotonic() - _STARTED), 60)
    print(f"bench [{minutes:>3}:{seconds:02}] {message}", file=sys.stderr, flush=True)


QUIET = lambda _: None  # noqa: E731


# ---------------------------------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class Config:
    deferrable: bool = True
    pool_slots: int = ECS_RUNTASK_POOL_SLOTS  # the chart's default unless the fan-out sets it


def values_layer(config: Config) -> str:
    """The bench's values layer, after values-local.yaml and the stack's own layers. Helm replaces lists, so
    ``extraEnv`` is values-local.yaml's list plus EKSFLOW_DEFERRABLE."""
    local_env = yaml.safe_load(LOCAL_VALUES.read_text()).get("extraEnv") or []
    layer = {
        "airflow": {
            "parallelism": BENCH_PARALLELISM,
            "ecsRunTaskPool": {"slots": config.pool_slots},
            "kubernetesExecutor": {"deleteWorkerPodsOnSuccess": False},  # measured, then deleted by the bench
        },
        "extraEnv": [
            *[var for var in local_env if var["name"] != "EKSFLOW_DEFERRABLE"],
            {"name": "EKSFLOW_DEFERRABLE", "value": "on" if config.deferrable else "off"},
        ],
    }
    return "# Written by make bench (eksflow_dev.bench_aws). Do not edit.\n" + yaml.safe_dump(layer, sort_keys=False)


def local_waiter_delay() -> float:
    """The seconds between status calls on the local cluster (values-local.yaml's extraEnv)."""
    env = {var["name"]: var.get("value") for var in yaml.safe_load(LOCAL_VALUES.read_text()).get("extraEnv") or []}
    return float(env["EKSFLOW_WAITER_DELAY_SECONDS"])


# ---------------------------------------------------------------------------------------------------- sampling
def _cgroup_pod(cgroup: Path) -> str | None:
    """The pod a container cgroup belongs to: the HOSTNAME (= pod name) in its processes' environment; None
    before the container's workload runs (its init process has an empty environment) or once it is gone."""
    try:
        pids = (cgroup / "cgroup.procs").read_text().split()
    except OSError:
        return None
    for pid in pids:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        for entry in environ.split(b"\0"):
            if entry.startswith(b"HOSTNAME="):
                return entry.removeprefix(b"HOSTNAME=").decode()
    return None


@dataclass
class Sampler:
    """While the platform runs: the peak memory of every worker container on the node (pod name -> bytes)
    and the ECS pool's occupied slots (peak since the last reset), each in a thread of its own."""

    node_pid: int
    api: object  # eksflow_dev.local.api.AirflowApi
    memory: dict[str, int] = field(default_factory=dict)
    peak_pool_occupied: int = 0
    _pods: dict[Path, str] = field(default_factory=dict)  # container cgroup -> pod name
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        base = memory_cgroup_base(f"eksflow-{self.node_pid}", pid=self.node_pid)
        if base is None:
            progress("no cgroup v1 memory controller: no task memory figures")
        targets = [self._sample_pool] + ([lambda: self._sample_memory(base)] if base is not None else [])
        for target in targets:
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=35)

    def reset(self) -> None:
        self.peak_pool_occupied = 0

    def _sample_pool(self) -> None:
        while not self._stop.wait(POOL_SAMPLE_SECONDS):
            with contextlib.suppress(RuntimeError, OSError, KeyError):
                occupied = self.api.pool(ECS_RUNTASK_POOL)["occupied_slots"]
                self.peak_pool_occupied = max(self.peak_pool_occupied, occupied)

    def _sample_memory(self, base: Path) -> None:
        while not self._stop.wait(MEMORY_SAMPLE_SECONDS):
            try:
                cgroups = [d for d in base.iterdir() if d.name.startswith(f"{WORKER_CONTAINER}-") and d.is_dir()]
            except OSError:
                continue
            for cgroup in cgroups:
                pod = self._pods.get(cgroup) or _cgroup_pod(cgroup)
                if pod is None:
                    continue
                self._pods[cgroup] = pod
                try:  # the cgroup's own peak: read while it exists (the node removes it with the container)
                    peak = int((cgroup / "memory.max_usage_in_bytes").read_text())
                except (OSError, ValueError):
                    continue
                self.memory[pod] = max(self.memory.get(pod, 0), peak)
            for gone in set(self._pods) - set(cgroups):
                del self._pods[gone]


# ---------------------------------------------------------------------------------------------------- worker pods
@dataclass(frozen=True)
class WorkerPod:
    name: str
    dag_id: str
    task_id: str
    run_id: str
    role: str
    start: float  # status.startTime, epoch seconds
    finish: float  # the base container's state.terminated.finishedAt
    memory: int = 0  # peak of its base container's memory cgroup (bytes; 0: not sampled)

    @property
    def seconds(self) -> float:
        return self.finish - self.start


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def worker_pod(pod: dict) -> WorkerPod | None:
    """A worker pod from the API, None while its base container has not terminated."""
    status = pod.get("status") or {}
    base = next((c for c in status.get("containerStatuses") or [] if c.get("name") == WORKER_CONTAINER), {})
    finished = ((base.get("state") or {}).get("terminated") or {}).get("finishedAt")
    if not finished or not status.get("startTime"):
        return None
    meta = pod["metadata"]
    notes = meta.get("annotations") or {}
    return WorkerPod(
        name=meta["name"],
        dag_id=notes["dag_id"],
        task_id=notes["task_id"],
        run_id=notes["run_id"],
        role=(meta.get("labels") or {}).get(ROLE_LABEL, "?"),
        start=_epoch(status["startTime"]),
        finish=_epoch(finished),
    )


def _run_of(pod: dict) -> tuple[str | None, str | None]:
    notes = pod["metadata"].get("annotations") or {}
    return notes.get("dag_id"), notes.get("run_id")


def finished_worker_pods(stack: ClusterStack, runs: dict[str, str], timeout: float = 120) -> list[WorkerPod]:
    """The worker pods of the runs (dag id -> run id), once every one has finished: a task instance is done
    when its runner reports the state, a moment before its process (and so the container) exits."""
    wanted = set(runs.items())
    client = stack.cluster.client("eksflow-bench")
    deadline = time.monotonic() + timeout
    while True:
        pods = client.get(f"/api/v1/namespaces/{NAMESPACE}/pods", labelSelector=WORKER_SELECTOR)["items"]
        ours = [p for p in pods if _run_of(p) in wanted]
        done = [worker_pod(p) for p in ours]
        if all(done):
            return done
        if time.monotonic() > deadline:
            running = [p["metadata"]["name"] for p, w in zip(ours, done, strict=True) if w is None]
            raise RuntimeError(f"worker pods still running {timeout:.0f}s after their runs ended: {running}")
        time.sleep(1)


def peak_overlap(intervals: list[tuple[float, float]]) -> int:
    """Most intervals alive at one moment. Half-open [start, finish): a pod that ends in the second another
    starts is not counted with it; a pod shorter than the stamps' second ([t, t]) counts at t."""
    return max((sum(1 for s, f in intervals if s <= t < f or s == f == t) for t, _ in intervals), default=0)


# ---------------------------------------------------------------------------------------------------- the platform
class BenchPlatform:
    """The chart on one local cluster, re-configured by helm upgrade; worker memory and pool occupancy sampled."""

    def __init__(self, state_dir: Path):
        reset_state(state_dir)
        state_dir.mkdir(parents=True)
        self.layer = state_dir / "bench-values.yaml"
        self.stack = ClusterStack(state_dir / "stack", extra_values=[self.layer])
        self.sampler: Sampler | None = None
        self.config: Config | None = None

    def configure(self, config: Config) -> None:
        if config == self.config:
            return
        self.layer.write_text(values_layer(config))
        if self.config is None:
            progress("starting the local cluster and installing the chart")
            self.stack.start(progress=QUIET)
            api = self.stack.api
            api.wait_for_dags({DATA_DAG, ML_DAG, HOUSEKEEPING_DAG}, timeout=300)
            for dag_id in (DATA_DAG, ML_DAG, HOUSEKEEPING_DAG):
                api.unpause(dag_id)
            self.sampler = Sampler(self.stack.cluster.pids["node"], api)
            self.sampler.start()
        else:
            progress(f"helm upgrade: {config}")
            self.stack.helm_upgrade(self.stack.state_dir / "seeded-values.yaml")
            self._wait_for_old_pods_gone()
        self.config = config

    def _wait_for_old_pods_gone(self, timeout: float = 180) -> None:
        """helm --wait returns once the new pods are ready; the old ones may still be stopping (a scheduler with
        the old settings could still launch tasks)."""
        client = self.stack.cluster.client("eksflow-bench")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pods = client.get(f"/api/v1/namespaces/{NAMESPACE}/pods")["items"]
            if not any(p["metadata"].get("deletionTimestamp") for p in pods):
                return
            time.sleep(1)
        raise TimeoutError(f"pods of the previous configuration still stopping after {timeout:.0f}s")

    def delete_worker_pods(self) -> None:
        """What the cleanup CronJob does on EKS (it does not run locally): measured pods go."""
        client = self.stack.cluster.client("eksflow-bench")
        client.delete(f"/api/v1/namespaces/{NAMESPACE}/pods", labelSelector=WORKER_SELECTOR)

    def stop(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        self.stack.stop()

    def __enter__(self) -> BenchPlatform:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------------- measuring
@dataclass
class Measurement:
    job_seconds: float
    wall: float
    aws_jobs: int
    job_worker_seconds: float  # Σ lifetimes of the AWS-job tasks' worker pods
    status_calls: int
    peak_workers: int  # most worker pods alive at once (all tasks of the runs)
    memory_by_role: dict[str, int]  # role -> peak memory of one worker container (bytes)
    runtask_times: list[float] = field(default_factory=list)
    peak_pool_occupied: int = 0
    job_pods: int = 0  # worker pods of the AWS-job tasks (a deferred task has two)
    pods: list[WorkerPod] = field(default_factory=list)  # all worker pods of the runs (report.json only)


def run_pipelines_once(
    platform: BenchPlatform,
    job_seconds: float,
    partitions: int,
    with_ml: bool = True,
    with_housekeeping: bool = False,
) -> Measurement:
    stack, sampler = platform.stack, platform.sampler
    control(stack.emulator_url, "job-seconds", str(job_seconds))
    control(stack.emulator_url, "stats/reset", "")
    sampler.reset()
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
        if wait_for_run(stack, HOUSEKEEPING_DAG, runs[HOUSEKEEPING_DAG], timeout=600, progress=QUIET)["state"] != (
            "success"
        ):
            raise RuntimeError(f"{HOUSEKEEPING_DAG} failed")
    wall = time.monotonic() - started
    stats = control(stack.emulator_url, "stats")
    pods = [replace(pod, memory=sampler.memory.get(pod.name, 0)) for pod in finished_worker_pods(stack, runs)]
    memory: dict[str, int] = {}
    for pod in pods:
        if pod.memory:
            memory[pod.role] = max(memory.get(pod.role, 0), pod.memory)
    job_pods = [pod for pod in pods if pod.task_id in AWS_JOB_TASKS]
    platform.delete_worker_pods()
    return Measurement(
        job_seconds=job_seconds,
        wall=wall,
        aws_jobs=sum(stats["calls"].get(call, 0) for call in AWS_JOB_CALLS),
        job_worker_seconds=sum(pod.seconds for pod in job_pods),
        status_calls=sum(stats["calls"].get(call, 0) for call in STATUS_CALLS),
        peak_workers=peak_overlap([(pod.start, pod.finish) for pod in pods]),
        memory_by_role=memory,
        runtask_times=stats.get("timeline", {}).get("ecs:RunTask", []),
        peak_pool_occupied=sampler.peak_pool_occupied,
        job_pods=len(job_pods),
        pods=pods,
    )


def slope_and_overhead(low: Measurement, high: Measurement) -> tuple[float, float]:
    jobs = max(low.aws_jobs, 1)
    slope = (high.job_worker_seconds - low.job_worker_seconds) / (jobs * (high.job_seconds - low.job_seconds))
    overhead = low.job_worker_seconds / jobs - slope * low.job_seconds
    return slope, overhead


def pod_time(platform: BenchPlatform, scales: tuple[float, float], partitions: int) -> dict[str, list[Measurement]]:
    """Per mode, one after the other: a warm-up run (all three pipelines, for the memory table), then the two
    measured scales."""
    results = {}
    for mode, deferrable in (("deferrable", True), ("non-deferrable", False)):
        platform.configure(Config(deferrable=deferrable))
        progress(f"{mode}: warm-up run (1 s jobs, all three pipelines)")
        measurements = [run_pipelines_once(platform, 1, partitions, with_housekeeping=True)]
        for seconds in scales:
            progress(f"{mode}: {seconds:g} s jobs")
            measurements.append(run_pipelines_once(platform, seconds, partitions))
        results[mode] = measurements
    return results


def fan_out(
    platform: BenchPlatform, sizes: tuple[int, ...], pool_slots: int, job_seconds: float = 5.0
) -> list[tuple[int, Measurement]]:
    platform.configure(Config(deferrable=True, pool_slots=pool_slots))
    results = []
    for size in sizes:
        progress(f"fan-out: {size} partitions")
        results.append((size, run_pipelines_once(platform, job_seconds, size, with_ml=False)))
    return results


# ---------------------------------------------------------------------------------------------------- report
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
    lines += ["", "worker pod-time (AWS-job tasks: Σ worker pod lifetimes, status.startTime -> base finishedAt)"]
    lines.append(
        f"{'mode':<16}{'job s':>7}{'jobs':>6}{'pods':>6}{'Σ worker s':>12}{'wall s':>9}{'status calls/job-min':>22}"
    )
    slopes = {}
    for mode, (_, low, high) in pods.items():
        for m in (low, high):
            job_minutes = max(m.aws_jobs * m.job_seconds / 60, 1e-9)
            lines.append(
                f"{mode:<16}{m.job_seconds:>7.0f}{m.aws_jobs:>6}{m.job_pods:>6}{m.job_worker_seconds:>12.1f}"
                f"{m.wall:>9.1f}{m.status_calls / job_minutes:>22.1f}"
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
    lines.append(f"  (measured above with the local cluster's {local_waiter_delay():g} s, values-local.yaml)")
    return slopes


def _memory_lines(pods: dict[str, list[Measurement]], lines: list[str]) -> None:
    from eksflow.roles import ROLES

    peak: dict[str, int] = {}
    for measurements in pods.values():
        for m in measurements:
            for role, used in m.memory_by_role.items():
                peak[role] = max(peak.get(role, 0), used)
    lines += ["", "task memory per role: peak of one worker pod's container (memory cgroup max_usage_in_bytes:"]
    lines.append("supervisor + task runner, as the limit counts them) vs the pod template")
    lines.append(f"{'role':<18}{'peak':>8}{'peak +30%':>11}{'request':>9}{'limit':>8}  verdict")
    for role, used in sorted(peak.items()):
        if role not in ROLES:
            continue
        resources = ROLES[role].resources
        need = used * 1.3 / 2**20
        verdict = "ok" if need <= _mebibytes(resources.memory_limit) else "RAISE THE LIMIT"
        request, limit = resources.memory_request, resources.memory_limit
        lines.append(f"{role:<18}{used / 2**20:>6.0f}Mi{need:>9.0f}Mi{request:>9}{limit:>8}  {verdict}")
    if not peak:
        lines.append("  (none measured: no cgroup v1 memory controller on this machine)")


def _fan_out_lines(fans: list[tuple[int, Measurement]], pool_slots: int, lines: list[str]) -> None:
    lines += ["", f"fan-out (data pipeline, deferrable, 5 s ECS tasks, pool {ECS_RUNTASK_POOL}: {pool_slots} slots,"]
    lines.append(f"parallelism {BENCH_PARALLELISM})")
    lines.append(
        f"{'partitions':>10}{'wall s':>9}{'peak worker pods':>18}{'peak ECS in flight':>20}{'peak RunTask/s':>16}"
    )
    for size, m in fans:
        verdict = "ok" if 0 < m.peak_pool_occupied <= pool_slots else "NOT HELD BY THE POOL"
        lines.append(
            f"{size:>10}{m.wall:>9.1f}{m.peak_workers:>18}{m.peak_pool_occupied:>20}"
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
    state_root = REPO / ".eksflow" / "bench-aws"
    pods: dict[str, list[Measurement]] = {}
    fans: list[tuple[int, Measurement]] = []
    if scales or fan_sizes:
        with BenchPlatform(state_root) as platform:
            pods = pod_time(platform, scales, partitions) if scales else {}
            fans = fan_out(platform, fan_sizes, pool_slots) if fan_sizes else []
    state_root.mkdir(parents=True, exist_ok=True)
    text = report(pods, fans, pool_slots)
    measured = {
        "pod_time": {mode: [asdict(m) for m in ms] for mode, ms in pods.items()},
        "fan_out": {"pool_slots": pool_slots, "runs": {size: asdict(m) for size, m in fans}},
    }
    (state_root / "report.json").write_text(json.dumps(measured, indent=2, default=str))
    return text

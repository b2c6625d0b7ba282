"""Faults on the platform running on the local cluster (the chart's pods, the KubernetesExecutor's worker
pods, PostgreSQL, the emulator): AWS jobs that take time (the emulator's job seconds), a worker pod lost
mid-job, the triggerer pod lost while tasks are deferred, a throttling window, and AWS jobs that fail.

The reference DAGs run as they are; tests/cluster_dags/resilience_jobs.py adds DAGs built with the same kit
helpers for what the reference DAGs cannot show (a polling worker to lose, jobs that fail); git-sync delivers
them with the reference DAGs (the shared `local_platform` fixture, IAM enforced).
Housekeeping sparing in-use endpoints is covered in test_dags_e2e.py.
"""

from __future__ import annotations

import json

import pytest

from eksflow.platform import NAMESPACE, bucket_names, sagemaker_name_prefix
from eksflow_dev.cluster.platform_values import ENV
from eksflow_dev.emulator.control import control
from eksflow_dev.local.demo import DATA_DAG, ML_DAG
from eksflow_dev.local.runs import wait_for_run
from tests.support.cluster import finished_try_log, kubectl, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

QUIET = lambda _: None  # noqa: E731
FAULT_DAGS = ("resilience_polling_training", "resilience_failed_training", "resilience_failed_ecs_task")


def _control(stack, path: str, body: str | None = None) -> dict:
    return control(stack.emulator_url, path, body)


@pytest.fixture(scope="module")
def stack(local_platform):
    # The ML pipeline's input, so that every test here can run on its own.
    s3 = local_platform.aws_client("s3")
    s3.put_object(Bucket=bucket_names(ENV)["data"], Key="curated/_SUCCESS", Body=b"")
    local_platform.api.wait_for_dags({ML_DAG, DATA_DAG, *FAULT_DAGS}, timeout=180)
    return local_platform


def _lose_pod(stack, name: str) -> None:
    """The pod is gone at once, as when its node dies: no grace period, its processes killed."""
    kubectl(stack.cluster, "delete", "pod", name, "-n", NAMESPACE, "--grace-period=0", "--force", "--wait=false")


def _pods(stack, selector: str) -> list[dict]:
    listed = kubectl(stack.cluster, "get", "pods", "-n", NAMESPACE, "-l", selector, "-o", "json")
    return json.loads(listed.stdout)["items"]


def test_bad_params_are_refused_and_a_cleared_training_task_reattaches_to_its_job(stack, reference_pipelines):
    assert reference_pipelines.ok
    # Bad DAG params are refused at trigger time, naming the param.
    for conf, field in (({"partitions": 0}, "partitions"), ({"day": "28.11.2026"}, "day")):
        with pytest.raises(RuntimeError, match=rf"HTTP 400: .*{field}"):
            stack.api.trigger(DATA_DAG, conf)

    sagemaker = stack.aws_client("sagemaker")
    jobs_before = sagemaker.list_training_jobs()["TrainingJobSummaries"]
    ml_run = reference_pipelines.runs[ML_DAG]["dag_run_id"]
    clear = {
        "dry_run": False,
        "task_ids": ["train"],
        "dag_run_id": ml_run,
        "only_failed": False,
        "reset_dag_runs": True,
    }
    stack.api.request("POST", f"/dags/{ML_DAG}/clearTaskInstances", clear)
    rerun = wait_for_run(stack, ML_DAG, ml_run, timeout=300, progress=QUIET)
    assert rerun["state"] == "success"
    assert _ti(stack, ML_DAG, ml_run, "train")["try_number"] == 2
    assert sagemaker.list_training_jobs()["TrainingJobSummaries"] == jobs_before


@pytest.fixture()
def job_seconds(stack):
    def set_seconds(seconds: float) -> None:
        _control(stack, "job-seconds", str(seconds))

    yield set_seconds
    set_seconds(0)


def _trigger(stack, dag_id: str, conf: dict | None = None) -> str:
    stack.api.unpause(dag_id)
    return stack.api.trigger(dag_id, conf or {})


def _ti(stack, dag_id: str, run_id: str, task_id: str) -> dict:
    return next(ti for ti in stack.api.task_instances(dag_id, run_id) if ti["task_id"] == task_id)


# What the kit names the two DAGs' training jobs in this environment: eksflow-<env>-<base>-<hash>.
RESILIENCE_JOBS = f"{sagemaker_name_prefix(ENV)}resilience-train-"
CHURN_JOBS = f"{sagemaker_name_prefix(ENV)}churn-train-"


def _training_jobs(stack, prefix: str, but: set[str] = frozenset()) -> list[dict]:
    """Training jobs named with `prefix`, except those named in `but` (the ones earlier runs made)."""
    jobs = stack.aws_client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    return [job for job in jobs if job["TrainingJobName"].startswith(prefix) and job["TrainingJobName"] not in but]


def test_a_worker_pod_lost_mid_training_is_retried_and_the_retry_reattaches_to_the_one_job(stack, job_seconds):
    job_seconds(45)  # usually still running when the retry starts
    dag_id = "resilience_polling_training"
    earlier = {job["TrainingJobName"] for job in _training_jobs(stack, RESILIENCE_JOBS)}  # other runs of the DAG
    run_id = _trigger(stack, dag_id)
    wait_for(lambda: _training_jobs(stack, RESILIENCE_JOBS, earlier), 60, "the training job")
    wait_for(lambda: _ti(stack, dag_id, run_id, "train")["state"] == "running", 60, "train running")
    selector = f"kubernetes_executor=True,dag_id={dag_id},task_id=train"  # Running: this run's pod only
    (pod,) = wait_for(lambda: [p for p in _pods(stack, selector) if p["status"]["phase"] == "Running"], 60, "its pod")
    assert _training_jobs(stack, RESILIENCE_JOBS, earlier)[0]["TrainingJobStatus"] == "InProgress"
    _lose_pod(stack, pod["metadata"]["name"])  # mid-job

    run = wait_for_run(stack, dag_id, run_id, timeout=180, progress=QUIET)
    assert run["state"] == "success"
    assert _ti(stack, dag_id, run_id, "train")["try_number"] == 2
    (job,) = _training_jobs(stack, RESILIENCE_JOBS, earlier)  # exactly one job: the retry re-attached
    assert job["TrainingJobStatus"] == "Completed"
    # Either way the retry adopted the one job: still running when it looked (re-attached) or finished already
    # (reused) — which one depends on how fast a busy machine starts the retry's pod.
    log = finished_try_log(stack, dag_id, run_id, "train", 2)
    assert "Re-attaching to training job" in log or "already completed; reusing its result" in log, log[-3000:]


def test_the_triggerer_pod_lost_while_the_training_wait_is_deferred(stack, job_seconds):
    job_seconds(30)
    before = {job["TrainingJobName"] for job in _training_jobs(stack, CHURN_JOBS)}
    run_id = _trigger(stack, ML_DAG)
    wait_for(lambda: _ti(stack, ML_DAG, run_id, "train")["state"] == "deferred", 60, "train deferred")
    (triggerer,) = [
        p
        for p in _pods(stack, "app.kubernetes.io/component=triggerer")
        if p["status"]["phase"] == "Running" and not p["metadata"].get("deletionTimestamp")
    ]
    _lose_pod(stack, triggerer["metadata"]["name"])  # its Deployment starts another
    running = [j for j in _training_jobs(stack, CHURN_JOBS) if j["TrainingJobName"] not in before]
    assert [j["TrainingJobStatus"] for j in running] == ["InProgress"], "the restart must happen mid-job"

    run = wait_for_run(stack, ML_DAG, run_id, timeout=240, progress=QUIET)
    assert run["state"] == "success"
    assert _ti(stack, ML_DAG, run_id, "train")["try_number"] == 1, "resumed by the new triggerer, not retried"
    assert len({job["TrainingJobName"] for job in _training_jobs(stack, CHURN_JOBS)} - before) == 1


def test_a_throttling_window_is_ridden_out(stack, job_seconds):
    job_seconds(6)
    _control(stack, "stats/reset", "")
    run_id = _trigger(stack, DATA_DAG, {"partitions": 3, "day": "2026-11-29"})
    # The window opens once the ECS tasks run: their waits, the merge step's RunTask and the output checks hit it.
    wait_for(
        lambda: any(
            ti["task_id"] == "transform_partition" and ti["state"] in {"running", "deferred"}
            for ti in stack.api.task_instances(DATA_DAG, run_id)
        ),
        120,
        "a partition task started",
    )
    _control(stack, "faults", json.dumps({"kind": "throttle", "seconds": 8, "services": ["ecs", "s3"]}))
    run = wait_for_run(stack, DATA_DAG, run_id, timeout=240, progress=QUIET)
    stats = _control(stack, "stats")
    assert run["state"] == "success"
    assert stats["faults_injected"] > 0, "the window must have hit the run's calls"


def test_failed_aws_jobs_fail_their_task_with_the_reason_and_nothing_downstream_runs(stack):
    runs = {dag_id: _trigger(stack, dag_id) for dag_id in ("resilience_failed_training", "resilience_failed_ecs_task")}
    reasons = {"resilience_failed_training": "emulated: out of memory", "resilience_failed_ecs_task": "exit"}
    for dag_id, run_id in runs.items():
        run = wait_for_run(stack, dag_id, run_id, timeout=180, progress=QUIET)
        assert run["state"] == "failed"
        states = {ti["task_id"]: ti["state"] for ti in stack.api.task_instances(dag_id, run_id)}
        job_task = "train" if "training" in dag_id else "transform"
        resolved = {"train_image": "success"} if "training" in dag_id else {}  # the released image it trains
        assert states == {**resolved, job_task: "failed", "after": "upstream_failed"}
        ti = _ti(stack, dag_id, run_id, job_task)
        assert reasons[dag_id] in finished_try_log(stack, dag_id, run_id, job_task, ti["try_number"])

"""The AWS benchmark's arithmetic, report format and wiring: the values layer as the chart renders it, worker
pods read from the API, a container's cgroup found by its pod name (the benchmark itself runs in `make bench`,
never as a test: performance goals are not timing assertions)."""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys

import yaml

from eksflow.platform import ECS_RUNTASK_POOL, ROLE_LABEL
from eksflow_dev.bench_aws import (
    BENCH_PARALLELISM,
    Config,
    Measurement,
    _cgroup_pod,
    local_waiter_delay,
    peak_overlap,
    peak_rate,
    report,
    slope_and_overhead,
    values_layer,
    worker_pod,
)

MI = 2**20


def _measurement(job_seconds: float, worker_seconds: float, jobs: int = 10) -> Measurement:
    memory = {"sagemaker-runner": 340 * MI, "ecs-runner": 300 * MI}
    return Measurement(job_seconds, 60.0, jobs, worker_seconds, 40, 4, memory, [0.0, 0.2, 0.4, 1.5], job_pods=2 * jobs)


def test_slope_is_extra_worker_seconds_per_job_per_extra_second_of_job_time():
    polling = slope_and_overhead(_measurement(10, 10 * (10 + 8)), _measurement(60, 10 * (60 + 8)))
    assert polling == (1.0, 8.0)
    deferred = slope_and_overhead(_measurement(10, 10 * 9), _measurement(60, 10 * 9.5))
    assert round(deferred[0], 3) == 0.01 and round(deferred[1], 1) == 8.9


def test_peak_rate_counts_calls_within_any_one_second():
    assert peak_rate([0.0, 0.2, 0.4, 1.5, 1.6, 1.7, 1.8]) == 4
    assert peak_rate([]) == 0


def test_peak_worker_pods_is_the_most_lifetimes_overlapping_at_one_moment():
    # Three overlap in [4, 5); the one that ends at 10 and the one that starts at 10 do not overlap.
    assert peak_overlap([(0, 5), (2, 10), (4, 6), (10, 12)]) == 3
    assert peak_overlap([(0, 10), (10, 20), (20, 30)]) == 1
    # A pod shorter than the stamps' whole second still existed.
    assert peak_overlap([(0, 10), (3, 3)]) == 2
    assert peak_overlap([]) == 0


def _api_pod(name: str, task_id: str, finished_at: str | None) -> dict:
    base = {"name": "base", "state": {"terminated": {"exitCode": 0, "finishedAt": finished_at}}}
    return {
        "metadata": {
            "name": name,
            # The executor's labels are sanitized ("manual__2026-11-28T10:00:00+00:00" cannot be a label value);
            # the annotations carry the raw ids.
            "labels": {
                "kubernetes_executor": "True",
                "run_id": "manual__2026-11-28T100000-0000-abc",
                ROLE_LABEL: "ecs-runner",
            },
            "annotations": {
                "dag_id": "batch_data_pipeline",
                "task_id": task_id,
                "run_id": "manual__2026-11-28T10:00:00+00:00",
                "try_number": "1",
                "map_index": "3",
            },
        },
        "status": {
            "phase": "Succeeded" if finished_at else "Running",
            "startTime": "2026-11-28T10:00:05Z",
            "containerStatuses": [base if finished_at else {"name": "base", "state": {"running": {}}}],
        },
    }


def test_a_worker_pod_lives_from_its_start_time_to_its_base_container_finishing():
    pod = worker_pod(
        _api_pod("batch-data-pipeline-transform-partition-x1", "transform_partition", "2026-11-28T10:00:47Z")
    )
    assert pod.seconds == 42.0
    assert (pod.dag_id, pod.task_id, pod.run_id, pod.role) == (
        "batch_data_pipeline",
        "transform_partition",
        "manual__2026-11-28T10:00:00+00:00",
        "ecs-runner",
    )
    assert worker_pod(_api_pod("still-running", "transform_partition", None)) is None


def test_a_container_cgroup_is_mapped_to_its_pod_by_the_hostname_of_its_processes(tmp_path):
    cgroup = tmp_path / "base-0123456789ab"
    cgroup.mkdir()
    (cgroup / "cgroup.procs").write_text("")
    assert _cgroup_pod(cgroup) is None  # no process yet
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"],
        env={"PATH": os.environ.get("PATH", ""), "HOSTNAME": "ml-pipeline-train-5f3a"},
    )
    try:
        (cgroup / "cgroup.procs").write_text(f"999999999\n{process.pid}\n")  # a gone process is skipped
        assert _cgroup_pod(cgroup) == "ml-pipeline-train-5f3a"
    finally:
        process.kill()
        process.wait()


def test_the_values_layer_reaches_every_airflow_container_and_worker_pod(tmp_path):
    """Rendered as the stack installs it: values-local.yaml, the Terraform-like layer, the bench's layer. Every
    Airflow component and every role's worker pod template gets the mode; values-local's own env stays."""
    from eksflow_dev.cluster.platform_values import values_layer as platform_layer
    from eksflow_dev.cluster.stack import LOCAL_VALUES, REGION
    from tests.helm import pod_spec, render, rendered_templates

    (tmp_path / "platform.yaml").write_text(platform_layer(REGION))
    (tmp_path / "bench.yaml").write_text(values_layer(Config(deferrable=False, pool_slots=5)))
    docs = render(LOCAL_VALUES, tmp_path / "platform.yaml", tmp_path / "bench.yaml", base=None)
    local_env = yaml.safe_load(LOCAL_VALUES.read_text())["extraEnv"]

    containers = [
        (doc["metadata"]["name"], c)
        for doc in docs
        if doc["kind"] == "Deployment"
        for c in pod_spec(doc)["containers"]
        if c["image"].startswith("eksflow:") and c["name"] != "trigger-log-server"  # serves files: no platform env
    ]
    containers += [(name, pod["spec"]["containers"][0]) for name, pod in rendered_templates(docs).items()]
    assert len(containers) > 5
    for name, container in containers:
        env = {var["name"]: var.get("value") for var in container.get("env", [])}
        assert env.get("EKSFLOW_DEFERRABLE") == "off", name
        assert all(env.get(var["name"]) == var["value"] for var in local_env), name  # values-local's kept

    (configmap,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-airflow-config")]
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(configmap["data"]["airflow.cfg"])
    assert cfg.getint("core", "parallelism") == BENCH_PARALLELISM
    assert cfg.getboolean("kubernetes_executor", "delete_worker_pods") is False
    (job,) = [d for d in docs if d["kind"] == "Job" and d["metadata"]["name"].endswith("migrate-db")]
    assert f"airflow pools set {ECS_RUNTASK_POOL} 5 " in " ".join(
        job["spec"]["template"]["spec"]["containers"][0]["args"]
    )


def test_report_ends_with_the_trackable_slope_line():
    pods = {
        "deferrable": [_measurement(1, 100), _measurement(10, 90), _measurement(60, 95)],
        "non-deferrable": [_measurement(1, 100), _measurement(10, 180), _measurement(60, 680)],
    }
    pods["deferrable"][0].memory_by_role["default"] = 420 * MI  # the warm-up's housekeeping: over 512Mi / 1.3
    text = report(pods, [(10, _measurement(5, 50))], pool_slots=8)
    assert text.splitlines()[-1] == "pod-time slope: deferrable=0.010 non-deferrable=1.000"
    assert re.search(r"^deferrable\s+10\s+10\s+20\s+90.0\s+60.0\s+24.0$", text, re.MULTILINE)
    assert re.search(r"sagemaker-runner\s+340Mi\s+442Mi\s+512Mi\s+768Mi  ok", text)
    assert re.search(r"default\s+420Mi\s+546Mi\s+384Mi\s+512Mi  RAISE THE LIMIT", text)
    assert re.search(r"ECS task\s+ours\s+30s = +2.0/min\s+provider default\s+6s = 10.0/min", text)
    assert f"local cluster's {local_waiter_delay():g} s" in text


def test_fan_out_alone_reports_the_pool_as_the_ceiling_it_must_hold():
    held, ignored = _measurement(5, 50), _measurement(5, 50)
    held.peak_pool_occupied, ignored.peak_pool_occupied = 8, 0  # 0: the ECS steps never ran in the pool
    text = report({}, [(10, held), (200, ignored)], pool_slots=8)
    assert "pod-time" not in text and "task memory" not in text
    assert "pool ecs_runtask: 8 slots" in text and f"parallelism {BENCH_PARALLELISM}" in text
    assert re.search(r"^\s+10\s+60.0\s+4\s+8\s+3  ok$", text, re.MULTILINE)
    assert re.search(r"^\s+200 .*NOT HELD BY THE POOL$", text, re.MULTILINE)

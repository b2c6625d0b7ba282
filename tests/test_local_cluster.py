"""The chart running for real on the local cluster (docs/local-cluster.md): installed by the real helm with
--wait --rollback-on-failure from values-local.yaml, `helm test`, the reference pipelines through the
KubernetesExecutor (one pod per task, the role's service account and pod template), kubectl finding task pods
by the runbook's labels, an upgrade that rolls the components and runs the pre-upgrade hook, and a failed
upgrade that helm rolls back while the platform keeps working."""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest

from eksflow.platform import NAMESPACE
from eksflow_dev.cluster.stack import ClusterStack
from eksflow_dev.emulator.control import control
from eksflow_dev.local.demo import HOUSEKEEPING_DAG, ML_DAG, run_pipelines, summary_table
from eksflow_dev.local.stack import wait_for_run
from tests.support.cluster import audit, kubectl, require_cluster_prerequisites

pytestmark = pytest.mark.slow
RELEASE = "eksflow"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    require_cluster_prerequisites()
    root = tmp_path_factory.mktemp("local-cluster")
    # Keep the pods of successful tasks, so that kubectl can find them the way the runbook does.
    keep = root / "keep-worker-pods.yaml"
    keep.write_text("airflow: {kubernetesExecutor: {deleteWorkerPodsOnSuccess: false}}\n")
    running = ClusterStack(root / "stack", extra_values=[keep])
    try:
        running.start(progress=lambda _: None)
        yield running
    finally:
        running.stop()


def _component_pods(stack) -> dict[str, str]:
    pods = json.loads(kubectl(stack.cluster, "get", "pods", "-n", NAMESPACE, "-o", "json").stdout)["items"]
    return {
        p["metadata"]["labels"]["app.kubernetes.io/component"]: p["metadata"]["name"]
        for p in pods
        if p["metadata"]["labels"].get("app.kubernetes.io/component") in ("api-server", "scheduler", "triggerer")
        and p["status"].get("phase") == "Running"
        and not p["metadata"].get("deletionTimestamp")  # an old pod still in its grace period
    }


def test_the_chart_installs_with_wait_and_helm_test_passes(stack):
    tested = stack.helm("test", RELEASE, "--namespace", NAMESPACE, "--timeout", "5m")
    assert "Phase:          Succeeded" in tested.stdout, tested.stdout
    deployments = json.loads(kubectl(stack.cluster, "get", "deployments", "-n", NAMESPACE, "-o", "json").stdout)
    for deployment in deployments["items"]:
        status = deployment["status"]
        assert status.get("availableReplicas") == deployment["spec"]["replicas"], deployment["metadata"]["name"]
    # helm keeps its releases in Secrets it finds by label selector; the migration hook really ran.
    calls = [c for c in audit(stack.cluster) if c["userAgent"].startswith("Helm/")]
    assert any(c["resource"] == "secrets" and "owner%3Dhelm" in c["query"] for c in calls)
    job = json.loads(
        kubectl(stack.cluster, "get", "job", f"{RELEASE}-migrate-db", "-n", NAMESPACE, "-o", "json").stdout
    )
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"]["conditions"])


def test_the_reference_pipelines_succeed_through_the_kubernetes_executor(stack):
    result = run_pipelines(stack, timeout=600, progress=lambda _: None)
    assert result.ok, summary_table(result)
    creates = [c for c in audit(stack.cluster) if c["verb"] == "create" and c["resource"] == "pods"]
    scheduler = f"system:serviceaccount:{NAMESPACE}:eksflow-scheduler"
    task_count = sum(len(tis) for tis in result.task_instances.values())
    assert sum(1 for c in creates if c["user"] == scheduler) >= task_count
    # The runbook's selectors: task pods by DAG and task, each with its role's service account.
    listed = kubectl(
        stack.cluster,
        "get",
        "pods",
        "-n",
        NAMESPACE,
        "-l",
        "kubernetes_executor=True,dag_id=batch_data_pipeline,task_id=transform_partition",
        "-o",
        "json",
    )
    pods = json.loads(listed.stdout)["items"]
    # Deferrable steps run twice (defer, then resume after the trigger fired): a pod each time.
    assert {p["metadata"]["annotations"]["map_index"] for p in pods} == {"0", "1", "2", "3"}
    for pod in pods:
        assert pod["spec"]["serviceAccountName"] == "eksflow-task-ecs-runner"
        assert pod["metadata"]["labels"]["eksflow.io/role"] == "ecs-runner"
        assert pod["status"]["phase"] == "Succeeded"
    logs = kubectl(stack.cluster, "logs", "-n", NAMESPACE, pods[0]["metadata"]["name"], "-c", "base").stdout
    assert "ecs" in logs.lower()


def test_the_live_log_of_a_deferred_task_comes_from_its_triggerer(stack):
    """While a step waits in the triggerer, the api-server reads its live log from the triggerer's log
    server (by the pod IP the triggerer recorded as its host name). Runs after the pipelines (the ML
    pipeline trains on what the data pipeline published)."""
    control(stack.emulator_url, "job-seconds", "45")  # the training job now runs 45 s: train stays deferred
    try:
        stack.api.unpause(ML_DAG)
        run_id = stack.api.trigger(ML_DAG, {})
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            train = next(ti for ti in stack.api.task_instances(ML_DAG, run_id) if ti["task_id"] == "train")
            if train["state"] == "deferred":
                break
            time.sleep(1)
        assert train["state"] == "deferred", train
        run = urllib.parse.quote(run_id, safe="")
        path = f"/dags/{ML_DAG}/dagRuns/{run}/taskInstances/train/logs/{train['try_number']}"
        # The log is served once a triggerer has picked the trigger up (what a user refreshing the UI sees).
        text = ""
        while time.monotonic() < deadline and ":8794/log/" not in text:
            text = json.dumps(stack.api.request("GET", path))
            time.sleep(1)
        assert ":8794/log/" in text and "Could not read served logs" not in text, text[-3000:]
    finally:
        control(stack.emulator_url, "job-seconds", "0")
    assert wait_for_run(stack, ML_DAG, run_id, 300, progress=lambda _: None)["state"] == "success"


def test_an_upgrade_that_changes_a_value_rolls_the_components_and_runs_the_pre_upgrade_hook(stack):
    before = _component_pods(stack)
    job_uid = json.loads(
        kubectl(stack.cluster, "get", "job", f"{RELEASE}-migrate-db", "-n", NAMESPACE, "-o", "json").stdout
    )["metadata"]["uid"]
    stack.helm_upgrade(stack.state_dir / "seeded-values.yaml", sets=("airflow.parallelism=9",))
    after = _component_pods(stack)
    assert set(after) == set(before)
    assert all(after[c] != before[c] for c in before), (before, after)  # airflow.cfg changed: new pods
    job = json.loads(
        kubectl(stack.cluster, "get", "job", f"{RELEASE}-migrate-db", "-n", NAMESPACE, "-o", "json").stdout
    )
    assert job["metadata"]["uid"] != job_uid
    history = json.loads(stack.helm("history", RELEASE, "--namespace", NAMESPACE, "-o", "json").stdout)
    assert [h["status"] for h in history][-1] == "deployed"


def test_a_failed_upgrade_is_rolled_back_and_the_platform_keeps_working(stack):
    before = _component_pods(stack)
    # An api-server that cannot start (OOMKilled at 64Mi) never becomes ready: --wait fails, helm rolls back.
    failed = stack.helm_upgrade(
        stack.state_dir / "seeded-values.yaml",
        sets=("components.apiServer.resources.limits.memory=64Mi",),
        timeout="90s",
        check=False,
    )
    assert failed.returncode != 0
    assert "rollback" in (failed.stdout + failed.stderr).lower()
    history = json.loads(stack.helm("history", RELEASE, "--namespace", NAMESPACE, "-o", "json").stdout)
    assert history[-1]["status"] == "deployed" and "Rollback" in history[-1]["description"], history[-1]
    assert _component_pods(stack)["api-server"] == before["api-server"]  # the old pod served throughout
    run_id = stack.api.trigger(HOUSEKEEPING_DAG, {})
    assert wait_for_run(stack, HOUSEKEEPING_DAG, run_id, 300, progress=lambda _: None)["state"] == "success"

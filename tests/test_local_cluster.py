"""The chart running for real on the local cluster (docs/local-cluster.md): installed by the real helm with
--wait --rollback-on-failure from values-local.yaml, `helm test`, the reference pipelines through the
KubernetesExecutor (one pod per task, the role's service account and pod template), kubectl finding task pods
by the runbook's labels, an upgrade that rolls the components and runs the pre-upgrade hook, and a failed
upgrade that helm rolls back while the platform keeps working."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from eksflow.platform import CONTROL_PLANE, NAMESPACE, bucket_names
from eksflow.roles import ROLES
from eksflow_dev.cluster.login import read_login_file
from eksflow_dev.cluster.platform_values import ACCOUNT_ID, ENV
from eksflow_dev.emulator.control import control
from eksflow_dev.local.api import AirflowApi, Login
from eksflow_dev.local.demo import DATA_DAG, DEMO_CONF, HOUSEKEEPING_DAG, ML_DAG, summary_table
from eksflow_dev.local.runs import wait_for_run
from tests.support.cluster import audit, kubectl, wait_for
from tests.support.effects import (
    HOUSEKEEPING_ACTED,
    HOUSEKEEPING_DELETED,
    assert_endpoint_deployed,
    curated_keys,
    endpoint_names,
    expected_housekeeping_actions,
    housekeeping_report,
    instance_states,
    partition_markers,
)

pytestmark = [pytest.mark.slow, pytest.mark.cluster]
RELEASE = "eksflow"


REPO = Path(__file__).resolve().parents[1]


def _component_pods(local_platform) -> dict[str, str]:
    pods = json.loads(kubectl(local_platform.cluster, "get", "pods", "-n", NAMESPACE, "-o", "json").stdout)["items"]
    return {
        p["metadata"]["labels"]["app.kubernetes.io/component"]: p["metadata"]["name"]
        for p in pods
        if p["metadata"]["labels"].get("app.kubernetes.io/component") in ("api-server", "scheduler", "triggerer")
        and p["status"].get("phase") == "Running"
        and not p["metadata"].get("deletionTimestamp")  # an old pod still in its grace period
    }


def test_the_chart_installs_with_wait_and_helm_test_passes(local_platform):
    tested = local_platform.helm("test", RELEASE, "--namespace", NAMESPACE, "--timeout", "5m")
    assert "Phase:          Succeeded" in tested.stdout, tested.stdout
    deployments = json.loads(
        kubectl(local_platform.cluster, "get", "deployments", "-n", NAMESPACE, "-o", "json").stdout
    )
    for deployment in deployments["items"]:
        status = deployment["status"]
        assert status.get("availableReplicas") == deployment["spec"]["replicas"], deployment["metadata"]["name"]
    # helm keeps its releases in Secrets it finds by label selector; the migration hook really ran.
    calls = [c for c in audit(local_platform.cluster) if c["userAgent"].startswith("Helm/")]
    assert any(c["resource"] == "secrets" and "owner%3Dhelm" in c["query"] for c in calls)
    job = json.loads(
        kubectl(local_platform.cluster, "get", "job", f"{RELEASE}-migrate-db", "-n", NAMESPACE, "-o", "json").stdout
    )
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"]["conditions"])


def _status(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - an explicit Host is sent as given
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_ui_and_api_need_the_generated_login_and_answer_only_to_loopback_host_names(local_platform):
    """Issue 12 row 17 on the real pods, through the stack's port-forward: the api-server's passwords file is the
    Secret the stack generated (copied by the chart's init container); no login → 401, a wrong one → 401, the
    login file's → 200; a page on evil.example rebound to 127.0.0.1 → 421 from the port-forward."""
    url = local_platform.api_url
    port = urllib.parse.urlsplit(url).port
    assert _status(f"{url}/api/v2/dags") == 401
    assert _status(f"{url}/api/v2/monitor/health", {"Host": f"evil.example:{port}"}) == 421
    assert _status(f"{url}/api/v2/monitor/health", {"Host": f"localhost:{port}"}) == 200
    found_url, login = read_login_file(local_platform.login_file)
    assert (found_url, login) == (url, local_platform.api_login)
    assert stat.S_IMODE(local_platform.login_file.stat().st_mode) == 0o600
    assert AirflowApi(url, login).pool("default_pool")["name"] == "default_pool"
    with pytest.raises(RuntimeError, match="HTTP 401"):
        AirflowApi(url, Login(login.username, "not-the-password")).token()
    values = local_platform.helm("get", "values", RELEASE, "--namespace", NAMESPACE, "--all").stdout
    assert "eksflow-local-login" in values and login.password not in values  # the Secret's name only
    api_server = _component_pods(local_platform)["api-server"]
    logs = kubectl(local_platform.cluster, "logs", "-n", NAMESPACE, api_server, "-c", "api-server").stdout
    assert login.password not in logs and "Password for user" not in logs


def test_the_reference_pipelines_succeed_through_the_kubernetes_executor(local_platform, reference_pipelines):
    result = reference_pipelines
    assert result.ok, summary_table(result)
    creates = [c for c in audit(local_platform.cluster) if c["verb"] == "create" and c["resource"] == "pods"]
    scheduler = f"system:serviceaccount:{NAMESPACE}:eksflow-scheduler"
    task_count = sum(len(tis) for tis in result.task_instances.values())
    assert sum(1 for c in creates if c["user"] == scheduler) >= task_count
    # The runbook's selectors: task pods by DAG and task, each with its role's service account.
    listed = kubectl(
        local_platform.cluster,
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
    logs = kubectl(local_platform.cluster, "logs", "-n", NAMESPACE, pods[0]["metadata"]["name"], "-c", "base").stdout
    assert "ecs" in logs.lower()


def test_the_reference_pipelines_leave_exactly_their_intended_effects_in_aws(local_platform, reference_pipelines):
    """As test_dags_e2e.py expects of `airflow dags test` runs, here through the chart with IAM enforced."""
    assert reference_pipelines.ok, summary_table(reference_pipelines)
    client, seeded = local_platform.aws_client, local_platform.seeded
    conf = DEMO_CONF[DATA_DAG]
    assert partition_markers(conf["day"], conf["partitions"]) <= curated_keys(client)
    assert_endpoint_deployed(client)
    assert instance_states(client, seeded) == HOUSEKEEPING_ACTED
    assert not HOUSEKEEPING_DELETED & endpoint_names(client)
    assert set(seeded.endpoints) - HOUSEKEEPING_DELETED <= endpoint_names(client)
    assert housekeeping_report(client)["actions"] == expected_housekeeping_actions(seeded)


def test_every_pod_calls_aws_with_its_own_roles_web_identity_credentials(local_platform, reference_pipelines):
    """No keys anywhere: the pod identity webhook gives each pod its service account's IRSA role and token,
    the emulator's STS exchanges the token for that role's credentials (as on EKS)."""
    assert reference_pipelines.ok, summary_table(reference_pipelines)
    pods = json.loads(kubectl(local_platform.cluster, "get", "pods", "-n", NAMESPACE, "-o", "json").stdout)["items"]
    roles_of_task_pods = set()
    for pod in pods:
        for container in pod["spec"]["containers"]:
            names = {e["name"] for e in container.get("env", [])}
            assert "AWS_ACCESS_KEY_ID" not in names and "AWS_SECRET_ACCESS_KEY" not in names, pod["metadata"]["name"]
        if pod["metadata"]["labels"].get("kubernetes_executor") == "True":
            env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
            role = pod["metadata"]["labels"]["eksflow.io/role"]
            assert env["AWS_ROLE_ARN"] == f"arn:aws:iam::{ACCOUNT_ID}:role/{ROLES[role].iam_role_name(ENV)}"
            roles_of_task_pods.add(role)
    assert roles_of_task_pods == set(ROLES), roles_of_task_pods
    with urllib.request.urlopen(f"{local_platform.emulator_url}/moto-api/data.json", timeout=30) as response:  # noqa: S310
        assumed = {r["role_arn"].rsplit("/", 1)[1] for r in json.load(response)["sts"]["AssumedRole"]}
    expected = {ROLES[r].iam_role_name(ENV) for r in roles_of_task_pods}
    expected |= {c.iam_role_name(ENV) for c in CONTROL_PLANE if c.name == "triggerer"}  # the deferred waits
    assert expected <= assumed, expected - assumed


def test_task_logs_land_in_s3_and_the_api_server_reads_them_back_from_there(local_platform, reference_pipelines):
    run_id = reference_pipelines.runs[DATA_DAG]["dag_run_id"]
    bucket = bucket_names(ENV)["logs"]
    listed = local_platform.aws_client("s3").list_objects_v2(
        Bucket=bucket, Prefix=f"task-logs/dag_id={DATA_DAG}/run_id={run_id}/"
    )
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert any("/task_id=transform_partition/" in k for k in keys), keys
    run = urllib.parse.quote(run_id, safe="")
    # The task's pod finished long ago: a finished task's log is read from remote storage only.
    path = f"/dags/{DATA_DAG}/dagRuns/{run}/taskInstances/plan_partitions/logs/1"
    text = json.dumps(local_platform.api.request("GET", path))
    assert f"s3://{bucket}/task-logs/dag_id={DATA_DAG}/run_id={run_id}/task_id=plan_partitions/" in text, text[-3000:]
    assert "Task instance is in running state" not in text and "Could not read" not in text, text[-3000:]


def test_the_live_log_of_a_deferred_task_comes_from_its_triggerer(local_platform, reference_pipelines):
    """While a step waits in the triggerer, the api-server reads its live log from the triggerer's log
    server (by the pod IP the triggerer recorded as its host name). Runs after the reference pipelines (the ML
    pipeline trains on what the data pipeline published)."""
    assert reference_pipelines.ok
    control(local_platform.emulator_url, "job-seconds", "45")  # the training job now runs 45 s: train stays deferred
    try:
        local_platform.api.unpause(ML_DAG)
        run_id = local_platform.api.trigger(ML_DAG, {})
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            train = next(ti for ti in local_platform.api.task_instances(ML_DAG, run_id) if ti["task_id"] == "train")
            if train["state"] == "deferred":
                break
            time.sleep(1)
        assert train["state"] == "deferred", train
        run = urllib.parse.quote(run_id, safe="")
        path = f"/dags/{ML_DAG}/dagRuns/{run}/taskInstances/train/logs/{train['try_number']}"
        # The log is served once a triggerer has picked the trigger up (what a user refreshing the UI sees).
        text = ""
        while time.monotonic() < deadline and ":8794/log/" not in text:
            text = json.dumps(local_platform.api.request("GET", path))
            time.sleep(1)
        assert ":8794/log/" in text and "Could not read served logs" not in text, text[-3000:]
    finally:
        control(local_platform.emulator_url, "job-seconds", "0")
    assert wait_for_run(local_platform, ML_DAG, run_id, 300, progress=lambda _: None)["state"] == "success"


def test_the_live_log_of_a_running_task_comes_from_its_worker_pod(local_platform, reference_pipelines):
    """While a task runs in its pod (a training task that polls instead of deferring, tests/cluster_dags/), the
    api-server reads its live log through the Kubernetes API (the KubernetesExecutor's get_task_log: pods by the
    task's labels, then pods/log — the api-server Role's two read rights); once it finished, from S3."""
    assert reference_pipelines.ok
    dag_id = "resilience_polling_training"
    control(local_platform.emulator_url, "job-seconds", "45")  # the task polls its training job for 45 s
    try:
        local_platform.api.unpause(dag_id)
        run_id = local_platform.api.trigger(dag_id, {})

        def running_train():
            tis = local_platform.api.task_instances(dag_id, run_id)
            return next((ti for ti in tis if ti["task_id"] == "train" and ti["state"] == "running"), None)

        train = wait_for(running_train, 180, "train running")
        run = urllib.parse.quote(run_id, safe="")
        path = f"/dags/{dag_id}/dagRuns/{run}/taskInstances/train/logs/{train['try_number']}"
        text = wait_for(
            lambda: (
                "Starting training job" in (logged := json.dumps(local_platform.api.request("GET", path))) and logged
            ),
            120,
            "the live log from the worker pod",
        )
        assert "through kube API" in text and "Reading from k8s pod logs failed" not in text, text[-3000:]
    finally:
        control(local_platform.emulator_url, "job-seconds", "0")
    assert wait_for_run(local_platform, dag_id, run_id, 300, progress=lambda _: None)["state"] == "success"


def test_an_upgrade_that_changes_a_value_rolls_the_components_and_runs_the_pre_upgrade_hook(local_platform):
    before = _component_pods(local_platform)
    job_uid = json.loads(
        kubectl(local_platform.cluster, "get", "job", f"{RELEASE}-migrate-db", "-n", NAMESPACE, "-o", "json").stdout
    )["metadata"]["uid"]
    local_platform.helm_upgrade(local_platform.state_dir / "seeded-values.yaml", sets=("airflow.parallelism=9",))
    after = _component_pods(local_platform)
    assert set(after) == set(before)
    assert all(after[c] != before[c] for c in before), (before, after)  # airflow.cfg changed: new pods
    job = json.loads(
        kubectl(local_platform.cluster, "get", "job", f"{RELEASE}-migrate-db", "-n", NAMESPACE, "-o", "json").stdout
    )
    assert job["metadata"]["uid"] != job_uid
    history = json.loads(local_platform.helm("history", RELEASE, "--namespace", NAMESPACE, "-o", "json").stdout)
    assert [h["status"] for h in history][-1] == "deployed"


def test_a_failed_upgrade_is_rolled_back_and_the_platform_keeps_working(local_platform):
    before = _component_pods(local_platform)
    # An api-server that cannot start (OOMKilled at 64Mi) never becomes ready: --wait fails, helm rolls back.
    failed = local_platform.helm_upgrade(
        local_platform.state_dir / "seeded-values.yaml",
        sets=("components.apiServer.resources.limits.memory=64Mi",),
        timeout="90s",
        check=False,
    )
    assert failed.returncode != 0
    assert "rollback" in (failed.stdout + failed.stderr).lower()
    history = json.loads(local_platform.helm("history", RELEASE, "--namespace", NAMESPACE, "-o", "json").stdout)
    assert history[-1]["status"] == "deployed" and "Rollback" in history[-1]["description"], history[-1]
    assert _component_pods(local_platform)["api-server"] == before["api-server"]  # the old pod served throughout
    run_id = local_platform.api.trigger(HOUSEKEEPING_DAG, {})
    assert wait_for_run(local_platform, HOUSEKEEPING_DAG, run_id, 300, progress=lambda _: None)["state"] == "success"


def test_the_documented_rest_api_commands_trigger_a_run_with_params_and_read_its_states(local_platform):
    """docs/dag-authoring.md's curl/jq commands, as written, against the local cluster's API with the stack's login
    file: the run carries the params given, the states are read back, and the run succeeds."""
    doc = (REPO / "docs" / "dag-authoring.md").read_text()
    block = doc.split("<!-- rest-api:start -->", 1)[1].split("<!-- rest-api:end -->", 1)[0]
    script = block.split("```bash\n", 1)[1].split("```", 1)[0]
    env = {**os.environ, "LOGIN": str(local_platform.login_file), "DAG": "rest_api_echo", "CONF": '{"greeting": "hi"}'}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    run_line, tasks_line = result.stdout.strip().splitlines()
    run = json.loads(run_line)
    assert run["conf"] == {"greeting": "hi"} and run["state"] in {"queued", "running", "success"}
    assert all(set(task) == {"task_id", "state"} for task in json.loads(tasks_line))
    assert wait_for_run(local_platform, "rest_api_echo", run["dag_run_id"], timeout=600)["state"] == "success"

"""The chart's Airflow config, control-plane service accounts and RBAC, rendered by real helm."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eksflow.platform import CONTROL_PLANE
from eksflow.roles import DEFAULT_ROLE, ROLES
from eksflow_dev.local.offline import offline_env
from tests.helm import CHART, REQUIRED_SETS, helm, local_value_files, pod_spec, render, template_args
from tests.support.worker_pods import airflow_cfg

SCHED_ARN = "arn:aws:iam::123456789012:role/eksflow-dev-scheduler"


def test_airflow_config_runs_the_kubernetes_executor_against_the_api_server_service():
    cfg = airflow_cfg(render(namespace="eksflow"))
    assert cfg["core"]["executor"] == "KubernetesExecutor"
    assert cfg["core"]["execution_api_server_url"] == (
        "http://eksflow-api-server.eksflow.svc.cluster.local:8080/execution/"
    )
    assert cfg["kubernetes_executor"]["namespace"] == "eksflow"
    assert cfg["kubernetes_executor"]["pod_template_file"] == ROLES[DEFAULT_ROLE].pod_template_path
    assert (
        cfg["kubernetes_executor"]["delete_worker_pods"],
        cfg["kubernetes_executor"]["delete_worker_pods_on_failure"],
    ) == (
        "True",
        "False",
    )
    assert cfg["logging"]["remote_base_log_folder"] == "s3://eksflow-dev-logs/task-logs"
    assert cfg["operators"]["default_deferrable"] == "True"
    assert not cfg.has_section("secrets")


@pytest.mark.parametrize("env", ["dev", "staging"])
def test_secrets_manager_backend_when_enabled_reads_the_envs_own_names(env):
    """Environments may share an account: each one's Airflow reads Connections and Variables under its own names
    (eksflow/<env>/...), the role model's patterns with dagSettings.env — never another environment's."""
    sets = ("airflow.secretsBackend.enabled=true", "region=us-east-1", f"dagSettings.env={env}")
    cfg = airflow_cfg(render(sets=sets))
    assert cfg["secrets"]["backend"].endswith("SecretsManagerBackend")
    assert json.loads(cfg["secrets"]["backend_kwargs"]) == {
        "connections_prefix": f"eksflow/{env}/connections",
        "variables_prefix": f"eksflow/{env}/variables",
        "region_name": "us-east-1",
    }


SECRET_ENV = ("SQL_ALCHEMY_CONN", "FERNET_KEY", "SECRET_KEY", "JWT_SECRET")


def _containers(doc: dict) -> list[dict]:
    pod = pod_spec(doc) or {}
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def test_secrets_only_by_reference_and_never_rendered():
    docs = render(sets=("airflow.secretsBackend.enabled=true",))
    assert not [d for d in docs if d["kind"] == "Secret"]  # no secret values in any template
    text = helm(*template_args()).stdout.lower()
    assert "postgresql://" not in text and "password" not in text
    for doc in docs:
        for container in _containers(doc):
            for env in container.get("env", []):
                if any(marker in env["name"] for marker in SECRET_ENV):
                    assert "value" not in env and "secretKeyRef" in env["valueFrom"], (doc["metadata"]["name"], env)


def test_remote_logging_without_a_bucket_fails_naming_the_field():
    result = helm(*template_args("airflow.remoteLogging.bucket="), check=False)
    assert result.returncode != 0
    assert "airflow.remoteLogging.bucket is empty" in result.stderr


def test_control_plane_service_accounts_follow_the_role_model():
    docs = render(base=None, sets=(*REQUIRED_SETS, f"controlPlane.scheduler.iamRoleArn={SCHED_ARN}"))
    accounts = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceAccount"}
    for component in CONTROL_PLANE:
        account = accounts[component.service_account]
        expected = {"eks.amazonaws.com/role-arn": SCHED_ARN} if component.name == "scheduler" else {}
        assert account["metadata"].get("annotations", {}) == expected
        # Only the components that call the Kubernetes API mount its token.
        assert account["automountServiceAccountToken"] is (component.name in {"scheduler", "api-server"})


def _rules(docs, name_suffix):
    (role,) = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith(name_suffix)]
    return {(r["resources"][0], verb) for r in role["rules"] for verb in r["verbs"]}


def test_rbac_only_the_scheduler_manages_pods_and_the_api_server_reads_logs():
    docs = render()
    roles = [d for d in docs if d["kind"] == "Role"]
    creators = [r["metadata"]["name"] for r in roles if ("pods", "create") in _rules(docs, r["metadata"]["name"])]
    assert creators == ["eksflow-scheduler"]
    assert ("pods", "delete") in _rules(docs, "-scheduler")
    assert _rules(docs, "-api-server") == {("pods", "get"), ("pods", "list"), ("pods/log", "get")}
    assert not [d for d in docs if d["kind"] in {"ClusterRole", "ClusterRoleBinding"}]
    accounts = {d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"}
    for binding in (d for d in docs if d["kind"] == "RoleBinding"):
        for subject in binding["subjects"]:
            assert subject["name"] in accounts and subject["namespace"] == "eksflow"


def test_airflow_config_lint_finds_nothing_moved_or_removed_in_the_rendered_airflow_cfg(tmp_path):
    """Airflow's own linter over the config the chart ships (keys of older Airflow versions are dead)."""
    local = local_value_files(tmp_path)
    for files in ([CHART / "values-dev.yaml"], [CHART / "values-prod.yaml"], local):
        (configmap,) = [
            d
            for d in render(*files, base=None)
            if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("airflow-config")
        ]
        (tmp_path / "airflow.cfg").write_text(configmap["data"]["airflow.cfg"])
        env = {**offline_env(), "AIRFLOW_HOME": str(tmp_path), "AIRFLOW_CONFIG": str(tmp_path / "airflow.cfg")}
        result = subprocess.run(
            [str(Path(sys.executable).with_name("airflow")), "config", "lint"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        findings = [line for line in result.stdout.splitlines() if line.strip().startswith("- ")]
        # The only finding we accept: the note that the executor's default changed (we set ours on purpose).
        findings = [f for f in findings if "Changed default value of `executor`" not in f]
        assert findings == [], f"{files[0].name}: {findings}"

"""UI/API access (auth manager, Ingress), `helm test`, the cleanup CronJob, and the example values files."""

from __future__ import annotations

import pytest

from tests.helm import REQUIRED_SETS, VALUE_FILES, helm, render, template_args
from tests.test_chart_config import airflow_cfg


def test_aws_auth_manager_is_the_default_and_needs_its_identity_center_settings():
    cfg = airflow_cfg(render())
    assert cfg["core"]["auth_manager"].endswith("aws_auth_manager.AwsAuthManager")
    assert cfg["aws_auth_manager"]["avp_policy_store_id"] == "PSEXAMPLEDEV0000000000"
    assert "simple_auth_manager_all_admins" not in cfg["core"]
    result = helm("template", "eksflow", str(VALUE_FILES["dev"].parent), check=False)  # chart defaults only
    assert result.returncode != 0
    assert "auth.aws.samlMetadataUrl and auth.aws.avpPolicyStoreId are required" in result.stderr


def test_simple_auth_manager_only_with_the_local_only_acknowledgement():
    refused = helm(*template_args("auth.manager=simple"), check=False)
    assert refused.returncode != 0 and "simpleAllAdminsForLocalUseOnly" in refused.stderr
    cfg = airflow_cfg(render(base=VALUE_FILES["kind"]))
    assert cfg["core"]["simple_auth_manager_all_admins"] == "True"
    assert "LOCAL CLUSTERS ONLY" in VALUE_FILES["kind"].read_text()


def test_ingress_is_off_by_default_and_internal_with_tls_when_on():
    assert not [d for d in render() if d["kind"] == "Ingress"]
    (ingress,) = [d for d in render(base=VALUE_FILES["prod"]) if d["kind"] == "Ingress"]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internal"
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"].startswith("arn:aws:acm:")
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "eksflow-api-server"
    missing = helm(*template_args("ingress.enabled=true"), check=False)
    assert missing.returncode != 0 and ("host" in missing.stderr or "certificateArn" in missing.stderr)


def test_helm_test_checks_api_server_health():
    (pod,) = [d for d in render() if d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert env["HEALTH_URL"] == "http://eksflow-api-server.eksflow.svc.cluster.local:8080/api/v2/monitor/health"
    assert "metadatabase" in pod["spec"]["containers"][0]["args"][0]


def test_cleanup_cronjob_deletes_only_finished_worker_pods_with_an_account_of_its_own():
    docs = render()
    (cron,) = [d for d in docs if d["kind"] == "CronJob"]
    spec = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    # Not the scheduler's account (pod create, its IAM role): one that may only list and delete pods, no IRSA.
    assert spec["serviceAccountName"] == "eksflow-cleanup"
    (account,) = [d for d in docs if d["kind"] == "ServiceAccount" and d["metadata"]["name"] == "eksflow-cleanup"]
    assert "eks.amazonaws.com/role-arn" not in account["metadata"].get("annotations", {})
    (role,) = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "eksflow-cleanup"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "delete"]}]
    env = {e["name"]: e["value"] for e in spec["containers"][0]["env"]}
    assert env["SELECTOR"] == "app.kubernetes.io/instance=eksflow,app.kubernetes.io/component=worker"
    assert '("Succeeded", "Failed")' in spec["containers"][0]["args"][0]
    assert not [d for d in render(sets=("cleanup.enabled=false",)) if d["kind"] == "CronJob"]


@pytest.mark.parametrize("name", sorted(VALUE_FILES))
def test_example_values_files_render_lint_and_are_deterministic(name):
    args = ["template", "eksflow", str(VALUE_FILES[name].parent), "-f", str(VALUE_FILES[name])]
    assert helm(*args).stdout == helm(*args).stdout
    lint = helm("lint", "--strict", str(VALUE_FILES[name].parent), "-f", str(VALUE_FILES[name]))
    assert "0 chart(s) failed" in lint.stdout


def test_required_sets_are_enough_without_a_values_file():
    assert render(base=None, sets=REQUIRED_SETS)

"""IAM enforced on the local cluster: Terraform's own module (terraform/modules/irsa) made the roles on the
emulator, the emulator enforces IAM, and every pod calls AWS only with its role's web-identity session. The
reference pipelines succeeding under it (test_local_cluster.py, the fault suite) show each role's policy is
enough — the triggerer's deferred waits and the api-server's log reads included; here: a call outside a role is
denied to the pod that makes it, and nothing reaches the emulator without an identity."""

from __future__ import annotations

import json
import urllib.parse

import pytest
from botocore.exceptions import ClientError

from eksflow.platform import CONTROL_PLANE, NAMESPACE
from eksflow.roles import ROLES
from eksflow_dev.cluster.platform_values import ENV
from eksflow_dev.emulator.seed import emulator_client
from eksflow_dev.local.runs import wait_for_run
from tests.support.cluster import finished_try_log

pytestmark = [pytest.mark.slow, pytest.mark.cluster]
PROBE_DAG = "iam_probe_outside_the_role"  # tests/cluster_dags/iam_probe.py


def test_every_role_is_terraforms_and_trusts_only_its_own_service_account(local_platform):
    state = json.loads((local_platform.state_dir / "terraform" / "terraform.tfstate").read_text())
    made = {
        instance["attributes"]["name"]
        for resource in state["resources"]
        if resource.get("module") == "module.irsa" and resource["type"] == "aws_iam_role"
        for instance in resource["instances"]
    }
    accounts = {r.iam_role_name(ENV): r.service_account for r in ROLES.values()}
    accounts |= {c.iam_role_name(ENV): c.service_account for c in CONTROL_PLANE}
    assert made == set(accounts)
    iam = local_platform.aws_client("iam")
    for role_name, account in accounts.items():
        trust = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
        trust = json.loads(urllib.parse.unquote(trust)) if isinstance(trust, str) else trust
        (statement,) = trust["Statement"]
        subjects = [v for cond in statement["Condition"].values() for k, v in cond.items() if k.endswith(":sub")]
        assert subjects == [f"system:serviceaccount:{NAMESPACE}:{account}"], (role_name, statement)


def test_the_emulator_refuses_a_call_without_an_iam_identity(local_platform):
    with pytest.raises(ClientError) as refused:
        emulator_client(local_platform.emulator_url, "s3").list_buckets()  # the emulator's dummy keys
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_task_pod_calling_outside_its_role_is_denied_naming_the_action_and_the_role(local_platform):
    local_platform.api.wait_for_dags({PROBE_DAG}, timeout=180)
    local_platform.api.unpause(PROBE_DAG)
    run_id = local_platform.api.trigger(PROBE_DAG, {})
    run = wait_for_run(local_platform, PROBE_DAG, run_id, timeout=300, progress=lambda _: None)
    assert run["state"] == "failed"
    log = finished_try_log(local_platform, PROBE_DAG, run_id, "ecs_runner_lists_training_jobs", 1)
    assert "AccessDenied" in log, log[-3000:]
    assert "sagemaker:ListTrainingJobs" in log, log[-3000:]
    assert f"assumed-role/{ROLES['ecs-runner'].iam_role_name(ENV)}/" in log, log[-3000:]

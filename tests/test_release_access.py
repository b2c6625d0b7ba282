"""The release's identity in the cluster (issue 12, row 3), on the local API server (control plane only, no node):
authenticated as EKS does it for the release principal — its access entry maps it to the role model's release group
and holds AmazonEKSAdminPolicy on the platform namespace, as terraform/modules/eks makes it — it may run the real
release steps once a cluster admin has applied `eksflow cluster-bootstrap`, and nothing else at the cluster scope.
Pods never run here: a stand-in kubelet reports them done (tests/support/cluster.py)."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from eksflow.platform import CONTROL_PLANE, NAMESPACE, RELEASE_KUBERNETES_GROUP
from eksflow.roles import ROLES
from eksflow_dev import release_access
from eksflow_dev.cluster.api.access_entries import ADMIN, AccessPolicy
from eksflow_dev.deploy import RELEASE, Deploy, cluster_bootstrap, execute, prepare
from tests.helm import helm_binary, kubectl_binary
from tests.support.cluster import as_access_entry, control_plane, kubectl, stand_in_kubelet
from tests.support.trust_store import REGION_BUNDLE, ca_bundle, trust_store

REPO = Path(__file__).resolve().parents[1]
ACCOUNT = "123456789012"
RELEASE_PRINCIPAL = f"arn:aws:iam::{ACCOUNT}:role/eksflow-dev-github-release"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
DIGEST = "sha256:" + "ab" * 32
POLICIES = "validatingadmissionpolicies.admissionregistration.k8s.io"


def _terraform_outputs() -> dict:
    """What `terraform output -json` of envs/dev gives the release (the emulator's account)."""
    arn = f"arn:aws:iam::{ACCOUNT}:role/"
    outputs = {
        "env": "dev",
        "region": "eu-west-1",
        "cluster_name": "eksflow-dev",
        "ecr_repository_url": f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/eksflow/airflow",
        "task_role_arns": {name: arn + role.iam_role_name("dev") for name, role in ROLES.items()},
        "control_plane_role_arns": {c.name: arn + c.iam_role_name("dev") for c in CONTROL_PLANE},
        "log_bucket": "eksflow-dev-logs",
        "vpc_cidr": "10.10.0.0/16",
        "ecs_task_subnet_ids": ["subnet-0a1b2c3d4e5f60718", "subnet-0a1b2c3d4e5f60719"],
        "ecs_task_security_group_ids": ["sg-0a1b2c3d4e5f60720"],
        "db_secret_arn": f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:rds!db-1",
        "db_endpoint": "eksflow-dev.abc.eu-west-1.rds.amazonaws.com:5432",
    }
    return {name: {"sensitive": False, "value": value} for name, value in outputs.items()}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A checkout as the release job has it: the chart, Terraform's outputs, and tools on PATH — helm, kubectl
    and an `aws` that answers only the DB secret (Secrets Manager is not what this test is about)."""
    root = tmp_path_factory.mktemp("release")
    (root / "helm").symlink_to(REPO / "helm")
    (root / "build").mkdir()
    (root / "build" / "terraform-outputs-dev.json").write_text(json.dumps(_terraform_outputs()))
    tools = root / "bin"
    tools.mkdir()
    (tools / "helm").symlink_to(helm_binary())
    (tools / "kubectl").symlink_to(kubectl_binary())
    (tools / "aws").write_text('#!/bin/sh\necho \'{"username": "airflow", "password": "not-a-secret"}\'\n')
    (tools / "aws").chmod(0o755)
    return root


@pytest.fixture(scope="module", autouse=True)
def rds_trust_store(tmp_path_factory):
    """The release's CA step fetches the Region's RDS bundle from this stand-in (no internet here; the step's own
    checks: tests/test_deploy.py)."""
    bundles = {REGION_BUNDLE: ca_bundle()}
    with (
        trust_store(tmp_path_factory.mktemp("trust-store"), bundles) as (url, ca),
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setattr("eksflow_dev.deploy.RDS_TRUSTSTORE", url)
        patch.setenv("SSL_CERT_FILE", str(ca))
        yield


@contextlib.contextmanager
def _in_workdir(workdir: Path, kube_env: dict[str, str]) -> Iterator[Deploy]:
    """The release stage of dev as `make deploy` runs it from the checkout, with this kubeconfig."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        patch.setenv("PATH", f"{workdir / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin")
        patch.setenv("KUBECONFIG", kube_env["KUBECONFIG"])
        deploy = Deploy(env="dev", image_tag=COMMIT, repo=workdir, stage="release")
        prepare(deploy)
        (workdir / deploy.digest_file).write_text(DIGEST)  # what `eksflow image verify` finds in ECR
        yield deploy


def _cluster_steps(deploy: Deploy) -> list:
    """The release stage's steps but Terraform's (init, output), ECR's (`eksflow image verify`: the digest file
    stands for it) and `aws eks update-kubeconfig` (the access entry's kubeconfig stands for it); helm's 35 minutes
    shortened so a failure shows in minutes."""
    outside = (["terraform"], ["aws"], ["eksflow", "image"])
    steps = [step for step in deploy.steps() if step.argv[:1] not in outside and step.argv[:2] not in outside]
    for step in steps:
        step.argv = ["3m" if arg == "35m" else arg for arg in step.argv]
    return steps


def _release_identity(cluster) -> dict[str, str]:
    """kubectl's environment as the release principal: its access entry as terraform/modules/eks makes it."""
    return as_access_entry(cluster, RELEASE_PRINCIPAL, [RELEASE_KUBERNETES_GROUP], [AccessPolicy(ADMIN, (NAMESPACE,))])


def test_without_the_bootstrap_the_release_stops_before_any_change_naming_the_fix(workdir, tmp_path):
    with control_plane(tmp_path / "cluster") as cluster, _in_workdir(workdir, _release_identity(cluster)) as deploy:
        with pytest.raises(ValueError) as refused:
            execute(deploy, _cluster_steps(deploy))
        assert kubectl(cluster, "get", "namespace", NAMESPACE, check=False).returncode != 0, "nothing may change"
    message = str(refused.value)
    assert message.startswith(
        f"the release identity may not get namespaces/{NAMESPACE} (`kubectl auth can-i get namespaces/{NAMESPACE} "
        "-A` says no; "
    )
    assert message.endswith(
        "a cluster admin (terraform admin_principal_arns) runs `make cluster-bootstrap ENV=dev APPLY=1` once "
        "(terraform/README.md, Cluster bootstrap)"
    )
    assert "\n" not in message


@pytest.fixture(scope="module")
def released(workdir, tmp_path_factory):
    """A cluster where the admin applied the bootstrap and the release identity then ran the release stage's steps
    twice (an install, an upgrade)."""
    with control_plane(tmp_path_factory.mktemp("release-cluster")) as cluster:
        with _in_workdir(workdir, cluster.kubectl_env()):  # the cluster admin, after `make chart-values ENV=dev`
            subprocess.run(
                [sys.executable, "-m", "eksflow.cli", "chart-values", "--terraform-output",
                 "build/terraform-outputs-dev.json", "--output", "build/chart-values-dev.yaml"],
                check=True, capture_output=True,
            )  # fmt: skip
            cluster_bootstrap("dev", apply=True, out=io.StringIO())
        as_release = _release_identity(cluster)
        with _in_workdir(workdir, as_release) as deploy, stand_in_kubelet(cluster, NAMESPACE):
            execute(deploy, _cluster_steps(deploy))
            execute(deploy, [step for step in _cluster_steps(deploy) if step.argv[:2] == ["helm", "upgrade"]])
        yield cluster, as_release


def test_after_the_bootstrap_the_release_installs_and_upgrades_the_chart_as_the_release_identity(released):
    cluster, _ = released
    records = kubectl(cluster, "get", "secrets", "-n", NAMESPACE, "-l", f"name={RELEASE}", "-o", "json").stdout
    assert sorted(s["metadata"]["labels"]["status"] for s in json.loads(records)["items"]) == [
        "deployed",
        "superseded",
    ]
    installed = json.loads(kubectl(cluster, "get", POLICIES, "-o", "json").stdout)["items"]
    assert len(installed) == 2
    role = json.loads(kubectl(cluster, "get", "clusterrole", release_access.CLUSTER_ROLE, "-o", "json").stdout)
    (named,) = [
        rule
        for rule in role["rules"]
        if rule["resources"] == ["validatingadmissionpolicies"] and "resourceNames" in rule
    ]
    assert sorted(named["resourceNames"]) == sorted(p["metadata"]["name"] for p in installed)


def _copy_of_the_charts_policy(cluster, name: str) -> str:
    policy = json.loads(kubectl(cluster, "get", POLICIES, "-o", "json").stdout)["items"][0]
    policy["metadata"] = {"name": name}
    policy.pop("status", None)
    return json.dumps(policy)


THEIRS = "someone-elses-policy"
APPLY = ("apply", "--server-side", "--field-manager", "helm", "--force-conflicts")  # a write without a read first
# What the release identity must not do at the cluster scope or outside its namespace: (kubectl arguments, stdin
# or None, the verb and resource the API server names in the refusal).
REFUSALS = {
    "create another namespace": (["create", "namespace", "other"], None, "create", "namespaces"),
    "apply another namespace": (
        [*APPLY, "-f", "-"],
        json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}}),
        "patch",
        "namespaces",
    ),
    "delete its own namespace": (["delete", "namespace", NAMESPACE], None, "delete", "namespaces"),
    "create its own namespace": (["create", "namespace", NAMESPACE], None, "create", "namespaces"),
    "relabel its own namespace privileged (patch)": (
        [*APPLY, "-f", "-"],
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "privileged"}},
            }
        ),
        "patch",
        "namespaces",
    ),
    "relabel its own namespace privileged (label)": (
        ["label", "--overwrite", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce=privileged"],
        None,
        "patch",
        "namespaces",
    ),
    "relabel kube-system": (
        [*APPLY, "-f", "-"],
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": "kube-system", "labels": {"pod-security.kubernetes.io/enforce": "privileged"}},
            }
        ),
        "patch",
        "namespaces",
    ),
    "rewrite another admission policy": (
        [*APPLY, "-f", "-"],
        f"policy:{THEIRS}",
        "patch",
        "validatingadmissionpolicies",
    ),
    "delete another admission policy": (["delete", POLICIES, THEIRS], None, "delete", "validatingadmissionpolicies"),
    "post a new admission policy": (
        ["create", "-f", "-"],
        "policy:new-policy",
        "create",
        "validatingadmissionpolicies",
    ),
    "apply a new admission policy": (
        [*APPLY, "-f", "-"],
        "policy:applied-policy",
        "patch",
        "validatingadmissionpolicies",
    ),
    "delete another policy binding": (
        ["delete", "validatingadmissionpolicybindings.admissionregistration.k8s.io", THEIRS],
        None,
        "delete",
        "validatingadmissionpolicybindings",
    ),
    "create a ClusterRole": (
        [*APPLY, "-f", "-"],
        json.dumps({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "x"}}),
        "patch",
        "clusterroles",
    ),
    "widen its own ClusterRole": (
        [*APPLY, "-f", "-"],
        json.dumps(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": release_access.CLUSTER_ROLE},
                "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
            }
        ),
        "patch",
        "clusterroles",
    ),
    "bind itself to cluster-admin": (
        ["create", "-f", "-"],
        json.dumps(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "release-is-admin"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "eksflow-release"}],
            }
        ),
        "create",
        "clusterrolebindings",
    ),
    "read kube-system's Secrets": (["get", "secrets", "-n", "kube-system"], None, "list", "secrets"),
    "read every namespace's Secrets": (["get", "secrets", "--all-namespaces"], None, "list", "secrets"),
    "run a pod in default": (["run", "x", "--image=busybox", "-n", "default"], None, "create", "pods"),
    "list nodes": (["get", "nodes"], None, "list", "nodes"),
}


@pytest.mark.parametrize("refusal", REFUSALS, ids=lambda name: name.replace(" ", "-"))
def test_the_release_identity_may_do_nothing_else(released, refusal):
    cluster, as_release = released
    if kubectl(cluster, "get", POLICIES, THEIRS, check=False).returncode != 0:  # the admin's, not the chart's
        kubectl(cluster, "create", "-f", "-", stdin=_copy_of_the_charts_policy(cluster, THEIRS))
        binding = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": THEIRS},
            "spec": {"policyName": THEIRS, "validationActions": ["Deny"]},
        }
        kubectl(cluster, "create", "-f", "-", stdin=json.dumps(binding))
    args, stdin, verb, resource = REFUSALS[refusal]
    if stdin and stdin.startswith("policy:"):
        stdin = _copy_of_the_charts_policy(cluster, stdin.removeprefix("policy:"))
    result = kubectl(cluster, *args, stdin=stdin, env=as_release, check=False)
    assert result.returncode != 0, result.stdout
    assert f'User "{RELEASE_PRINCIPAL}" cannot {verb} resource "{resource}"' in result.stderr, result.stderr


def test_the_release_identity_may_only_read_its_namespace_the_bootstrap_made_restricted(released):
    cluster, as_release = released
    answers = {
        verb: kubectl(cluster, "auth", "can-i", verb, f"namespaces/{NAMESPACE}", "-A", env=as_release, check=False)
        for verb in ("get", "create", "patch", "update", "delete")
    }
    assert {verb: answer.stdout.strip() for verb, answer in answers.items()} == {
        "get": "yes",
        "create": "no",
        "patch": "no",
        "update": "no",
        "delete": "no",
    }
    namespace = json.loads(kubectl(cluster, "get", "namespace", NAMESPACE, "-o", "json").stdout)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_a_release_principal_without_its_namespace_access_policy_is_told_to_run_the_infra_stage(released, workdir):
    cluster, _ = released
    without_policy = as_access_entry(cluster, RELEASE_PRINCIPAL + "-no-policy", [RELEASE_KUBERNETES_GROUP])
    with _in_workdir(workdir, without_policy) as deploy:
        (check,) = [step for step in deploy.steps() if step.title.startswith("the release may do each")]
        with pytest.raises(ValueError) as refused:
            execute(deploy, [check])
    assert "may not create " in str(refused.value) and f"in the namespace {NAMESPACE}" in str(refused.value)
    assert str(refused.value).endswith(
        "its EKS access entry lacks AmazonEKSAdminPolicy on the namespace (terraform/modules/eks "
        "namespace_admin_principal_arns: run the infra stage)"
    )

"""`make deploy`: the dry-run command plan, the order of its steps, and clear errors before anything changes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from eksflow.platform import DB_CA_FILE
from eksflow_dev.cluster.pki import serving_pair
from eksflow_dev.deploy import (
    DB_CA_CONFIGMAP,
    DB_CA_KEY,
    DB_SECRET,
    RDS_TRUSTSTORE,
    Deploy,
    execute,
    namespace_manifest,
    rds_ca_bundle,
)
from tests.helm import kubectl_binary
from tests.support.trust_store import REGION_BUNDLE, ca_bundle, trust_store

REPO = Path(__file__).resolve().parents[1]


def _deploy(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "eksflow.cli", "deploy", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, cwd=REPO, env=env)


SHA = "0123456789abcdef0123456789abcdef01234567"


def test_dry_run_prints_the_complete_plan_in_order():
    result = _deploy("--env", "dev", "--image-tag", SHA, "--dry-run")
    assert result.returncode == 0, result.stderr
    commands = [line.strip() for line in result.stdout.splitlines() if line.startswith("    ")]
    assert commands == [
        "terraform -chdir=terraform/envs/dev init -input=false -backend-config=backend.hcl",
        "terraform -chdir=terraform/envs/dev plan -input=false -out=../../../build/terraform-dev.tfplan",
        "terraform -chdir=terraform/envs/dev apply -input=false ../../../build/terraform-dev.tfplan"
        "   # asks for confirmation",
        "terraform -chdir=terraform/envs/dev output -json > build/terraform-outputs-dev.json",
        "eksflow chart-values --terraform-output build/terraform-outputs-dev.json --output build/chart-values-dev.yaml",
        f"eksflow image verify {SHA} --region <output region> --digest-file build/image-digest-dev.txt",
        "aws eks update-kubeconfig --name <output cluster_name> --region <output region>",
        "kubectl get --raw /readyz --request-timeout=15s",
        "(in-process)",
        "(in-process)",
        "(in-process)",
        "(in-process)",
        "helm upgrade --install eksflow helm/eksflow --namespace eksflow -f helm/eksflow/values-dev.yaml "
        f"-f build/chart-values-dev.yaml --set image.tag={SHA} --set-file image.digest=build/image-digest-dev.txt "
        "--server-side=true --wait --rollback-on-failure --timeout 35m",
        "helm test eksflow --namespace eksflow --timeout 5m",
    ]
    assert f"Secret {DB_SECRET} from Secrets Manager" in result.stdout and "value never printed" in result.stdout
    assert "[10/14] namespace eksflow exists with restricted Pod Security (the cluster bootstrap's)" in result.stdout
    assert "[9/14] the release may do each of its steps in the cluster (kubectl auth can-i" in result.stdout
    ca_step = f"[11/14] ConfigMap {DB_CA_CONFIGMAP}: the RDS CA bundle {RDS_TRUSTSTORE}/<output region>/<output region>"
    assert ca_step in result.stdout and "[12/14] Secret" in result.stdout  # the bundle before the URL naming it


def test_stages_split_terraform_from_the_release():
    infra = _deploy("--env", "prod", "--image-tag", SHA, "--dry-run", "--stage", "infra", "--yes").stdout
    release = _deploy("--env", "prod", "--image-tag", SHA, "--dry-run", "--stage", "release").stdout
    assert "[3/3] terraform apply" in infra and "helm" not in infra and "asks for confirmation" not in infra
    assert "image verify" not in infra
    assert "[1/12] terraform init" in release and "apply -input" not in release
    assert f"eksflow image verify {SHA}" in release
    assert "terraform -chdir=terraform/envs/prod output -json" in release


def test_bad_input_is_refused_by_name():
    assert "ENV=qa: no such environment (use dev or prod)" in _deploy("--env", "qa", "--image-tag", SHA).stderr
    assert "IMAGE_TAG is empty" in _deploy("--env", "dev", "--dry-run").stderr


@pytest.mark.parametrize("tag", ["0123abc", "1.4.0", "latest", SHA.upper()])
def test_only_a_full_commit_sha_is_deployed_since_its_revision_is_checked(tag):
    """The deploy checks the image's revision label against the tag: a tag that is no commit cannot be checked."""
    result = _deploy("--env", "dev", "--image-tag", tag, "--dry-run")
    assert result.returncode == 2
    assert f"IMAGE_TAG={tag!r} is not a full commit SHA" in result.stderr


def test_the_digest_file_the_image_step_writes_is_the_value_helm_renders(tmp_path):
    """`helm --set-file image.digest=<file>` with the file `eksflow image verify --digest-file` writes, real helm."""
    from eksflow_dev.ecr_image import write_digest
    from tests.helm import helm, rendered_templates, template_args

    digest = "sha256:" + "0123456789abcdef" * 4
    write_digest(str(tmp_path / "digest"), digest)
    args = [*template_args("image.tag=" + SHA), "--set-file", f"image.digest={tmp_path / 'digest'}"]
    docs = [doc for doc in yaml.safe_load_all(helm(*args).stdout) if doc]
    pod = rendered_templates(docs)["default.yaml"]
    assert pod["spec"]["containers"][0]["image"].endswith(f"/eksflow/airflow@{digest}")
    (tmp_path / "digest").write_text(digest + "\n")  # what a shell `echo` would leave: refused, not half-used
    assert "digest" in helm(*args, check=False).stderr


def _make_deploy(tmp_path, **variables: str) -> subprocess.CompletedProcess:
    """`make deploy VAR=value …` as a user types it; PATH without terraform/helm, so nothing real can start."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    args = [f"{name}={value}" for name, value in variables.items()]
    command = ["make", "--no-print-directory", "-C", str(REPO), "deploy", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path, env=env)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"ENV": "dev; touch {marker}; true", "DRY_RUN": "1"}, "ENV='dev; touch"),
        ({"ENV": "dev --image-tag abc #", "DRY_RUN": "1"}, "ENV='dev --image-tag abc #': use ENV=dev or ENV=prod"),
        ({"ENV": "dev", "DRY_RUN": "yes"}, "DRY_RUN='yes': use DRY_RUN=1 or leave it unset"),
        ({"ENV": "dev", "DRY_RUN": "1", "IMAGE_TAG": 'x"; touch {marker}; "'}, "IMAGE_TAG"),
        ({"ENV": "dev", "DRY_RUN": "1", "IMAGE_TAG": "abc,networkPolicy.enabled=false"}, "IMAGE_TAG"),
        ({"ENV": "dev", "DRY_RUN": "1", "STAGE": "all; touch {marker}"}, "--stage all; touch"),
    ],
    ids=["shell-in-env", "flags-in-env", "dry-run-word", "shell-in-image-tag", "set-in-image-tag", "shell-in-stage"],
)
def test_make_deploy_refuses_bad_variables_before_any_step_and_never_runs_them(tmp_path, variables, message):
    marker = tmp_path / "injected"
    variables = {name: value.replace("{marker}", str(marker)) for name, value in variables.items()}
    result = _make_deploy(tmp_path, **variables)
    assert result.returncode != 0, result.stdout
    assert message in result.stdout + result.stderr, result.stdout + result.stderr
    assert "terraform" not in result.stdout  # no plan printed, no step started
    assert not marker.exists(), "a make variable ran as a shell command"


def test_missing_tools_stop_it_before_anything_changes(tmp_path):
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # python only: no terraform/aws/kubectl/helm
    build = REPO / "build"
    existed = build.exists()
    result = _deploy("--env", "dev", "--image-tag", SHA, env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "eksflow: error: missing tools: terraform, aws, kubectl, helm "
        "(install them; `make deploy-tools` provides helm and kubectl)"
    ]
    assert build.exists() == existed, "nothing may be written before the checks pass"


def test_the_db_secret_is_the_one_the_chart_reads_and_the_namespace_is_restricted():
    values = yaml.safe_load((REPO / "helm" / "eksflow" / "values.yaml").read_text())
    assert values["database"]["existingSecret"] == DB_SECRET
    assert values["database"]["tls"] == {"caConfigMap": DB_CA_CONFIGMAP, "caConfigMapKey": DB_CA_KEY}
    namespace = yaml.safe_load(namespace_manifest())
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_an_unreachable_cluster_is_one_clear_line(tmp_path, monkeypatch):
    """The real kubectl against a kubeconfig whose API server is a closed port on 127.0.0.1."""
    kubectl = Path(kubectl_binary())
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: closed\n"
        "clusters: [{name: closed, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: nobody, user: {token: not-a-secret}}]\n"
        "contexts: [{name: closed, context: {cluster: closed, user: nobody}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("PATH", f"{kubectl.parent}{os.pathsep}{os.environ['PATH']}")
    deploy = Deploy(env="dev", image_tag=SHA)
    (check,) = [step for step in deploy.steps() if step.title.startswith("check that the cluster answers")]
    with pytest.raises(ValueError, match=r"^the cluster's API does not answer: check network access"):
        execute(deploy, [check])


def test_the_release_stops_before_any_change_unless_the_bootstrap_made_its_namespace_restricted(tmp_path, monkeypatch):
    """The real kubectl against the local API server, as its admin: no namespace, then one without the labels, then
    the bootstrap's (`namespace_manifest`)."""
    from tests.support.cluster import control_plane, kubectl

    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "kubectl").symlink_to(kubectl_binary())
    fix = (
        "a cluster admin (terraform admin_principal_arns) runs `make cluster-bootstrap ENV=dev APPLY=1` once "
        "(terraform/README.md, Cluster bootstrap)"
    )
    with control_plane(tmp_path / "cluster") as cluster:
        for name, value in cluster.kubectl_env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
        deploy = Deploy(env="dev", image_tag=SHA, repo=tmp_path)
        (check,) = [step for step in deploy.steps() if step.title.startswith("namespace eksflow exists")]
        with pytest.raises(ValueError) as missing:
            execute(deploy, [check])
        kubectl(cluster, "create", "namespace", "eksflow")
        kubectl(cluster, "label", "namespace", "eksflow", "pod-security.kubernetes.io/enforce=privileged")
        with pytest.raises(ValueError) as privileged:
            execute(deploy, [check])
        kubectl(cluster, "apply", "--server-side", "-f", "-", stdin=namespace_manifest())
        execute(deploy, [check])
    assert str(missing.value) == f"the namespace eksflow does not exist: {fix}"
    assert str(privileged.value) == (
        "the namespace eksflow does not enforce restricted Pod Security (label pod-security.kubernetes.io/enforce "
        f"is 'privileged', not 'restricted'): {fix}"
    )


def test_the_db_secret_is_applied_with_its_value_in_no_annotation(tmp_path, monkeypatch):
    """Applied with the real kubectl to the local API server: a client-side apply would copy the whole manifest,
    the DB URL with its password, into the last-applied-configuration annotation."""
    import base64
    import json

    from tests.support.cluster import control_plane, kubectl

    with control_plane(tmp_path / "cluster") as cluster:
        kubectl(cluster, "create", "namespace", "eksflow")
        tools = tmp_path / "bin"
        tools.mkdir()
        (tools / "aws").write_text('#!/bin/sh\necho \'{"username": "airflow", "password": "p@ss/w0rd"}\'\n')
        (tools / "aws").chmod(0o755)
        (tools / "kubectl").symlink_to(kubectl_binary())
        (tmp_path / "build").mkdir()
        outputs = {"db_secret_arn": {"value": "arn:aws:secretsmanager:x"}, "db_endpoint": {"value": "db:5432"}}
        (tmp_path / "build" / "terraform-outputs-dev.json").write_text(json.dumps(outputs))
        # What deploys before this fix left: the Secret applied client-side, the URL in the annotation.
        old = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": DB_SECRET, "namespace": "eksflow"}}
        old["stringData"] = {"connection": "postgresql+psycopg2://airflow:p%40ss%2Fold@db:5432/airflow"}
        kubectl(cluster, "apply", "-f", "-", stdin=json.dumps(old))
        for name, value in cluster.kubectl_env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
        Deploy(env="dev", image_tag=SHA, repo=tmp_path)._apply_db_secret()
        Deploy(env="dev", image_tag=SHA, repo=tmp_path)._apply_db_secret()  # a second deploy updates it in place
        stored = json.loads(kubectl(cluster, "get", "secret", DB_SECRET, "-n", "eksflow", "-o", "json").stdout)
    assert base64.b64decode(stored["data"]["connection"]).decode() == (
        f"postgresql+psycopg2://airflow:p%40ss%2Fw0rd@db:5432/airflow?sslmode=verify-full&sslrootcert={DB_CA_FILE}"
    )
    assert "p%40ss" not in json.dumps(stored["metadata"]), stored["metadata"]


def test_the_ca_step_puts_the_regions_rds_bundle_fetched_over_https_into_the_configmap_the_chart_mounts(
    tmp_path, monkeypatch
):
    """The trust store's address is the only change (this machine has no internet): the fetch, its HTTPS checks
    and the real kubectl against the local API server run as in a deploy."""
    import json

    from tests.support.cluster import control_plane, kubectl

    bundle = ca_bundle()
    with (
        trust_store(tmp_path, {REGION_BUNDLE: bundle}) as (url, trusted),
        control_plane(tmp_path / "cluster") as cluster,
    ):
        kubectl(cluster, "create", "namespace", "eksflow")
        tools = tmp_path / "bin"
        tools.mkdir()
        (tools / "kubectl").symlink_to(kubectl_binary())
        (tmp_path / "build").mkdir()
        outputs = {"region": {"value": "eu-west-1"}}
        (tmp_path / "build" / "terraform-outputs-dev.json").write_text(json.dumps(outputs))
        for name, value in cluster.kubectl_env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
        monkeypatch.setenv("SSL_CERT_FILE", str(trusted))
        monkeypatch.setattr("eksflow_dev.deploy.RDS_TRUSTSTORE", url)
        deploy = Deploy(env="dev", image_tag=SHA, repo=tmp_path)
        (step,) = [s for s in deploy.steps() if s.title.startswith(f"ConfigMap {DB_CA_CONFIGMAP}")]
        execute(deploy, [step, step])  # a second deploy updates it in place
        stored = json.loads(kubectl(cluster, "get", "configmap", DB_CA_CONFIGMAP, "-n", "eksflow", "-o", "json").stdout)
    assert stored["data"] == {DB_CA_KEY: bundle.decode()}


@pytest.mark.parametrize(
    ("served", "trusted_ca", "message"),
    [
        ("bundle", "another", "certificate verify failed"),
        (None, "store", "HTTP 404 Not Found"),
        ("html", "store", "is not a CA bundle: no PEM certificates in it"),
        ("with-a-leaf", "store", "is not a CA bundle: 1 of its 2 certificates are not CA certificates"),
        ("expired", "store", "is not a CA bundle: none of its certificates is valid today"),
    ],
    ids=["untrusted-server", "no-bundle-for-the-region", "not-pem", "not-only-cas", "expired"],
)
def test_the_ca_step_refuses_an_untrusted_server_and_anything_but_a_ca_bundle(
    tmp_path, monkeypatch, served, trusted_ca, message
):
    bodies = {
        "bundle": ca_bundle(),
        "html": b"<html>maintenance</html>",
        "with-a-leaf": serving_pair("ca", "db", [], ["db"]).ca_cert + serving_pair("ca", "db", [], ["db"]).cert,
        "expired": serving_pair("expired-ca", "db", [], ["db"], days=0).ca_cert,
    }
    files = {} if served is None else {REGION_BUNDLE: bodies[served]}
    with trust_store(tmp_path, files) as (url, store_ca):
        another = tmp_path / "another-ca.pem"
        another.write_bytes(serving_pair("another-ca", "x", [], ["x"]).ca_cert)
        monkeypatch.setenv("SSL_CERT_FILE", str(store_ca if trusted_ca == "store" else another))
        monkeypatch.setattr("eksflow_dev.deploy.RDS_TRUSTSTORE", url)
        with pytest.raises(RuntimeError, match="left as they were") as refused:
            rds_ca_bundle("eu-west-1")
    assert message in str(refused.value), refused.value

"""The kind path without Docker: the scripts pass shellcheck and refuse clearly when tools are missing, the
manifests validate strictly and are restricted, values-kind.yaml points at exactly the Services, ports and
Secrets the kind files define, and the seeded emulator's ids become a values layer the chart renders.
(values-kind.yaml is also in every chart render/validation matrix; the real cluster run is test_kind_e2e.py.)"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import yaml

from eksflow.platform import NAMESPACE
from eksflow_dev import kind
from eksflow_dev.deploy import DB_SECRET, RELEASE
from tests.helm import VALUE_FILES, render, rendered_templates
from tests.scanners import scan_tool

REPO = Path(__file__).resolve().parents[1]
KIND = REPO / "kind"
SCRIPTS = sorted(KIND.glob("*.sh"))
KIND_VALUES = yaml.safe_load(VALUE_FILES["kind"].read_text())


def _manifests() -> list[dict]:
    return [doc for path in sorted((KIND / "manifests").glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())]


def _services() -> dict[str, dict]:
    return {f"{d['metadata']['name']}.{d['metadata']['namespace']}": d for d in _manifests() if d["kind"] == "Service"}


def test_scripts_pass_shellcheck_and_stop_on_errors():
    assert {p.name for p in SCRIPTS} == {"lib.sh", "up.sh", "e2e.sh", "down.sh"}
    result = subprocess.run(
        [scan_tool("shellcheck"), "--external-sources", "--severity=style", *map(str, SCRIPTS)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for script in SCRIPTS:
        if script.name != "lib.sh":
            assert "set -euo pipefail" in script.read_text(), script.name


def test_make_targets_run_the_scripts():
    makefile = (REPO / "Makefile").read_text()
    for target, script in (("kind-up", "kind/up.sh"), ("kind-down", "kind/down.sh")):
        assert re.search(rf"^{target}:.*## .+\n\t.*bash {script}", makefile, re.MULTILINE), target
    assert re.search(r"^kind-e2e:.*## .+\n(\t.*\n)*\t.*pytest tests/test_kind_e2e.py", makefile, re.MULTILINE)


def test_up_refuses_in_one_line_before_anything_changes_when_docker_is_missing(tmp_path):
    # A PATH with the other tools but neither docker nor kind (as on this CI machine).
    for tool in ("git", "curl", "python3", "kubectl", "helm", "base64", "dirname", "cat", "grep", "seq", "sleep"):
        found = shutil.which(tool) or str(REPO / ".tools" / "bin" / tool)
        if os.path.exists(found):
            (tmp_path / tool).symlink_to(found)
    env = {"PATH": str(tmp_path), "EKSFLOW": str(Path(sys.executable).with_name("eksflow")), "HOME": str(tmp_path)}
    result = subprocess.run(
        ["/bin/bash", str(KIND / "up.sh")], cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "kind: missing tools: docker kind (kind: https://kind.sigs.k8s.io; helm and kubectl: make tools)"
    ]
    assert result.stdout == "", "nothing may start before the tool check"


def test_facts_are_the_platform_names():
    script = f'eval "$({sys.executable} -m eksflow.cli kind facts)"; echo "$NAMESPACE $RELEASE $DB_SECRET $AWS_SECRET"'
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split() == [NAMESPACE, RELEASE, DB_SECRET, kind.AWS_SECRET]


def test_manifests_validate_strictly_and_every_pod_is_restricted():
    from kubernetes_validate import utils

    docs = _manifests()
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"} == {
        "postgres",
        "aws-emulator",
        "dags-repo",
    }
    for doc in docs:
        utils.validate(doc, "1.33.0", strict=True)
        if doc["kind"] == "Namespace":
            assert doc["metadata"]["name"] == kind.DEPS_NAMESPACE
            assert doc["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
            continue
        assert doc["metadata"]["namespace"] == kind.DEPS_NAMESPACE
        if doc["kind"] != "Deployment":
            continue
        spec = doc["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        for container in spec["containers"]:
            assert container["securityContext"] == {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            }, doc["metadata"]["name"]
            assert container["resources"]["limits"]["memory"] and container["readinessProbe"]


def _service_port(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    host = parsed.hostname.removesuffix(".svc.cluster.local")
    return host, parsed.port


def test_kind_values_point_at_the_kind_services_and_secrets():
    services = _services()
    env = {var["name"]: var for var in KIND_VALUES["extraEnv"]}
    for url in (env["AWS_ENDPOINT_URL"]["value"], KIND_VALUES["gitSync"]["repo"]):
        host, port = _service_port(url)
        assert host in services, f"{url}: no Service {host} in kind/manifests"
        assert port in [p["port"] for p in services[host]["spec"]["ports"]], url
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == kind.AWS_SECRET
    up = (KIND / "up.sh").read_text()
    assert "access-key-id=" in up and "secret-access-key=" in up
    postgres_port = services[f"postgres.{kind.DEPS_NAMESPACE}"]["spec"]["ports"][0]["port"]
    assert f"postgres.${{DEPS_NAMESPACE}}.svc.cluster.local:{postgres_port}/airflow" in up
    # The images the manifests run are the ones up.sh builds and loads.
    images = {
        c["image"]
        for d in _manifests()
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    for image in images - {i for i in images if i.startswith("postgres:")}:
        assert f"-t {image}" in up and image in up.split("kind load docker-image", 1)[1], image
    # git-sync clones the branch up.sh pushes; plain-HTTP git cannot make shallow clones.
    assert "refs/heads/" + KIND_VALUES["gitSync"]["ref"] in up and KIND_VALUES["gitSync"]["depth"] == 0


def test_kind_values_are_local_only_and_keep_credentials_out_of_values():
    assert "LOCAL CLUSTERS ONLY" in VALUE_FILES["kind"].read_text()
    assert KIND_VALUES["auth"] == {"manager": "simple", "simpleAllAdminsForLocalUseOnly": True}
    assert all("value" not in v for v in KIND_VALUES["extraEnv"] if v["name"].startswith("AWS_SECRET"))
    assert KIND_VALUES["dagSettings"]["env"] == "local", "the emulator seeds the local environment's names"


def test_plain_http_git_is_refused_outside_the_cluster():
    from tests.helm import helm, template_args

    result = helm(*template_args("gitSync.repo=http://git.example.com/dags.git"), check=False)
    assert result.returncode != 0 and "/gitSync/repo" in result.stderr


def test_the_seeded_emulator_ids_become_a_values_layer_the_chart_renders(emulator, tmp_path):
    emulator.reset(reseed=False)  # an empty emulator, as kind/up.sh finds it
    result = subprocess.run(
        [sys.executable, "-m", "eksflow.cli", "kind", "seed", "--endpoint-url", emulator.url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    layer = tmp_path / "seeded-values.yaml"
    layer.write_text(result.stdout)
    seeded = yaml.safe_load(result.stdout)["dagSettings"]
    ec2 = emulator.client("ec2")
    assert seeded["ecsSubnets"] and set(seeded["ecsSubnets"]) <= {
        s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]
    }
    groups = {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    assert seeded["ecsSecurityGroups"] and set(seeded["ecsSecurityGroups"]) <= groups
    docs = render(layer, base=VALUE_FILES["kind"])
    for pod in rendered_templates(docs).values():
        env = {v["name"]: v.get("value") for v in pod["spec"]["containers"][0]["env"]}
        assert env["EKSFLOW_ECS_SUBNETS"] == ",".join(seeded["ecsSubnets"])
        assert env["AWS_ENDPOINT_URL"] == KIND_VALUES["extraEnv"][0]["value"]


def test_only_the_kind_e2e_may_skip_in_ci():
    mark = re.compile(r"^\s*@pytest\.mark\.allowed_ci_skip|^pytestmark.*allowed_ci_skip", re.MULTILINE)
    users = {path.name for path in (REPO / "tests").glob("test_*.py") if mark.search(path.read_text())}
    assert users == {"test_kind_e2e.py"}

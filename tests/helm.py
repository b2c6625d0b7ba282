"""Run the real helm on the chart; find it where `make tools` puts it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.tools import find_tool

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "helm" / "eksflow"
DEV_VALUES = CHART / "values-dev.yaml"
VALUE_FILES = {name: CHART / f"values-{name}.yaml" for name in ("dev", "prod", "kind")}
# The EKS Kubernetes versions rendered objects are validated against (kubernetes-validate, strict).
EKS_KUBERNETES_VERSIONS = ("1.32.0", "1.33.0", "1.34.0", "1.35.0")


def helm_binary() -> str:
    return find_tool("helm", os.environ.get("EKSFLOW_HELM"), shutil.which("helm"), REPO / ".tools" / "bin" / "helm")


def kubectl_binary() -> str:
    return find_tool("kubectl", shutil.which("kubectl"), REPO / ".tools" / "bin" / "kubectl")


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([helm_binary(), *args], capture_output=True, text=True, check=False, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
    return result


# The inputs the chart requires beyond its defaults (no defaults exist for them).
REQUIRED_SETS = (
    "auth.aws.samlMetadataUrl=https://portal.sso.eu-west-1.amazonaws.com/saml/metadata/TEST",
    "auth.aws.avpPolicyStoreId=PSTEST",
    "auth.aws.baseUrl=https://airflow.example.com",
    "networkPolicy.databaseCidrs[0]=10.10.0.0/16",  # make chart-values sets the VPC's CIDR
)


def template_args(*sets: str, base: Path | None = DEV_VALUES) -> list[str]:
    """`helm template` arguments: the chart with the dev example values (the required inputs) and --set."""
    args = ["template", "eksflow", str(CHART)] + (["-f", str(base)] if base else [])
    for item in sets:
        args += ["--set", item]
    return args


def render(
    *value_files: Path, sets: tuple[str, ...] = (), namespace: str = "eksflow", base: Path | None = DEV_VALUES
) -> list[dict]:
    args = ["template", "eksflow", str(CHART), "--namespace", namespace]
    for path in (base, *value_files) if base else value_files:
        args += ["-f", str(path)]
    for item in sets:
        args += ["--set", item]
    return [doc for doc in yaml.safe_load_all(helm(*args).stdout) if doc]


def pod_spec(doc: dict) -> dict | None:
    """The pod spec of a rendered workload (Deployment, Job, CronJob), else None."""
    if doc["kind"] in {"Deployment", "Job"}:
        return doc["spec"]["template"]["spec"]
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def rendered_templates(docs: list[dict]) -> dict[str, dict]:
    """The worker pod templates of a render, by file name (from the pod-templates ConfigMap)."""
    (configmap,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("pod-templates")]
    return {name: yaml.safe_load(body) for name, body in configmap["data"].items()}


def local_value_files(directory: Path) -> list[Path]:
    """The value files the local cluster installs with: values-local.yaml and the generated layer (written into
    `directory`) that stands for Terraform's outputs."""
    from eksflow_dev.cluster.platform_values import values_layer
    from eksflow_dev.cluster.stack import LOCAL_VALUES
    from eksflow_dev.local.offline import REGION

    layer = directory / "platform-values.yaml"
    layer.write_text(values_layer(REGION))
    return [LOCAL_VALUES, layer]

"""``make deploy ENV=…``: Terraform, chart values from its outputs, the image's digest (its revision label checked
in ECR), a check of the namespace the cluster bootstrap made, the DB Secret, helm upgrade with that digest, helm
test — each step printed before it runs; ``DRY_RUN=1`` prints the exact commands and runs nothing.

The DB Secret is built from the RDS-managed secret in Secrets Manager inside this process: its value is never
printed, written to disk or put on a command line. Its URL verifies the server (sslmode=verify-full) against the
Region's RDS CA bundle, which the step before fetches over HTTPS into the ConfigMap the chart mounts.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import quote

import yaml

from eksflow.platform import DB_CA_FILE, NAMESPACE, ecr_repository_name
from eksflow_dev import release_access
from eksflow_dev.chartvalues import output_values

ENVIRONMENTS = ("dev", "prod")
RELEASE = "eksflow"
# The chart's database.existingSecret (a test checks they agree); a Secret's name, not a value.
DB_SECRET = "eksflow-metadata-db"  # noqa: S105
# The chart's database.tls.caConfigMap and caConfigMapKey (a test checks they agree).
DB_CA_CONFIGMAP, DB_CA_KEY = "eksflow-db-ca", "ca.pem"
# Amazon's RDS trust store: <region>/<region>-bundle.pem holds every CA that issues RDS server certificates in
# that Region, current and announced ones (docs/security.md: why it is fetched at every deploy).
RDS_TRUSTSTORE = "https://truststore.pki.rds.amazonaws.com"
TOOLS = ("terraform", "aws", "kubectl", "helm")
STAGES = ("all", "infra", "release")  # infra: init, plan, apply; release: the rest (separately approvable in CI)


@dataclass
class Step:
    title: str
    argv: list[str] = field(default_factory=list)
    action: Callable[[], None] | None = None  # in-process steps (secrets); described, never echoed with values
    confirm: bool = False
    stdout_to: str | None = None
    failure: str | None = None  # one clear line instead of the tool's exit status


# The image workflow tags each image with its full commit SHA, and the deploy checks the image's revision label
# against it. It also reaches `helm --set image.tag=…`, where ',' or '=' would set other values.
IMAGE_TAG_RE = re.compile(r"[0-9a-f]{40}")


@dataclass
class Deploy:
    env: str
    image_tag: str
    repo: Path = Path(".")
    auto_approve: bool = False
    stage: str = "all"

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"--stage {self.stage}: use one of {', '.join(STAGES)}")
        if self.env not in ENVIRONMENTS:
            raise ValueError(f"ENV={self.env}: no such environment (use {' or '.join(ENVIRONMENTS)})")
        if not self.image_tag:
            raise ValueError("IMAGE_TAG is empty: pass the image tag to deploy, e.g. IMAGE_TAG=$(git rev-parse HEAD)")
        if not IMAGE_TAG_RE.fullmatch(self.image_tag):
            raise ValueError(
                f"IMAGE_TAG={self.image_tag!r} is not a full commit SHA (40 lowercase hex digits): the image workflow "
                "tags each image with its commit and the deploy checks the image's revision label against it; pass "
                "the commit, e.g. IMAGE_TAG=$(git rev-parse HEAD) or IMAGE_TAG=$(git rev-parse 'v1.2.3^{commit}')"
            )
        self.tf_dir = f"terraform/envs/{self.env}"
        # The same files `make chart-values ENV=…` writes.
        self.outputs_file = f"build/terraform-outputs-{self.env}.json"
        self.values_layer = values_layer(self.env)
        self.digest_file = f"build/image-digest-{self.env}.txt"

    def steps(self) -> list[Step]:
        every = self._all_steps()
        # release starts with init too: it may run on a fresh machine (its own CI job) and reads the outputs.
        return {"all": every, "infra": every[:3], "release": [every[0], *every[3:]]}[self.stage]

    def _all_steps(self) -> list[Step]:
        tf = ["terraform", f"-chdir={self.tf_dir}"]
        plan = f"../../../build/terraform-{self.env}.tfplan"  # relative to -chdir
        return [
            Step("terraform init (S3 backend)", [*tf, "init", "-input=false", "-backend-config=backend.hcl"]),
            Step("terraform plan", [*tf, "plan", "-input=false", f"-out={plan}"]),
            Step("terraform apply the reviewed plan", [*tf, "apply", "-input=false", plan], confirm=True),
            Step("read Terraform outputs", [*tf, "output", "-json"], stdout_to=self.outputs_file),
            Step(
                "chart values from Terraform outputs",
                ["eksflow", "chart-values", "--terraform-output", self.outputs_file, "--output", self.values_layer],
            ),
            Step(
                f"image {ecr_repository_name()}:{self.image_tag} in ECR: its digest, its revision label = the tag",
                ["eksflow", "image", "verify", self.image_tag, "--region", "<output region>",
                 "--digest-file", self.digest_file],
            ),
            Step(
                "kubeconfig for the cluster",
                ["aws", "eks", "update-kubeconfig", "--name", "<output cluster_name>", "--region", "<output region>"],
            ),
            Step(
                "check that the cluster answers (before anything in it changes)",
                ["kubectl", "get", "--raw", "/readyz", "--request-timeout=15s"],
                failure="the cluster's API does not answer: check network access to its endpoint "
                "(private endpoint: VPN/bastion, or in CI a self-hosted runner inside the VPC — repository variable "
                f"DEPLOY_RUNNER_{self.env.upper()}, its security group in the tfvars' "
                "deploy_runner_security_group_ids; public: public_access_cidrs) and your access entry",
            ),
            Step(
                "the release may do each of its steps in the cluster (kubectl auth can-i, before anything in it "
                "changes)",
                action=self._check_cluster_rights,
            ),
            Step(
                f"namespace {NAMESPACE} exists with restricted Pod Security (the cluster bootstrap's)",
                action=self._check_namespace,
            ),
            Step(
                f"ConfigMap {DB_CA_CONFIGMAP}: the RDS CA bundle {RDS_TRUSTSTORE}/<output region>/<output region>"
                "-bundle.pem over HTTPS (the DB URL verifies the server against it)",
                action=self._apply_db_ca,
            ),
            Step(
                f"Secret {DB_SECRET} from Secrets Manager <output db_secret_arn> (value never printed)",
                action=self._apply_db_secret,
            ),
            Step(
                "helm upgrade",
                [
                    "helm", "upgrade", "--install", *self.chart_args(), "--server-side=true",
                    "--wait", "--rollback-on-failure", "--timeout", "35m",
                ],
            ),
            Step("helm test", ["helm", "test", RELEASE, "--namespace", NAMESPACE, "--timeout", "5m"]),
        ]  # fmt: skip

    def chart_args(self) -> list[str]:
        image = ["--set", f"image.tag={self.image_tag}", "--set-file", f"image.digest={self.digest_file}"]
        return [*chart_args(self.env), *image]

    def _check_cluster_rights(self) -> None:
        missing = release_access.missing_rights(release_access.release_rights(self.chart_args()))
        if missing:
            raise ValueError(release_access.refusal(missing, self.env))

    def _check_namespace(self) -> None:
        result = subprocess.run(
            ["kubectl", "get", "namespace", NAMESPACE, "-o", "json"], capture_output=True, text=True, check=False
        )
        fix = release_access.bootstrap_fix(self.env)
        if result.returncode != 0:
            if "NotFound" in result.stderr:
                raise ValueError(f"the namespace {NAMESPACE} does not exist: {fix}")
            raise ValueError(f"kubectl get namespace {NAMESPACE} failed: {result.stderr.strip()}")
        labels = json.loads(result.stdout)["metadata"].get("labels") or {}
        for label, value in namespace_object()["metadata"]["labels"].items():
            if labels.get(label) != value:
                found = repr(labels[label]) if label in labels else "unset"
                raise ValueError(
                    f"the namespace {NAMESPACE} does not enforce restricted Pod Security (label {label} is {found}, "
                    f"not {value!r}): {fix}"
                )

    def outputs(self) -> dict:
        return output_values(json.loads((self.repo / self.outputs_file).read_text()))

    def resolve(self, argv: list[str]) -> list[str]:
        """Placeholders like ``<output cluster_name>`` become Terraform output values (after the apply)."""
        if argv[:1] == ["eksflow"]:
            argv = [sys.executable, "-m", "eksflow.cli", *argv[1:]]
        if not any(arg.startswith("<output ") for arg in argv):
            return argv
        outputs = self.outputs()
        return [outputs[arg[8:-1]] if arg.startswith("<output ") else arg for arg in argv]

    def _apply_db_secret(self) -> None:
        outputs = self.outputs()
        secret = json.loads(
            _run(["aws", "secretsmanager", "get-secret-value", "--secret-id", outputs["db_secret_arn"],
                  "--query", "SecretString", "--output", "text"], capture=True)
        )  # fmt: skip
        url = db_url(outputs["db_endpoint"], secret["username"], secret["password"])
        manifest = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": DB_SECRET, "namespace": NAMESPACE},
            "data": {"connection": base64.b64encode(url.encode()).decode()},
        }
        # Server-side: a client-side apply would copy the manifest, password included, into the
        # last-applied-configuration annotation (readable by anyone who may read the Secret's metadata).
        _run(
            ["kubectl", "apply", "--server-side", "--field-manager", "eksflow-deploy", "--force-conflicts", "-f", "-"],
            stdin=json.dumps(manifest),
        )
        # A Secret an earlier deploy applied client-side still carries the old copy: drop it (a no-op otherwise).
        annotation = "kubectl.kubernetes.io/last-applied-configuration-"
        _run(["kubectl", "annotate", "secret", DB_SECRET, "--namespace", NAMESPACE, annotation])

    def _apply_db_ca(self) -> None:
        bundle = rds_ca_bundle(self.outputs()["region"])
        manifest = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": DB_CA_CONFIGMAP, "namespace": NAMESPACE},
            "data": {DB_CA_KEY: bundle},
        }
        _run(
            ["kubectl", "apply", "--server-side", "--field-manager", "eksflow-deploy", "--force-conflicts", "-f", "-"],
            stdin=json.dumps(manifest),
        )


def db_url(endpoint: str, username: str, password: str | None = None) -> str:
    """The metadata DB's SQLAlchemy URL: TLS, and libpq refuses a server whose certificate does not chain to the
    CA bundle the chart mounts at DB_CA_FILE or does not name the endpoint's host (verify-full)."""
    credentials = quote(username, safe="") + ("" if password is None else ":" + quote(password, safe=""))
    return f"postgresql+psycopg2://{credentials}@{endpoint}/airflow?sslmode=verify-full&sslrootcert={DB_CA_FILE}"


def rds_ca_bundle(region: str) -> str:
    """The Region's RDS CA bundle, fetched over HTTPS (the host verified against this machine's CAs) and checked
    to be a PEM bundle of CA certificates, at least one valid today."""
    url = f"{RDS_TRUSTSTORE}/{region}/{region}-bundle.pem"
    unchanged = f"ConfigMap {DB_CA_CONFIGMAP} and Secret {DB_SECRET} left as they were"
    try:
        with urllib.request.urlopen(url, timeout=60, context=ssl.create_default_context()) as response:  # noqa: S310
            pem = response.read()
    except OSError as error:
        reason = (
            f"HTTP {error.code} {error.reason}" if isinstance(error, HTTPError) else getattr(error, "reason", error)
        )
        raise RuntimeError(
            f"the RDS CA bundle could not be fetched from {url}: {reason} (the deploy needs HTTPS access to "
            f"{RDS_TRUSTSTORE}; {unchanged})"
        ) from None
    problem = ca_bundle_problem(pem)
    if problem:
        raise RuntimeError(f"{url} is not a CA bundle: {problem} ({unchanged})")
    return pem.decode()


def ca_bundle_problem(pem: bytes) -> str | None:
    """Why these bytes cannot serve as sslrootcert, or None. Read with OpenSSL through `ssl` (what the deploy venv
    has; no cryptography package there)."""
    store = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        store.load_verify_locations(cadata=pem.decode("ascii"))
    except (UnicodeDecodeError, ssl.SSLError):
        return "no PEM certificates in it"
    counts = store.cert_store_stats()
    if counts["x509_ca"] < counts["x509"]:
        return f"{counts['x509'] - counts['x509_ca']} of its {counts['x509']} certificates are not CA certificates"
    now = time.time()
    seconds = ssl.cert_time_to_seconds
    valid = [c for c in store.get_ca_certs() if seconds(c["notBefore"]) <= now <= seconds(c["notAfter"])]
    return None if valid else "none of its certificates is valid today"


def values_layer(env: str) -> str:
    return f"build/chart-values-{env}.yaml"


def chart_args(env: str) -> list[str]:
    """The release and chart with an environment's values as the release installs them, the values layer `make
    chart-values` writes from the Terraform outputs last (without the image tag)."""
    return [
        RELEASE, "helm/eksflow", "--namespace", NAMESPACE,
        "-f", f"helm/eksflow/values-{env}.yaml", "-f", values_layer(env),
    ]  # fmt: skip


def cluster_bootstrap(env: str, *, apply: bool, out=sys.stdout) -> None:
    """The platform Namespace (restricted Pod Security) and the release's cluster-scoped RBAC for an environment:
    printed, and applied with `apply` (as a cluster admin, whose kubeconfig is current). The release cannot grant
    them to itself."""
    if env not in ENVIRONMENTS:
        raise ValueError(f"ENV={env}: no such environment (use {' or '.join(ENVIRONMENTS)})")
    if not Path(values_layer(env)).is_file():
        raise ValueError(
            f"{values_layer(env)} is missing: run `make chart-values ENV={env}` first (the release renders the chart "
            "with it)"
        )
    rbac = release_access.bootstrap_manifests(release_access.release_rights(chart_args(env)))
    manifests = [namespace_object(), *rbac]
    print(yaml.safe_dump_all(manifests, sort_keys=False), end="", file=out)
    if apply:
        release_access.apply(manifests)
        print(
            f"applied: Namespace {NAMESPACE}, ClusterRole and ClusterRoleBinding {release_access.CLUSTER_ROLE}",
            file=out,
        )


def namespace_object() -> dict:
    """The platform namespace with restricted Pod Security enforced: the cluster bootstrap applies it (also the kind
    scripts); the release only checks it."""
    labels = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": labels}}


def namespace_manifest() -> str:
    return json.dumps(namespace_object())


def _run(argv: list[str], *, capture: bool = False, stdin: str | None = None) -> str:
    result = subprocess.run(argv, input=stdin, text=True, capture_output=capture, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{argv[0]} {argv[1] if len(argv) > 1 else ''} failed (exit {result.returncode})")
    return result.stdout if capture else ""


def preflight(deploy: Deploy) -> None:
    """Everything that can be checked before anything changes, each as one clear line."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise ValueError(
            f"missing tools: {', '.join(missing)} (install them; `make deploy-tools` provides helm and kubectl)"
        )
    if not (deploy.repo / deploy.tf_dir / "backend.hcl").is_file():
        raise ValueError(f"{deploy.tf_dir}/backend.hcl is missing: copy backend.hcl.example and set the state bucket")
    probe = subprocess.run(["aws", "sts", "get-caller-identity"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        raise ValueError("no AWS credentials: `aws sts get-caller-identity` failed (log in, or set AWS_PROFILE)")


def run(deploy: Deploy, *, dry_run: bool, out=sys.stdout) -> None:
    steps = deploy.steps()
    if dry_run:
        for number, step in enumerate(steps, 1):
            command = " ".join(step.argv) if step.argv else "(in-process)"
            command += f" > {step.stdout_to}" if step.stdout_to else ""
            confirm = "   # asks for confirmation" if step.confirm and not deploy.auto_approve else ""
            print(f"[{number}/{len(steps)}] {step.title}\n    {command}{confirm}", file=out)
        return
    preflight(deploy)
    prepare(deploy)
    execute(deploy, steps, out)


def prepare(deploy: Deploy) -> None:
    """The directory the steps write into."""
    (deploy.repo / "build").mkdir(exist_ok=True)


def execute(deploy: Deploy, steps: list[Step], out=sys.stdout) -> None:
    for number, step in enumerate(steps, 1):
        print(f"[{number}/{len(steps)}] {step.title}", file=out, flush=True)
        if step.confirm and not deploy.auto_approve and input("apply this plan? [yes/no] ").strip() != "yes":
            raise ValueError("not applied: nothing changed after the plan")
        if step.action:
            step.action()
        elif step.stdout_to:
            (deploy.repo / step.stdout_to).write_text(_run(step.argv, capture=True))
        else:
            try:
                _run(deploy.resolve(step.argv), capture=step.failure is not None)
            except RuntimeError:
                if step.failure:
                    raise ValueError(step.failure) from None
                raise

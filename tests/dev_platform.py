"""terraform/envs/dev applied for real to the AWS emulator, shared by the suites that need it (one apply per
test session: test_terraform_apply.py checks what Terraform made, test_least_privilege.py runs the DAGs under
the roles it made; conftest.py schedules both files on the same xdist worker).

The emulator's dev platform is applied with the Secrets Manager backend's read permission on
(``secrets_backend_enabled = true``, prod's setting; dev's values file leaves the backend off), so the applied
policy and the least-privilege probes cover it too.

The emulator starts without IAM enforcement. An admin identity is bootstrapped first (IAM user with
an Allow *:* policy and an access key) and Terraform applies with it; after the apply, the dev-named
resources the DAGs use but Terraform does not own (EC2 instances, endpoints, sample data) are seeded — the ECS
cluster, the etl-step family and the SageMaker execution role are Terraform's (modules/workloads), so the seed leaves
them alone. Enforcement is switched on only around the suites that test it
(``enforcement(...)``: test_least_privilege.py, test_deploy_roles.py — whose real `terraform plan` as the CI plan
role shows that EKS calls pass under enforcement now). At the end the buckets are emptied (versions too; the
state bucket of test_deploy_roles.py removed), Terraform destroys everything, and nothing Terraform made may be left.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import boto3

from eksflow_dev.chartvalues import output_values
from eksflow_dev.chartvalues import render as render_chart_values
from eksflow_dev.emulator.control import bootstrap_admin, set_iam_enforcement
from eksflow_dev.emulator.seed import SeedResult, seed
from eksflow_dev.local.emulator import running_emulator
from eksflow_dev.local.offline import REGION
from tests.terraform_cli import cli_env, terraform

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("ec2", "eks", "iam", "sts", "s3", "rds", "kms", "ecr", "logs", "sns", "cloudwatch", "ecs", "sqs")
ENV = "dev"
ADMIN_USER = "eksflow-terraform-admin"


def _provider_override(endpoint: str, key_id: str = "", secret: str = "") -> str:
    """The AWS provider pointed at the emulator; with the given keys, or (none given) with the credentials of the
    environment, as a CI job has them after assuming its role."""
    endpoints = "\n".join(f'    {service} = "{endpoint}"' for service in SERVICES)
    keys = f'  access_key                  = "{key_id}"\n  secret_key                  = "{secret}"\n' if key_id else ""
    return (
        'provider "aws" {\n'
        f"{keys}"
        "  skip_credentials_validation = true\n  skip_metadata_api_check     = true\n"
        "  s3_use_path_style           = true\n"
        f"  endpoints {{\n{endpoints}\n  }}\n}}\n"
    )


def backend_example(env: str) -> dict[str, str]:
    """envs/<env>/backend.hcl.example's settings (``name = value`` lines, values as written, strings unquoted)."""
    settings = {}
    for line in (REPO / "terraform" / "envs" / env / "backend.hcl.example").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            settings[name.strip()] = value.strip().strip('"')
    return settings


# What backend.hcl adds on the emulator: its S3 endpoint, path-style URLs, no AWS account or Region lookups.
_EMULATOR_BACKEND = """use_path_style              = true
skip_credentials_validation = true
skip_requesting_account_id  = true
skip_metadata_api_check     = true
skip_region_validation      = true
endpoints                   = {{ s3 = "{url}", sts = "{url}" }}
"""


class DevPlatform:
    def __init__(self, work: Path, env: dict[str, str], emulator, admin: dict[str, str]):
        self.work, self.env, self.emulator, self.admin = work, env, emulator, admin
        self.outputs: dict = {}
        self.values_layer: Path | None = None
        self.seeded = SeedResult()

    @property
    def url(self) -> str:
        return self.emulator.url

    def terraform(self, *args: str, check: bool = True):
        return terraform(*args, "-no-color", cwd=self.work, env=self.env, check=check, timeout=900)

    def client(self, service: str):
        """A client as the bootstrapped admin: valid with and without enforcement."""
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=self.admin["AccessKeyId"],
            aws_secret_access_key=self.admin["SecretAccessKey"],
        )

    def remote_state_copy(self, tmp: Path) -> Path:
        """A copy of the applied envs/dev as a CI job checks it out: the S3 backend of backend.hcl.example (plus
        the emulator's endpoint) instead of the local state file, and the provider without keys of its own. The
        state must be in the bucket already (``upload_state``)."""
        shutil.copytree(self.work.parents[1], tmp / "terraform", ignore=shutil.ignore_patterns("terraform.tfstate*"))
        work = tmp / "terraform" / "envs" / ENV
        (work / "backend_override.tf").unlink()
        (work / ".terraform" / "terraform.tfstate").unlink(missing_ok=True)  # the local backend's settings
        (work / "provider_override.tf").write_text(_provider_override(self.url))
        example = (REPO / "terraform" / "envs" / ENV / "backend.hcl.example").read_text()
        (work / "backend.hcl").write_text(example + _EMULATOR_BACKEND.format(url=self.url))
        return work

    def upload_state(self) -> None:
        """The applied state, where backend.hcl.example says it lives (the bucket made here, as at bootstrap)."""
        backend = backend_example(ENV)
        s3 = self.client("s3")
        if backend["bucket"] not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
            s3.create_bucket(
                Bucket=backend["bucket"], CreateBucketConfiguration={"LocationConstraint": backend["region"]}
            )
        s3.put_object(Bucket=backend["bucket"], Key=backend["key"], Body=(self.work / "terraform.tfstate").read_bytes())

    @contextlib.contextmanager
    def enforcement(self) -> Iterator[None]:
        set_iam_enforcement(self.url, True)
        try:
            yield
        finally:
            set_iam_enforcement(self.url, False)


def _empty_repositories(platform: DevPlatform) -> None:
    """Every ECR repository's images (the seeded releases, what tests pushed): Terraform deletes only empty ones."""
    ecr = platform.client("ecr")
    for repository in ecr.describe_repositories()["repositories"]:
        images = ecr.list_images(repositoryName=repository["repositoryName"])["imageIds"]
        if images:
            ecr.batch_delete_image(repositoryName=repository["repositoryName"], imageIds=images)


def _empty_buckets(platform: DevPlatform) -> None:
    s3 = platform.client("s3")
    state_bucket = backend_example(ENV)["bucket"]  # made by upload_state, not by Terraform: removed here
    present = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    for bucket in [*platform.outputs["bucket_names"].values(), *({state_bucket} & present)]:
        versions = s3.list_object_versions(Bucket=bucket)
        objects = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in versions.get("Versions", []) + versions.get("DeleteMarkers", [])
        ]
        if objects:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objects})
    if state_bucket in present:
        s3.delete_bucket(Bucket=state_bucket)


def applied_dev_platform(tmp: Path) -> Iterator[DevPlatform]:
    shutil.copytree(REPO / "terraform", tmp / "terraform")
    work = tmp / "terraform" / "envs" / ENV
    # AWS managed policies (AmazonEKSClusterPolicy, AdministratorAccess, ...) must exist to be attached;
    # loading them costs every emulator reset ~2.5 s, so only this emulator loads them.
    managed_policies = {"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    with running_emulator(tmp / "emulator", managed_policies, seeded=False) as emulator:
        admin = bootstrap_admin(emulator.url, ADMIN_USER, REGION)
        (work / "backend_override.tf").write_text('terraform {\n  backend "local" {}\n}\n')
        (work / "emulator.auto.tfvars").write_text("secrets_backend_enabled = true\n")
        (work / "provider_override.tf").write_text(
            _provider_override(emulator.url, admin["AccessKeyId"], admin["SecretAccessKey"])
        )
        platform = DevPlatform(work, {**cli_env(tmp), "AWS_ENDPOINT_URL": emulator.url}, emulator, admin)
        platform.terraform("init", "-input=false")
        platform.terraform("apply", "-auto-approve", "-input=false")
        output_json = platform.terraform("output", "-json").stdout
        platform.outputs = output_values(json.loads(output_json))
        platform.values_layer = tmp / "chart-values-dev.yaml"
        platform.values_layer.write_text(render_chart_values(output_json))
        platform.seeded = seed(emulator.url, REGION, env=ENV)
        yield platform

        set_iam_enforcement(emulator.url, False)
        _empty_buckets(platform)
        _empty_repositories(platform)
        platform.terraform("destroy", "-auto-approve", "-input=false")
        leftovers = {
            "eks clusters": platform.client("eks").list_clusters()["clusters"],
            "db instances": platform.client("rds").describe_db_instances()["DBInstances"],
            "buckets": platform.client("s3").list_buckets()["Buckets"],
            "iam roles": [
                r["RoleName"]
                for r in platform.client("iam").list_roles()["Roles"]
                if r["RoleName"] not in platform.seeded.roles
            ],
            "vpcs": [
                v["VpcId"]
                for v in platform.client("ec2").describe_vpcs()["Vpcs"]
                if not v["IsDefault"] and v["VpcId"] != platform.seeded.vpc_id
            ],
            "ecs clusters": [
                c["clusterName"]
                for c in platform.client("ecs").describe_clusters(
                    clusters=platform.client("ecs").list_clusters()["clusterArns"]
                )["clusters"]
                if c["status"] == "ACTIVE"
            ],
            "ecr repositories": platform.client("ecr").describe_repositories()["repositories"],
            "sqs queues": platform.client("sqs").list_queues().get("QueueUrls", []),
        }
        assert not any(leftovers.values()), f"destroy left resources behind: {leftovers}"

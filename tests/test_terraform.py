"""Terraform with the real terraform binary: format, init (offline from the provider mirror), validate, and
the validation messages of bad inputs. The apply against the emulator is in test_terraform_apply.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from eksflow.model import platform_model
from tests.terraform_cli import cli_env, terraform

REPO = Path(__file__).resolve().parents[1]
TERRAFORM = REPO / "terraform"
MODULES = sorted(p for p in (TERRAFORM / "modules").iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def tf_env(tmp_path_factory):
    return cli_env(tmp_path_factory.mktemp("terraform"))


def test_role_model_export_is_current():
    exported = json.loads((TERRAFORM / "role-model.json").read_text())
    assert exported == json.loads(json.dumps(platform_model())), "run `make role-model`"


def test_terraform_is_formatted(tf_env):
    result = terraform("fmt", "-check", "-recursive", "-diff", str(TERRAFORM), cwd=REPO, env=tf_env, check=False)
    assert result.returncode == 0, f"run `terraform fmt -recursive`:\n{result.stdout}"


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_module_inits_and_validates(module, tf_env, tmp_path):
    shutil.copytree(module.parent, tmp_path / "modules")  # modules may call sibling modules (kms_key)
    work = tmp_path / "modules" / module.name
    terraform("init", "-backend=false", "-input=false", "-no-color", cwd=work, env=tf_env)
    result = terraform("validate", "-no-color", cwd=work, env=tf_env)
    assert "Success" in result.stdout
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
        assert (module / name).is_file(), f"{module.name} lacks {name}"


def _validation_errors(module: str, inputs: str, tf_env: dict, work: Path) -> str:
    """`terraform validate` of one call of a module with the given inputs: it must fail; its stderr, unwrapped."""
    work.mkdir()
    source = TERRAFORM / "modules" / module
    (work / "main.tf").write_text(f'module "{module}" {{\n  source = "{source}"\n{inputs}}}\n')
    terraform("init", "-backend=false", "-input=false", "-no-color", cwd=work, env=tf_env)
    result = terraform("validate", "-no-color", cwd=work, env=tf_env, check=False)
    assert result.returncode != 0
    return " ".join(result.stderr.split())


def test_bad_env_fails_plan_with_the_validation_message(tf_env, tmp_path):
    text = _validation_errors(
        "irsa",
        '  env = "Prod_1"\n  role_model = jsondecode(file("' + str(TERRAFORM / "role-model.json") + '"))\n'
        '  oidc_provider_arn = "not-an-arn"\n  oidc_issuer = "https://x"\n  log_bucket_arn = "a"\n'
        '  data_bucket_arn = "b"\n  ecs_cluster_arns = []\n  ecs_task_definition_families = []\n'
        '  ecs_pass_role_arns = []\n  sagemaker_execution_role_arn = "c"\n',
        tf_env,
        tmp_path / "bad",
    )
    assert "env must be 2-16 lowercase letters" in text
    assert "oidc_provider_arn must be an IAM OIDC provider ARN" in text
    assert "oidc_issuer must be the issuer host and path without the https:// scheme" in text


def test_bad_network_inputs_fail_with_the_validation_messages(tf_env, tmp_path):
    text = _validation_errors(
        "network",
        '  env = "dev"\n  cluster_name = ""\n  vpc_cidr = "10.0.0.0/8"\n  availability_zones = ["eu-west-1a"]\n'
        '  flow_log_bucket_arn = "eksflow-dev-logs"\n',
        tf_env,
        tmp_path / "bad-network",
    )
    assert "cluster_name must start with a letter" in text
    assert "vpc_cidr must be a valid IPv4 CIDR between /16 and /20" in text
    assert "availability_zones needs two or three zones" in text
    assert "flow_log_bucket_arn must be an S3 bucket ARN" in text


ENVS = sorted(p.name for p in (TERRAFORM / "envs").iterdir() if p.is_dir())


def _env_workdir(tmp_path: Path, env: str, tf_env: dict) -> Path:
    """A copy of terraform/ with a local backend for envs/<env> (the S3 backend needs a real bucket)."""
    shutil.copytree(TERRAFORM, tmp_path / "terraform")
    work = tmp_path / "terraform" / "envs" / env
    (work / "backend_override.tf").write_text('terraform {\n  backend "local" {}\n}\n')
    terraform("init", "-input=false", "-no-color", cwd=work, env=tf_env)
    return work


@pytest.mark.parametrize("env", ENVS)
def test_environment_validates(env, tf_env, tmp_path):
    assert {"dev", "prod"} <= set(ENVS)
    work = _env_workdir(tmp_path, env, tf_env)
    assert "Success" in terraform("validate", "-no-color", cwd=work, env=tf_env).stdout
    assert (TERRAFORM / "envs" / env / "backend.hcl.example").is_file()


BAD_TFVARS = {
    "vpc_cidr=10.0.0.0/8": "vpc_cidr must be a valid IPv4 CIDR between /16 and /20",
    "cluster_name=": "cluster_name must start with a letter",
    'task_instance_types=["huge"]': "task_instance_types entries must look like <family>.<size>",
    "region=mars": "region must be an AWS region name such as eu-west-1",
    'availability_zones=["eu-west-1a"]': "availability_zones needs two or three zones",
    'public_access_cidrs=["0.0.0.0/0"]': "never 0.0.0.0/0",
    "database_instance_class=t4g.medium": "database_instance_class must look like db.<family>.<size>",
    "env=Prod": "env must be 2-16 lowercase letters",
}


def test_bad_tfvars_fail_plan_with_every_validation_message(tf_env, tmp_path):
    """One plan with all the bad values at once: terraform reports every invalid variable before any
    AWS call (the AWS endpoint points at a closed port)."""
    work = _env_workdir(tmp_path, "dev", tf_env)
    offline = {**tf_env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
    args = [arg for bad in BAD_TFVARS for arg in ("-var", bad)]
    result = terraform("plan", "-input=false", "-no-color", *args, cwd=work, env=offline, check=False, timeout=300)
    assert result.returncode != 0
    errors = " ".join(result.stderr.split())
    missing = [message for message in BAD_TFVARS.values() if message not in errors]
    assert not missing, f"missing validation messages {missing}:\n{result.stderr[-3000:]}"


# The whole internet in two halves, or in a spelling that is not canonical, is still the whole internet.
@pytest.mark.parametrize("cidrs", ['["0.0.0.0/1","128.0.0.0/1"]', '["203.0.113.0/24","0.0.0.0/00"]'])
def test_the_public_endpoint_takes_only_narrow_canonical_cidrs(cidrs, tf_env, tmp_path):
    work = _env_workdir(tmp_path, "dev", tf_env)
    offline = {**tf_env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
    args = ("-var", f"public_access_cidrs={cidrs}")
    result = terraform("plan", "-input=false", "-no-color", *args, cwd=work, env=offline, check=False, timeout=300)
    assert result.returncode != 0
    assert "public_access_cidrs must be canonical IPv4 CIDRs of /16 or narrower" in " ".join(result.stderr.split())

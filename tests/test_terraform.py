"""Terraform with the real terraform binary: format, init (offline from the provider mirror), validate, the
validation messages of bad inputs, and the IAM policies terraform/modules/irsa renders (planned against the
emulator, whose STS only answers the caller identity; nothing is created) read with their Conditions by
tests/support/iam_policy.py, whose Conditions are the emulator's own evaluator (src/eksflow_dev/emulator/conditions.py):
both environments' policies, every case, without an apply. The apply against the emulator is in
test_terraform_apply.py; the same Conditions enforced over HTTP in test_emulator_iam.py and test_least_privilege.py."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from eksflow.jobs import (
    JOB_TAG_KEY,
    JOBS,
    ecs_cluster_name,
    ecs_execution_role_name,
    release_dlq_name,
    release_queue_name,
    sagemaker_execution_role_name,
)
from eksflow.model import platform_model
from eksflow.platform import (
    MANAGED_TAG_KEY,
    PROTECTED_TAG_KEY,
    bucket_names,
    managed_tags,
    notification_topic_arn,
    sagemaker_name_prefix,
)
from eksflow_dev.emulator.conditions import request_tags, resource_tags
from tests.support.iam_policy import allows
from tests.terraform_cli import cli_env, terraform, terraform_binary

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


# The irsa module's release-queue inputs, valid, for the validation tests' module calls.
QUEUE_HCL = (
    '  release_queue_arn = "arn:aws:sqs:eu-west-1:123456789012:q"\n'
    '  release_dlq_arn = "arn:aws:sqs:eu-west-1:123456789012:d"\n'
    '  release_queue_kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/0b7b0f6e"\n'
)


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
        '  ecs_pass_role_arns = []\n  sagemaker_execution_role_arn = "c"\n' + QUEUE_HCL,
        tf_env,
        tmp_path / "bad",
    )
    assert "env must be 2-16 lowercase letters" in text
    assert "oidc_provider_arn must be an IAM OIDC provider ARN" in text
    assert "oidc_issuer must be the issuer host and path without the https:// scheme" in text


def test_a_role_model_that_would_loosen_the_tag_or_secret_scopes_fails_naming_the_fix(tf_env, tmp_path):
    """The role model feeds housekeeping's tag conditions, the secrets read scope and the SageMaker name scope: a
    marker without {env} (one value for every environment), one key for managed and protected, a secrets prefix
    with a wildcard or without {env} as a path segment of its own (one name for every environment), or a SageMaker
    name prefix without {env}- are refused."""
    model = json.loads((TERRAFORM / "role-model.json").read_text())
    model["housekeeping_tags"].update(
        managed_value_pattern="true", protected_key=model["housekeeping_tags"]["managed_key"]
    )
    model["secrets_backend_patterns"].update(connections_prefix="eksflow/*", variables_prefix="eksflow/variables")
    model["sagemaker_name_prefix_pattern"] = "eksflow-"
    model["notification_topic_name_pattern"] = "eksflow-notifications"
    bad = tmp_path / "role-model.json"
    bad.write_text(json.dumps(model))
    text = _validation_errors(
        "irsa",
        f'  env = "dev"\n  role_model = jsondecode(file("{bad}"))\n'
        '  oidc_provider_arn = "arn:aws:iam::123456789012:oidc-provider/x"\n  oidc_issuer = "x"\n'
        '  log_bucket_arn = "a"\n  data_bucket_arn = "b"\n  ecs_cluster_arns = []\n'
        '  ecs_task_definition_families = []\n  ecs_pass_role_arns = []\n  sagemaker_execution_role_arn = "c"\n'
        + QUEUE_HCL,
        tf_env,
        tmp_path / "bad-model",
    )
    fix = "regenerate terraform/role-model.json with `make role-model`"
    for message in (
        "managed_key and protected_key must be two different tag keys",
        "managed_value_pattern must contain {env} (each environment's housekeeping acts only on what names it)",
        "role_model.secrets_backend_patterns must be Secrets Manager name prefixes with {env} as a path segment of "
        "its own",
        "role_model.sagemaker_name_prefix_pattern must be letters, digits or '-' ending in {env}-",
        "role_model.notification_topic_name_pattern must be an SNS topic name with {env}",
    ):
        # The same error (up to the next "Error:") names the fix.
        assert re.search(re.escape(message) + r"((?!Error:).)*" + re.escape(fix), text), message


def test_the_shared_sagemaker_name_prefix_input_is_refused_naming_the_fix(tf_env, tmp_path):
    """sagemaker_name_prefix set one prefix (eksflow-) for every environment; the names are per environment now."""
    text = _validation_errors(
        "irsa",
        f'  env = "dev"\n  role_model = jsondecode(file("{TERRAFORM / "role-model.json"}"))\n'
        '  oidc_provider_arn = "arn:aws:iam::123456789012:oidc-provider/x"\n  oidc_issuer = "x"\n'
        '  log_bucket_arn = "a"\n  data_bucket_arn = "b"\n  ecs_cluster_arns = []\n'
        '  ecs_task_definition_families = []\n  ecs_pass_role_arns = []\n  sagemaker_execution_role_arn = "c"\n'
        '  sagemaker_name_prefix = "eksflow-"\n' + QUEUE_HCL,
        tf_env,
        tmp_path / "shared-prefix",
    )
    assert (
        "sagemaker_name_prefix is no longer an input: each environment's SageMaker names start with eksflow-<env>- "
        "(the role model's sagemaker_name_prefix_pattern with env); remove the argument" in text
    )


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
    'deploy_runner_cidrs=["0.0.0.0/0"]': "deploy_runner_cidrs must be canonical IPv4 CIDRs of /8 or narrower",
    'deploy_runner_security_group_ids=["default"]': "deploy_runner_security_group_ids must be security group ids",
}


def test_bad_tfvars_fail_plan_with_every_validation_message(tf_env, tmp_path):
    """One plan with all the bad values at once: terraform reports every invalid variable before any
    AWS call (the AWS endpoint points at a closed port)."""
    errors = _refused_plan(tf_env, tmp_path, *BAD_TFVARS)
    missing = [message for message in BAD_TFVARS.values() if message not in errors]
    assert not missing, f"missing validation messages {missing}:\n{errors[-3000:]}"


def _refused_plan(tf_env: dict, tmp_path: Path, *variables: str) -> str:
    """A plan of envs/dev with these `-var`s that must fail before any AWS call (the AWS endpoint points at a
    closed port): its error output, whitespace folded."""
    work = _env_workdir(tmp_path, "dev", tf_env)
    offline = {**tf_env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
    args = [arg for variable in variables for arg in ("-var", variable)]
    result = terraform("plan", "-input=false", "-no-color", *args, cwd=work, env=offline, check=False, timeout=300)
    assert result.returncode != 0
    return " ".join(result.stderr.split())


def test_an_env_named_like_the_managed_tags_legacy_values_is_refused(tf_env, tmp_path):
    assert "and not true or false (the managed tag's legacy values)" in _refused_plan(tf_env, tmp_path, "env=true")


# The whole internet in two halves, or in a spelling that is not canonical, is still the whole internet.
@pytest.mark.parametrize("cidrs", ['["0.0.0.0/1","128.0.0.0/1"]', '["203.0.113.0/24","0.0.0.0/00"]'])
def test_the_public_endpoint_takes_only_narrow_canonical_cidrs(cidrs, tf_env, tmp_path):
    errors = _refused_plan(tf_env, tmp_path, f"public_access_cidrs={cidrs}")
    assert "public_access_cidrs must be canonical IPv4 CIDRs of /16 or narrower" in errors


def test_the_deploy_runners_cidrs_are_never_the_internet_in_pieces(tf_env, tmp_path):
    errors = _refused_plan(tf_env, tmp_path, 'deploy_runner_cidrs=["10.20.64.0/24","0.0.0.0/1","128.0.0.0/1"]')
    assert "deploy_runner_cidrs must be canonical IPv4 CIDRs of /8 or narrower" in errors


# ---------------------------------------------------------------------------------------------------------------
# The module's policies as a plan renders them.

ACCOUNT = "123456789012"  # the emulator's
REGION = "eu-west-1"


QUEUE_KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0b7b0f6e-0000-4000-8000-000000000003"
BUCKET_KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0b7b0f6e-0000-4000-8000-000000000004"
ECS_JOBS = sorted(name for name, job in JOBS.items() if job.runs_on == "ecs")
SAGEMAKER_JOBS = sorted(name for name, job in JOBS.items() if job.runs_on == "sagemaker")


def _queue_arn(env: str, *, dlq: bool = False) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{(release_dlq_name if dlq else release_queue_name)(env)}"


def _role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def _repository_arn(name: str) -> str:
    return f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{name}"


def _irsa_inputs(env: str, **extra) -> dict:
    arn = f"arn:aws:iam::{ACCOUNT}:role/eksflow-{env}"
    return {
        "source": str(TERRAFORM / "modules" / "irsa"),
        "env": env,
        "role_model": f'${{jsondecode(file("{TERRAFORM / "role-model.json"}"))}}',
        "oidc_provider_arn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.eks.{REGION}.amazonaws.com/id/{env.upper()}",
        "oidc_issuer": f"oidc.eks.{REGION}.amazonaws.com/id/{env.upper()}",
        "log_bucket_arn": f"arn:aws:s3:::eksflow-{env}-logs",
        "data_bucket_arn": f"arn:aws:s3:::eksflow-{env}-data",
        "ecs_cluster_arns": [f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/eksflow-{env}-batch"],
        "ecs_task_definition_families": [f"eksflow-{env}-etl-step"],
        "ecs_pass_role_arns": [f"{arn}-etl-task"],
        "sagemaker_execution_role_arn": f"{arn}-sagemaker-execution",
        "release_queue_arn": _queue_arn(env),
        "release_dlq_arn": _queue_arn(env, dlq=True),
        "release_queue_kms_key_arn": QUEUE_KMS_KEY,
        **extra,
    }


# Each environment's Secrets Manager backend switch as its tfvars set it (checked against its values file below).
PLANNED_ENVS = {"dev": {"secrets_backend_enabled": False}, "prod": {"secrets_backend_enabled": True}}
# dev with the backend on, as dev may turn it on in the account it shares with prod: (env, inputs).
DEV_WITH_SECRETS = "dev-with-secrets-backend"
PLANNED_VARIANTS = {DEV_WITH_SECRETS: ("dev", {"secrets_backend_enabled": True})}


def _planned_modules(modules: dict[str, dict], tf_env: dict, work: Path, emulator) -> dict:
    """`terraform show -json` of a root module calling each of ``modules`` (address -> inputs, "source" included),
    planned against the emulator (IAM and STS only: the data sources; nothing is created)."""
    provider = {
        "region": REGION,
        "access_key": "testing",
        "secret_key": "testing",
        "skip_credentials_validation": True,
        "skip_metadata_api_check": True,
        "endpoints": {"iam": emulator.url, "sts": emulator.url},
    }
    # A copy of the modules beside the root: a module that calls a sibling (../kms_key) must be called by a relative
    # path, or Terraform refuses the sibling as outside its package.
    shutil.copytree(TERRAFORM / "modules", work / "modules")
    here = {address: {**inputs, "source": "./" + str(Path(inputs["source"]).relative_to(TERRAFORM))}
            for address, inputs in modules.items()}  # fmt: skip
    (work / "main.tf.json").write_text(json.dumps({"provider": {"aws": provider}, "module": here}, indent=2))
    terraform("init", "-input=false", "-no-color", cwd=work, env=tf_env)
    terraform("plan", "-input=false", "-no-color", "-out=plan.bin", cwd=work, env=tf_env, timeout=300)
    return json.loads(terraform("show", "-json", "plan.bin", cwd=work, env=tf_env).stdout)


@pytest.fixture(scope="module")
def irsa_plan(tf_env, tmp_path_factory, emulator) -> dict:
    """`terraform show -json` of terraform/modules/irsa planned once per environment of PLANNED_ENVS and per
    variant of PLANNED_VARIANTS, with its own inputs (module address = env or variant)."""
    modules = {env: _irsa_inputs(env, **extra) for env, extra in PLANNED_ENVS.items()}
    modules |= {name: _irsa_inputs(env, **extra) for name, (env, extra) in PLANNED_VARIANTS.items()}
    return _planned_modules(modules, tf_env, tmp_path_factory.mktemp("irsa-plan"), emulator)


@pytest.fixture(scope="module")
def planned_policies(irsa_plan) -> dict[str, dict[str, dict[str, dict]]]:
    """{env or variant: {role key (task-ec2-ops, api-server, ...): {policy name: document}}} of irsa_plan."""
    planned: dict[str, dict[str, dict[str, dict]]] = {}
    for module in irsa_plan["planned_values"]["root_module"]["child_modules"]:
        env = module["address"].removeprefix("module.")
        for resource in module["resources"]:
            if resource["type"] == "aws_iam_role_policy":
                role = planned.setdefault(env, {}).setdefault(resource["index"], {})
                role[resource["values"]["name"]] = json.loads(resource["values"]["policy"])
    return planned


def _documents(planned, env: str, role: str) -> list[dict]:
    return list(planned[env][role].values())


INSTANCE = f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0123456789abcdef0"


def _endpoint(env: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/eksflow-{env}-churn"


# Tags an instance or endpoint carries -> whether dev's housekeeping may stop, terminate or delete it.
HOUSEKEEPING_TARGETS = {
    "managed by dev": (managed_tags("dev"), True),
    "managed by dev, protected=false": ({**managed_tags("dev"), PROTECTED_TAG_KEY: "false"}, True),
    "managed by prod": (managed_tags("prod"), False),
    "the marker every env used to share": ({MANAGED_TAG_KEY: "true"}, False),
    "unmanaged": ({}, False),
    "managed by dev, protected": ({**managed_tags("dev"), PROTECTED_TAG_KEY: "true"}, False),
    "managed by dev, protected=TRUE": ({**managed_tags("dev"), PROTECTED_TAG_KEY: "TRUE"}, False),
}


@pytest.mark.parametrize(("tags", "allowed"), HOUSEKEEPING_TARGETS.values(), ids=HOUSEKEEPING_TARGETS)
def test_housekeeping_may_stop_terminate_and_delete_only_what_its_env_manages_and_nobody_protects(
    planned_policies, tags, allowed
):
    """Row 7: the ec2-ops role's StopInstances, TerminateInstances and DeleteEndpoint hold only with the managed tag
    naming this environment and without the protected tag — in IAM, not only in the kit. (Enforced by the emulator:
    test_emulator_iam.py, test_least_privilege.py; the kit's own re-check: test_kit_operators.py, test_dags_e2e.py.)"""
    policies = _documents(planned_policies, "dev", "task-ec2-ops")
    for action, resource in (
        ("ec2:StopInstances", INSTANCE),
        ("ec2:TerminateInstances", INSTANCE),
        ("sagemaker:DeleteEndpoint", _endpoint("dev")),
    ):
        assert allows(policies, action, resource, resource_tags(tags)) is allowed, action
    # Looking is not acting: discovery and the re-check read any endpoint of the environment's prefix, whoever
    # manages it — and no other environment's.
    for action in ("sagemaker:DescribeEndpoint", "sagemaker:ListTags"):
        assert allows(policies, action, _endpoint("dev"), resource_tags(managed_tags("prod"))), action
        assert not allows(policies, action, _endpoint("prod"), resource_tags(managed_tags("prod"))), action


def test_each_envs_housekeeping_names_its_own_env(planned_policies):
    prod = _documents(planned_policies, "prod", "task-ec2-ops")
    assert allows(prod, "ec2:StopInstances", INSTANCE, resource_tags(managed_tags("prod")))
    assert not allows(prod, "ec2:StopInstances", INSTANCE, resource_tags(managed_tags("dev")))


# (tags the request sets, tags the endpoint already has) -> whether dev's sagemaker-runner may set them.
AT_CREATE = {"sagemaker:TaggingAction": "CreateEndpoint"}  # what AWS sets on the AddTags of a create with Tags
RUNNER_TAGGING = {  # tags set, the request's context (beyond the tags), tags the endpoint has, allowed
    "the kit's tags, protected": (lambda: _kit_endpoint_tags(protected=True), AT_CREATE, {}, True),
    "the kit's tags, unprotected": (lambda: _kit_endpoint_tags(protected=False), AT_CREATE, {}, True),
    "the kit's tags on an existing endpoint": (lambda: _kit_endpoint_tags(protected=False), {}, {}, False),
    "unprotect": (lambda: {PROTECTED_TAG_KEY: "false"}, AT_CREATE, managed_tags("dev"), False),
    "hand to another env": (lambda: managed_tags("prod"), AT_CREATE, managed_tags("dev"), False),
    "the shared marker": (lambda: {MANAGED_TAG_KEY: "true"}, AT_CREATE, {}, False),
    "another key": (lambda: {**managed_tags("dev"), "owner": "ml"}, AT_CREATE, {}, False),
    "relabel another env's endpoint": (lambda: managed_tags("dev"), {}, managed_tags("prod"), False),
    "protect another env's endpoint": (lambda: {PROTECTED_TAG_KEY: "true"}, {}, managed_tags("prod"), False),
}


def _kit_endpoint_tags(*, protected: bool) -> dict[str, str]:
    """The Tags the kit's endpoint step sends with CreateEndpoint in dev (the ML pipeline protects its endpoint)."""
    from eksflow import kit

    step = kit.sagemaker_deploy_endpoint(
        task_id="deploy", endpoint_name="eksflow-dev-churn", managed=True, protected=protected, env="dev"
    )
    return step.endpoint_tags


@pytest.mark.parametrize(("sets", "request_context", "has", "allowed"), RUNNER_TAGGING.values(), ids=RUNNER_TAGGING)
def test_sagemaker_runner_may_set_only_the_kits_tags_with_the_kits_values(
    planned_policies, sets, request_context, has, allowed
):
    """Row 7: AddTags only as part of CreateEndpoint with Tags (sagemaker:TaggingAction), only with the keys and
    values the kit sets, on an endpoint no other environment manages: the runner can neither unprotect an endpoint,
    nor hand an existing one to housekeeping, nor re-label one for another environment, and it has no DeleteTags.
    (Enforced by the emulator too: test_emulator_iam.py, test_least_privilege.py.)"""
    policies = _documents(planned_policies, "dev", "task-sagemaker-runner")
    tags = sets()
    context = {**request_tags(tags), **request_context, **resource_tags(has)}
    assert allows(policies, "sagemaker:AddTags", _endpoint("dev"), context) is allowed
    if allowed:  # the create itself has no tag condition
        assert allows(policies, "sagemaker:CreateEndpoint", _endpoint("dev"), context)
    assert not allows(policies, "sagemaker:DeleteTags", _endpoint("dev"), resource_tags(has))


# ---------------------------------------------------------------------------------------------------------------
# Environments sharing an account: each one's SageMaker roles reach only names with its own prefix eksflow-<env>-.


def _sagemaker_arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name}"


# What the sagemaker-runner does to what it makes, by the resource type the action is authorized on.
RUNNER_ACTIONS = {
    "sagemaker:CreateTrainingJob": "training-job",
    "sagemaker:DescribeTrainingJob": "training-job",
    "sagemaker:StopTrainingJob": "training-job",
    "sagemaker:CreateModel": "model",
    "sagemaker:DescribeModel": "model",
    "sagemaker:CreateEndpointConfig": "endpoint-config",
    "sagemaker:DescribeEndpointConfig": "endpoint-config",
    "sagemaker:CreateEndpoint": "endpoint",
    "sagemaker:UpdateEndpoint": "endpoint",
    "sagemaker:DescribeEndpoint": "endpoint",
    "sagemaker:InvokeEndpoint": "endpoint",
    "sagemaker:ListTags": "endpoint",
    "sagemaker:CreateProcessingJob": "processing-job",
    "sagemaker:DescribeProcessingJob": "processing-job",
    "sagemaker:StopProcessingJob": "processing-job",
    "sagemaker:DescribeTransformJob": "transform-job",
    "sagemaker:StopTransformJob": "transform-job",
}
TRIGGERER_DESCRIBES = {
    "sagemaker:DescribeTrainingJob": "training-job",
    "sagemaker:DescribeEndpoint": "endpoint",
    "sagemaker:DescribeTransformJob": "transform-job",
    "sagemaker:DescribeProcessingJob": "processing-job",
}


@pytest.mark.parametrize(("env", "other"), [("dev", "prod"), ("prod", "dev")])
def test_an_envs_sagemaker_runner_reaches_only_its_own_envs_names(planned_policies, env, other):
    """dev and prod in one account: dev's sagemaker-runner can neither create, update, stop, describe nor invoke prod's
    training jobs, models, endpoint configs or endpoints (nor names of the prefix every environment used to share,
    eksflow-*), and cannot tag a new endpoint of prod's name as its own."""
    policies = _documents(planned_policies, env, "task-sagemaker-runner")
    for action, kind in RUNNER_ACTIONS.items():
        assert allows(policies, action, _sagemaker_arn(kind, f"eksflow-{env}-churn-1a2b3c4d5e")), action
        assert not allows(policies, action, _sagemaker_arn(kind, f"eksflow-{other}-churn-1a2b3c4d5e")), action
        assert not allows(policies, action, _sagemaker_arn(kind, "eksflow-churn-1a2b3c4d5e")), action
    at_create = {**request_tags(managed_tags(env)), **AT_CREATE}
    assert allows(policies, "sagemaker:AddTags", _sagemaker_arn("endpoint", f"eksflow-{env}-churn"), at_create)
    assert not allows(policies, "sagemaker:AddTags", _sagemaker_arn("endpoint", f"eksflow-{other}-churn"), at_create)


@pytest.mark.parametrize(("env", "other"), [("dev", "prod"), ("prod", "dev")])
def test_an_envs_triggerer_and_housekeeping_see_only_its_own_envs_sagemaker_names(planned_policies, env, other):
    """The triggerer resumes only its own environment's waits; housekeeping inspects and deletes only endpoints of its
    own prefix — not another environment's, even one tagged as this environment's."""
    triggerer = _documents(planned_policies, env, "triggerer")
    for action, kind in TRIGGERER_DESCRIBES.items():
        assert allows(triggerer, action, _sagemaker_arn(kind, f"eksflow-{env}-churn-1a2b3c4d5e")), action
        assert not allows(triggerer, action, _sagemaker_arn(kind, f"eksflow-{other}-churn-1a2b3c4d5e")), action
    housekeeping = _documents(planned_policies, env, "task-ec2-ops")
    mine = resource_tags(managed_tags(env))
    for action in ("sagemaker:DescribeEndpoint", "sagemaker:ListTags", "sagemaker:DeleteEndpoint"):
        assert allows(housekeeping, action, _sagemaker_arn("endpoint", f"eksflow-{env}-idle"), mine), action
        assert not allows(housekeeping, action, _sagemaker_arn("endpoint", f"eksflow-{other}-idle"), mine), action


def test_the_names_the_kit_makes_are_the_ones_its_envs_runner_may_use(planned_policies):
    """The kit names every SageMaker resource with the environment's prefix (eksflow.kit.naming): dev's names pass
    dev's policy and not prod's."""
    from eksflow.kit.naming import retry_name, stable_job_name
    from eksflow.kit.sagemaker import deployment_names

    ti = SimpleNamespace(dag_id="ml_pipeline", run_id="scheduled__2026-01-01T00:00:00+00:00", task_id="train")
    for env, other in (("dev", "prod"), ("prod", "dev")):
        training = stable_job_name("churn-train", env=env, dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id)
        names = deployment_names(f"eksflow-{env}-churn", {"ti": ti}, env=env)
        features = stable_job_name("churn-features", env=env, dag_id=ti.dag_id, run_id=ti.run_id, task_id="features")
        for kind, name in (
            ("training-job", training),
            ("training-job", retry_name(training, 10)),
            ("model", names["model"]),
            ("endpoint-config", names["endpoint_config"]),
            ("processing-job", retry_name(features, 10)),
        ):
            action = {
                "training-job": "CreateTrainingJob",
                "model": "CreateModel",
                "processing-job": "CreateProcessingJob",
            }.get(kind, "CreateEndpointConfig")
            arn = _sagemaker_arn(kind, name)
            assert allows(_documents(planned_policies, env, "task-sagemaker-runner"), f"sagemaker:{action}", arn)
            assert not allows(_documents(planned_policies, other, "task-sagemaker-runner"), f"sagemaker:{action}", arn)


@pytest.mark.parametrize(("env", "other"), [("dev", "prod"), ("prod", "dev")])
def test_an_envs_runner_transforms_under_its_own_names_with_its_own_models_only(planned_policies, env, other):
    """CreateTransformJob is authorized on the transform job, its model is the condition key sagemaker:ModelArn: dev's
    runner neither runs a job of prod's name nor runs prod's model (nor one outside every env's prefix), and the job
    needs no sagemaker:AddTags (the kit creates it without Tags)."""
    policies = _documents(planned_policies, env, "task-sagemaker-runner")

    def model(name: str) -> dict:
        return {"sagemaker:ModelArn": _sagemaker_arn("model", name)}

    mine, theirs = (
        _sagemaker_arn("transform-job", f"eksflow-{env}-scores-1a"),
        _sagemaker_arn("transform-job", f"eksflow-{other}-scores-1a"),
    )
    assert allows(policies, "sagemaker:CreateTransformJob", mine, model(f"eksflow-{env}-churn-model-1a"))
    assert not allows(policies, "sagemaker:CreateTransformJob", mine, model(f"eksflow-{other}-churn-model-1a"))
    assert not allows(policies, "sagemaker:CreateTransformJob", mine, model("churn-model"))
    assert not allows(policies, "sagemaker:CreateTransformJob", mine)  # no model named: the condition fails
    assert not allows(policies, "sagemaker:CreateTransformJob", theirs, model(f"eksflow-{env}-churn-model-1a"))
    for kind in ("processing-job", "transform-job"):
        assert not allows(policies, "sagemaker:AddTags", _sagemaker_arn(kind, f"eksflow-{env}-x"), AT_CREATE), kind


# ---------------------------------------------------------------------------------------------------------------
# Row 13: the Secrets Manager backend's read permission.


def _secrets_backend_kwargs(env: str, sets: tuple[str, ...] = ()) -> dict | None:
    """What the chart, with the environment's values file (and ``sets``), configures the backend with ([secrets]
    backend_kwargs); None when the backend is off."""
    from tests.helm import VALUE_FILES, render
    from tests.support.worker_pods import airflow_cfg

    cfg = airflow_cfg(render(base=VALUE_FILES[env], sets=sets))
    return json.loads(cfg["secrets"]["backend_kwargs"]) if cfg.has_section("secrets") else None


def _tfvar(env: str, name: str, tf_env: dict, tmp_path: Path):
    """A variable of envs/<env> as its terraform.tfvars (or the default) sets it."""
    work = _env_workdir(tmp_path, env, tf_env)
    offline = {**tf_env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
    result = subprocess.run(
        [terraform_binary(), "console", "-no-color"],
        input=f"jsonencode(var.{name})\n",
        cwd=work,
        env=offline,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(json.loads(result.stdout.strip()))


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_each_envs_secrets_backend_switch_is_its_values_files(env, tf_env, tmp_path):
    """Terraform grants the read only where the chart turns the backend on: envs/<env>'s secrets_backend_enabled
    equals helm/eksflow/values-<env>.yaml's airflow.secretsBackend.enabled, and PLANNED_ENVS plans that setting."""
    enabled = _secrets_backend_kwargs(env) is not None
    assert _tfvar(env, "secrets_backend_enabled", tf_env, tmp_path) is enabled
    assert PLANNED_ENVS[env]["secrets_backend_enabled"] is enabled


def _secret_arn(name: str) -> str:
    return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf"  # AWS appends 6 random characters


# Planned module (environment or variant) -> the chart's values file and the --set that turn the backend on there.
BACKEND_ON = {"prod": ("prod", ()), DEV_WITH_SECRETS: ("dev", ("airflow.secretsBackend.enabled=true",))}


@pytest.mark.parametrize("planned", BACKEND_ON)
def test_with_the_secrets_backend_on_every_airflow_process_may_read_exactly_the_charts_prefixes(
    planned_policies, planned
):
    """Row 13. Airflow 3.3.2 consults the [secrets] backend in every process the chart runs, each under its own
    role: api-server (execution API connections/variables routes), scheduler (Variable-based deadlines of a new
    DagRun), dag-processor (manager; the parsing child first, in client mode), triggerer (supervisor and the runner
    subprocess's triggers) and every task pod (the task runner's Connection/Variable lookups and the supervisor's
    remote-log connection; [workers] secrets_backend is unset, so workers use [secrets] backend). The backend calls
    only GetSecretValue, with SecretId <prefix>/<id>. So every role gets exactly that, on the prefixes the chart
    renders; nothing else of Secrets Manager (the RDS-managed DB secret included)."""
    kwargs = _secrets_backend_kwargs(*BACKEND_ON[planned])
    prefixes = [kwargs["connections_prefix"], kwargs["variables_prefix"]]
    model = platform_model()
    roles = {f"task-{name}" for name in model["task_roles"]} | set(model["control_plane"])
    assert set(planned_policies[planned]) == roles
    for role in roles:
        documents = _documents(planned_policies, planned, role)
        for prefix in prefixes:
            assert allows(documents, "secretsmanager:GetSecretValue", _secret_arn(f"{prefix}/aws_default")), role
            assert allows(documents, "secretsmanager:GetSecretValue", _secret_arn(f"{prefix}/team--x")), role
            assert not allows(documents, "secretsmanager:GetSecretValue", _secret_arn(f"{prefix}-other/x")), role
            assert not allows(documents, "secretsmanager:PutSecretValue", _secret_arn(f"{prefix}/aws_default"))
            assert not allows(documents, "secretsmanager:DescribeSecret", _secret_arn(f"{prefix}/aws_default"))
        assert not allows(documents, "secretsmanager:GetSecretValue", _secret_arn("rds!db-0123"))
        assert not allows(documents, "secretsmanager:GetSecretValue", _secret_arn("airflow/connections/x"))
        assert not allows(documents, "secretsmanager:ListSecrets", "*")
        (statement,) = [
            s for d in documents for s in d["Statement"] if "secretsmanager" in json.dumps(s.get("Action", ""))
        ]
        assert statement["Action"] == "secretsmanager:GetSecretValue", statement


def test_with_the_secrets_backend_off_no_role_may_read_secrets(planned_policies):
    for role, documents in planned_policies["dev"].items():
        for document in documents.values():
            assert "secretsmanager" not in json.dumps(document), role


@pytest.mark.parametrize(("planned", "env", "other"), [(DEV_WITH_SECRETS, "dev", "prod"), ("prod", "prod", "dev")])
def test_an_envs_roles_read_only_their_own_envs_connections_and_variables(planned_policies, planned, env, other):
    """dev turns the backend on in the account it shares with prod: every dev role — the default task role any DAG
    author may use included — reads dev's Connections and Variables (eksflow/dev/...), never prod's, nor the names
    every environment used to share; and the chart configures dev's Airflow with dev's names only."""
    kwargs = _secrets_backend_kwargs(*BACKEND_ON[planned])
    assert (kwargs["connections_prefix"], kwargs["variables_prefix"]) == (
        f"eksflow/{env}/connections",
        f"eksflow/{env}/variables",
    )
    for role, documents in planned_policies[planned].items():
        for kind in ("connections", "variables"):
            read = "secretsmanager:GetSecretValue"
            assert allows(list(documents.values()), read, _secret_arn(f"eksflow/{env}/{kind}/aws_default")), role
            assert not allows(list(documents.values()), read, _secret_arn(f"eksflow/{other}/{kind}/aws_default")), role
            assert not allows(list(documents.values()), read, _secret_arn(f"eksflow/{kind}/aws_default")), role


SNS_ACTIONS_NOBODY_MAY = ("sns:CreateTopic", "sns:Subscribe", "sns:ListTopics", "sns:SetTopicAttributes",
                          "sns:DeleteTopic", "sns:ListSubscriptionsByTopic")  # fmt: skip


@pytest.mark.parametrize(("env", "other"), [("dev", "prod"), ("prod", "dev")])
def test_every_task_role_and_the_dag_processor_may_publish_to_their_envs_topic_and_nothing_else_of_sns(
    planned_policies, env, other
):
    """Task callbacks run in the task's pod (its role), callbacks of lost tasks and DAG callbacks in the dag-processor:
    those roles publish to their own environment's notification topic (the role model's name), never another
    environment's; no role has any other SNS action, and the other control-plane roles none at all."""
    mine, theirs = notification_topic_arn(env, REGION, ACCOUNT), notification_topic_arn(other, REGION, ACCOUNT)
    publishers = {f"task-{role}" for role in platform_model()["task_roles"]} | {"dag-processor"}
    for role, documents in planned_policies[env].items():
        policies = list(documents.values())
        assert allows(policies, "sns:Publish", mine) == (role in publishers), role
        assert not allows(policies, "sns:Publish", theirs), role
        for action in SNS_ACTIONS_NOBODY_MAY:
            assert not allows(policies, action, mine), (role, action)
    assert publishers <= set(planned_policies[env])


def test_the_plan_summary_names_each_change_and_no_value(irsa_plan):
    """Issue 12 row 17: what `eksflow plan-summary` writes to the deploy job's summary, on a real plan."""
    from eksflow_dev.plan_summary import changes, render

    text = render(json.dumps(irsa_plan))
    assert changes(irsa_plan) and all(action == "create" for _, action in changes(irsa_plan))
    assert 'module.dev.aws_iam_role.this["task-ec2-ops"]' in text
    assert f"{len(changes(irsa_plan))} to create" in text
    for leaked in ("sts:AssumeRoleWithWebIdentity", "ec2:StopInstances", "system:serviceaccount", "arn:aws"):
        assert leaked not in text, leaked


# ---------------------------------------------------------------------------------------------------------------
# The release principal's way into the cluster, as envs/prod plans it.

RUNNER_SG, RUNNER_CIDR = "sg-0123456789abcdef0", "10.20.64.0/24"


@pytest.fixture(scope="module")
def prod_release_access_plan(tf_env, tmp_path_factory, emulator) -> dict[str, dict]:
    """envs/prod planned against the emulator with a deploy runner's security group and CIDR, targeted at the
    EKS module's access entries and ingress rules (and what they need): planned resources by address."""
    work = _env_workdir(tmp_path_factory.mktemp("prod-plan"), "prod", tf_env)
    endpoints = "".join(f'    {service} = "{emulator.url}"\n' for service in ("ec2", "eks", "iam", "sts", "s3", "kms"))
    (work / "provider_override.tf").write_text(
        'provider "aws" {\n  access_key = "testing"\n  secret_key = "testing"\n  skip_credentials_validation = true\n'
        f"  skip_metadata_api_check = true\n  s3_use_path_style = true\n  endpoints {{\n{endpoints}  }}\n}}\n"
    )
    runner = (
        "-var",
        f'deploy_runner_security_group_ids=["{RUNNER_SG}"]',
        "-var",
        f'deploy_runner_cidrs=["{RUNNER_CIDR}"]',
    )
    targets = [
        "-target=module.eks.aws_eks_access_entry.namespace_admins",
        "-target=module.eks.aws_vpc_security_group_ingress_rule.deploy_runner_security_groups",
        "-target=module.eks.aws_vpc_security_group_ingress_rule.deploy_runner_cidrs",
    ]
    terraform(
        "plan", "-input=false", "-no-color", *runner, *targets, "-out=plan.bin", cwd=work, env=tf_env, timeout=300
    )
    plan = json.loads(terraform("show", "-json", "plan.bin", cwd=work, env=tf_env).stdout)
    return {change["address"]: change["change"]["after"] for change in plan["resource_changes"]}


def test_prods_release_principal_maps_to_the_role_models_release_group(prod_release_access_plan):
    (entry,) = [v for a, v in prod_release_access_plan.items() if a.startswith("module.eks.aws_eks_access_entry.")]
    assert entry["kubernetes_groups"] == [platform_model()["release_kubernetes_group"]]


def test_prods_deploy_runner_reaches_the_private_api_on_443_only(prod_release_access_plan):
    rules = {
        address: after
        for address, after in prod_release_access_plan.items()
        if ".aws_vpc_security_group_ingress_rule." in address
    }
    assert sorted(rules) == [
        f'module.eks.aws_vpc_security_group_ingress_rule.deploy_runner_cidrs["{RUNNER_CIDR}"]',
        f'module.eks.aws_vpc_security_group_ingress_rule.deploy_runner_security_groups["{RUNNER_SG}"]',
    ]
    for rule in rules.values():
        assert (rule["ip_protocol"], rule["from_port"], rule["to_port"]) == ("tcp", 443, 443)
    assert {rule["referenced_security_group_id"] or rule["cidr_ipv4"] for rule in rules.values()} == {
        RUNNER_SG,
        RUNNER_CIDR,
    }


# ---------------------------------------------------------------------------------------------------------------
# Issue 12 rows 3 and 4: the CI stages' GitHub OIDC roles (terraform/modules/github_oidc) as a plan renders them.
# Enforced on the applied dev platform: test_deploy_roles.py.

GITHUB_REPOSITORY = "example/eksflow"
GITHUB_PROVIDER = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
STATE_BUCKET = "example-terraform-state"
STATE_KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0b7b0f6e-0000-4000-8000-000000000001"
DB_KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0b7b0f6e-0000-4000-8000-000000000002"
STAGES = ("push", "image-tag", "plan", "infra", "release")
WITH_STATE_KEY = "dev-with-state-kms-key"


def _db_secret(env: str) -> str:
    return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rds!db-{env}-0000-AbCdEf"


def _github_oidc_inputs(env: str, **extra) -> dict:
    return {
        "source": str(TERRAFORM / "modules" / "github_oidc"),
        "env": env,
        "github_repository": GITHUB_REPOSITORY,
        "terraform_state": {"bucket": STATE_BUCKET, "key": f"eksflow/{env}/terraform.tfstate"},
        "ecr_repository_arn": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/eksflow/airflow",
        "eks_cluster_arn": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/eksflow-{env}",
        "bucket_arns": {
            p: f"arn:aws:s3:::eksflow-{env}-{p.replace('_', '-')}" for p in ("logs", "data", "ml_artifacts")
        },
        "db_identifier": f"eksflow-{env}-metadata",
        "db_secret_arn": _db_secret(env),
        "db_kms_key_arn": DB_KMS_KEY,
        "housekeeping_tag_keys": [MANAGED_TAG_KEY, PROTECTED_TAG_KEY],
        "jobs": _workload_jobs(env),
        "job_repositories": JOB_REPOSITORIES,
        "job_tag_key": JOB_TAG_KEY,
        "ecs_cluster_arn": _cluster_arn(env),
        "ecs_execution_role_arn": _role_arn(ecs_execution_role_name(env)),
        "release_queue_arn": _queue_arn(env),
        "release_dlq_arn": _queue_arn(env, dlq=True),
        "release_queue_kms_key_arn": QUEUE_KMS_KEY,
        **extra,
    }


# Each job's repository on GitHub (as envs/*/terraform.tfvars name them).
JOB_REPOSITORIES = {name: f"example/{name}" for name in JOBS}


def _cluster_arn(env: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{ecs_cluster_name(env)}"


def _log_group_arn(name: str) -> str:
    return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}"


def _family_arn(family: str, revision: str = "*") -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{revision}"


def _workload_jobs(env: str) -> dict[str, dict]:
    """The workloads module's `jobs` output for env, as the github_oidc module takes it."""
    return {
        name: {
            "runs_on": job.runs_on,
            "repository_arn": _repository_arn(job.repository(env)),
            "ecs_family": job.ecs_family(env) if job.runs_on == "ecs" else "",
            "task_role_arn": _role_arn(job.task_role_name(env)) if job.runs_on == "ecs" else "",
            "log_group_arn": _log_group_arn(job.log_group(env)) if job.runs_on == "ecs" else "",
            "github_release_role_name": job.github_release_role_name(env),
        }
        for name, job in JOBS.items()
    }


@pytest.fixture(scope="module")
def github_oidc_shown(tf_env, tmp_path_factory, emulator) -> dict:
    """terraform/modules/github_oidc planned for dev, prod and dev with a customer-managed state key."""
    # The account's provider ARN is known at plan time (a created one is not: its trust policies would be unknown).
    existing = {"create_oidc_provider": False}
    modules = {env: _github_oidc_inputs(env, **existing) for env in ("dev", "prod")}
    state = {"bucket": STATE_BUCKET, "key": "eksflow/dev/terraform.tfstate", "kms_key_arn": STATE_KMS_KEY}
    modules[WITH_STATE_KEY] = _github_oidc_inputs("dev", terraform_state=state, **existing)
    return _planned_modules(modules, tf_env, tmp_path_factory.mktemp("github-oidc-plan"), emulator)


def _roles_of(shown: dict, name: str) -> dict[str, dict[str, dict]]:
    """{module address: {index: {"name": role name, "trust": document, "policy": document}}} of the module's
    aws_iam_role ``name`` and its aws_iam_role_policy of the same name, in a `terraform show -json` plan."""
    planned: dict[str, dict[str, dict]] = {}
    for module in shown["planned_values"]["root_module"]["child_modules"]:
        roles = planned.setdefault(module["address"].removeprefix("module."), {})
        for resource in module["resources"]:
            if resource["name"] != name:
                continue
            role = roles.setdefault(resource.get("index"), {})  # no index: a role without for_each
            if resource["type"] == "aws_iam_role":
                role["name"] = resource["values"]["name"]
                role["trust"] = json.loads(resource["values"]["assume_role_policy"])
            elif resource["type"] == "aws_iam_role_policy":
                role["policy"] = json.loads(resource["values"]["policy"])
    return planned


@pytest.fixture(scope="module")
def github_oidc_plan(github_oidc_shown) -> dict[str, dict[str, dict]]:
    """{dev, prod, dev with a customer-managed state key: {stage: {"trust": document, "policy": document}}}."""
    return _roles_of(github_oidc_shown, "this")


@pytest.fixture(scope="module")
def job_release_plan(github_oidc_shown) -> dict[str, dict[str, dict]]:
    """{dev, prod, ...: {job: {"trust": document, "policy": document}}}: the job repositories' release roles."""
    return _roles_of(github_oidc_shown, "job")


SUBJECTS = {
    "push": "repo:example/eksflow:ref:refs/heads/main",
    "image-tag": "repo:example/eksflow:environment:image-release",
    "plan": "repo:example/eksflow:environment:{env}-plan",
    "infra": "repo:example/eksflow:environment:{env}-infra",
    "release": "repo:example/eksflow:environment:{env}",
}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_each_stage_role_trusts_exactly_its_one_github_subject(github_oidc_plan, env):
    """Rows 3 and 4: one Allow of AssumeRoleWithWebIdentity from GitHub's provider, StringEquals on the audience and
    on the one `sub` of the stage — main only for push (no tag, no wildcard: a v* tag on an unreviewed commit no
    longer pushes), the stage's GitHub environment for the others (the plan job gets a role it can assume)."""
    assert set(github_oidc_plan[env]) == set(STAGES)
    for stage in STAGES:
        (statement,) = github_oidc_plan[env][stage]["trust"]["Statement"]
        assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Principal"] == {"Federated": GITHUB_PROVIDER}
        assert statement["Condition"] == {
            "StringEquals": {
                "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                "token.actions.githubusercontent.com:sub": SUBJECTS[stage].format(env=env),
            }
        }, stage


def _stage(planned, env: str, stage: str) -> dict:
    return planned[env][stage]["policy"]


def _state_object(env: str, suffix: str = "") -> str:
    return f"arn:aws:s3:::{STATE_BUCKET}/eksflow/{env}/terraform.tfstate{suffix}"


@pytest.mark.parametrize(("env", "other"), [("dev", "prod"), ("prod", "dev")])
def test_each_stage_reaches_only_its_envs_state_as_its_job_needs(github_oidc_plan, env, other):
    """plan reads the state and takes the lock (writes only <key>.tflock); infra also writes the state; release only
    reads it; none lists past its key, none touches another environment's state; push and image-tag never."""
    bucket = f"arn:aws:s3:::{STATE_BUCKET}"
    lists_key = {"s3:prefix": f"eksflow/{env}/terraform.tfstate"}
    may = {  # stage -> (read state, write lock, write state)
        "push": (False, False, False),
        "image-tag": (False, False, False),
        "plan": (True, True, False),
        "infra": (True, True, True),
        "release": (True, False, False),
    }
    for stage, (read, lock, write) in may.items():
        policy = _stage(github_oidc_plan, env, stage)
        assert allows(policy, "s3:GetObject", _state_object(env)) is read, stage
        assert allows(policy, "s3:ListBucket", bucket, lists_key) is read, stage
        for action in ("s3:PutObject", "s3:DeleteObject"):
            assert allows(policy, action, _state_object(env, ".tflock")) is lock, (stage, action)
        assert allows(policy, "s3:PutObject", _state_object(env)) is write, stage
        assert not allows(policy, "s3:DeleteObject", _state_object(env)), stage
        assert not allows(policy, "s3:ListBucket", bucket), f"{stage} lists the whole state bucket"
        assert not allows(policy, "s3:ListBucket", bucket, {"s3:prefix": "eksflow/"}), stage
        for action in ("s3:GetObject", "s3:PutObject"):
            assert not allows(policy, action, _state_object(other)), (stage, action)
            assert not allows(policy, action, _state_object(other, ".tflock")), (stage, action)


def test_a_customer_managed_state_key_is_used_only_through_s3(github_oidc_plan):
    via_s3 = {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
    for stage, actions in {"plan": ("kms:Decrypt", "kms:GenerateDataKey"), "release": ("kms:Decrypt",)}.items():
        policy = _stage(github_oidc_plan, WITH_STATE_KEY, stage)
        for action in actions:
            assert allows(policy, action, STATE_KMS_KEY, via_s3), (stage, action)
            assert not allows(policy, action, STATE_KMS_KEY), f"{stage}: {action} outside S3"
    assert not allows(_stage(github_oidc_plan, WITH_STATE_KEY, "release"), "kms:GenerateDataKey", STATE_KMS_KEY, via_s3)
    for stage in STAGES:  # without a state key input no stage may use any key that way
        assert not allows(_stage(github_oidc_plan, "dev", stage), "kms:Decrypt", STATE_KMS_KEY, via_s3), stage


def test_no_stage_reads_a_data_object_a_log_or_a_secret_but_release_its_db_secret(github_oidc_plan):
    """Objects of the data, log and ML buckets, secrets and KMS decryption stay out of every stage (the plan role
    refreshes buckets' settings, never their objects); the release reads the RDS-managed DB secret and decrypts its
    key only through Secrets Manager."""
    via_secrets = {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}
    for stage in STAGES:
        policy = _stage(github_oidc_plan, "dev", stage)
        for bucket in ("logs", "data", "ml-artifacts"):
            assert not allows(policy, "s3:GetObject", f"arn:aws:s3:::eksflow-dev-{bucket}/curated/_SUCCESS"), stage
        assert not allows(policy, "logs:GetLogEvents", "*"), stage
        assert not allows(policy, "secretsmanager:GetSecretValue", _secret_arn("airflow/connections/x")), stage
        release = stage == "release"
        assert allows(policy, "secretsmanager:GetSecretValue", _db_secret("dev")) is release, stage
        assert allows(policy, "kms:Decrypt", DB_KMS_KEY, via_secrets) is release, stage
        assert not allows(policy, "kms:Decrypt", DB_KMS_KEY), f"{stage} decrypts outside Secrets Manager"
        assert not allows(policy, "secretsmanager:GetSecretValue", _db_secret("prod")), stage


IMAGE_REPOSITORY = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/eksflow/airflow"
LAYER_UPLOAD = ("ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload")


def test_each_stage_may_make_exactly_the_ecr_calls_of_its_image_steps(github_oidc_plan):
    """Row 4: the image steps' ECR calls have one home, src/eksflow_dev/ecr_image.py (VERIFY_ACTIONS: the manifest and
    its config blob; RETAG_ACTIONS: and PutImage). push verifies and uploads; image-tag verifies and puts main's
    manifest under the version tag — no layer upload, so it publishes nothing main did not build; the release
    verifies the image it deploys by digest; plan and infra do neither."""
    from eksflow_dev.ecr_image import RETAG_ACTIONS, VERIFY_ACTIONS

    ecr_calls = {
        "push": {*RETAG_ACTIONS, *LAYER_UPLOAD, "ecr:BatchCheckLayerAvailability", "ecr:DescribeImageScanFindings"},
        "image-tag": set(RETAG_ACTIONS),
        "release": set(VERIFY_ACTIONS),
    }
    other_repository = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/eksflow/other"
    every = {a for calls in ecr_calls.values() for a in calls} | {"ecr:BatchDeleteImage"}  # images, not the repository
    for stage in STAGES:
        policy = _stage(github_oidc_plan, "dev", stage)
        granted = {action for action in every | {"ecr:DescribeImages"} if allows(policy, action, IMAGE_REPOSITORY)}
        assert granted == ecr_calls.get(stage, set()), stage
        assert not [a for a in every if allows(policy, a, other_repository)], stage
        assert allows(policy, "ecr:GetAuthorizationToken", "*") is (stage == "push"), "docker login: push only"


def test_the_plan_role_writes_nothing_but_the_lock(github_oidc_plan):
    """Every action the plan role is granted reads (Get/List/Describe), but Put/DeleteObject — on the lock only."""
    policy = _stage(github_oidc_plan, "dev", "plan")
    for statement in policy["Statement"]:
        actions = _as_list_(statement["Action"])
        writes = [a for a in actions if not a.split(":")[1].startswith(("Get", "List", "Describe"))]
        if writes:
            assert sorted(writes) == ["s3:DeleteObject", "s3:PutObject"], statement
            assert _as_list_(statement["Resource"]) == [_state_object("dev", ".tflock")], statement
        assert statement["Effect"] == "Allow" and "*" not in "".join(actions), statement


def _as_list_(value) -> list:
    return value if isinstance(value, list) else [value]


def _iam(kind: str, name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:{kind}/{name}"


@pytest.mark.parametrize(("env", "other"), [("dev", "prod"), ("prod", "dev")])
def test_the_infra_role_manages_only_its_envs_stack(github_oidc_plan, env, other):
    """infra applies the stack: roles, providers, buckets, clusters, DB, keys, log groups, topic, alarms, the jobs'
    repositories, families and queues of its own environment's names or `eksflow:env` tag — not another environment's,
    no IAM user or access key, no policy but the EKS managed ones attached, roles passed only to EKS (the cluster's)
    and ECS tasks (the jobs'), no housekeeping tag set on EC2, no task run, no message sent."""
    policy = _stage(github_oidc_plan, env, "infra")
    mine, theirs = resource_tags({"eksflow:env": env}), resource_tags({"eksflow:env": other})
    allowed = [
        ("iam:CreateRole", _iam("role", f"eksflow-{env}-task-default"), {}),
        ("iam:PutRolePolicy", _iam("role", f"eksflow-{env}-github-release"), {}),
        ("iam:CreateRole", _iam("role", f"eksflow-{env}-cluster"), {}),
        ("iam:AttachRolePolicy", _iam("role", f"eksflow-{env}-node"),
         {"iam:PolicyARN": "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy"}),
        ("iam:PassRole", _iam("role", f"eksflow-{env}-cluster"), {"iam:PassedToService": "eks.amazonaws.com"}),
        ("iam:CreateOpenIDConnectProvider", _iam("oidc-provider", f"oidc.eks.{REGION}.amazonaws.com/id/ABC"), {}),
        ("s3:DeleteBucket", f"arn:aws:s3:::eksflow-{env}-data", {}),
        ("eks:DeleteCluster", f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/eksflow-{env}", {}),
        ("rds:DeleteDBInstance", f"arn:aws:rds:{REGION}:{ACCOUNT}:db:eksflow-{env}-metadata", {}),
        ("kms:CreateKey", "*", request_tags({"eksflow:env": env, "eksflow:managed-by": "terraform"})),
        # CreateKey with Tags is authorized as kms:TagResource too, on a key without tags yet.
        ("kms:TagResource", "*", request_tags({"eksflow:env": env, "eksflow:managed-by": "terraform"})),
        ("kms:ScheduleKeyDeletion", DB_KMS_KEY, mine),
        ("ec2:DeleteVpc", f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-1", mine),
        ("ec2:CreateTags", f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-1",
         {**request_tags({"eksflow:env": env}), "ec2:CreateAction": "CreateVpc"}),
        ("sns:DeleteTopic", f"arn:aws:sns:{REGION}:{ACCOUNT}:eksflow-{env}-alarms", {}),
        # the workloads (modules/workloads)
        ("ecs:PutClusterCapacityProviders", _cluster_arn(env), {}),
        ("ecs:RegisterTaskDefinition", "*", {}),
        ("ecs:TagResource", _family_arn(JOBS[ECS_JOBS[0]].ecs_family(env), "1"), {}),
        ("iam:PassRole", _role_arn(JOBS[ECS_JOBS[0]].task_role_name(env)), TO_ECS),
        ("iam:PassRole", _role_arn(ecs_execution_role_name(env)), TO_ECS),
        ("sqs:SetQueueAttributes", _queue_arn(env, dlq=True), {}),
        ("logs:PutRetentionPolicy", _log_group_arn(JOBS[ECS_JOBS[0]].log_group(env)), {}),
        ("ecr:PutLifecyclePolicy", _repository_arn(JOBS[SAGEMAKER_JOBS[0]].repository(env)), {}),
    ]  # fmt: skip
    denied = [
        ("iam:CreateUser", _iam("user", "eksflow-probe"), {}),
        ("iam:CreateAccessKey", _iam("user", "eksflow-terraform-admin"), {}),
        ("iam:CreateRole", _iam("role", f"eksflow-{other}-task-default"), {}),
        ("iam:PutRolePolicy", _iam("role", "OrganizationAccountAccessRole"), {}),
        ("iam:AttachRolePolicy", _iam("role", f"eksflow-{env}-node"),
         {"iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess"}),
        ("iam:PassRole", _iam("role", f"eksflow-{env}-cluster"), {"iam:PassedToService": "lambda.amazonaws.com"}),
        ("iam:CreateOpenIDConnectProvider", _iam("oidc-provider", "issuer.example.com"), {}),
        ("s3:DeleteBucket", f"arn:aws:s3:::eksflow-{other}-data", {}),
        ("s3:PutObject", f"arn:aws:s3:::eksflow-{env}-data/curated/x", {}),
        ("eks:DeleteCluster", f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/eksflow-{other}", {}),
        ("rds:DeleteDBInstance", f"arn:aws:rds:{REGION}:{ACCOUNT}:db:eksflow-{other}-metadata", {}),
        ("kms:CreateKey", "*", request_tags({"eksflow:env": other})),
        ("kms:CreateKey", "*", {}),
        ("kms:TagResource", "*", request_tags({"eksflow:env": other})),
        ("kms:TagResource", DB_KMS_KEY, {**theirs, **request_tags({"eksflow:env": env})}),  # claim another env's key
        ("kms:ScheduleKeyDeletion", DB_KMS_KEY, theirs),
        ("kms:Decrypt", DB_KMS_KEY, mine),
        ("ec2:DeleteVpc", f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-1", theirs),
        ("ec2:DeleteVpc", f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-1", {}),
        ("ec2:CreateTags", INSTANCE, request_tags(managed_tags(env))),
        ("ec2:CreateTags", INSTANCE, {**mine, **request_tags(managed_tags(env))}),
        ("ec2:DeleteTags", INSTANCE, {**mine, **request_tags({PROTECTED_TAG_KEY: ""})}),
        ("ec2:RunInstances", f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/*", {}),
        ("secretsmanager:GetSecretValue", _db_secret(env), {}),
        ("sns:DeleteTopic", f"arn:aws:sns:{REGION}:{ACCOUNT}:eksflow-{other}-alarms", {}),
        ("ecs:DeleteCluster", _cluster_arn(other), {}),
        ("ecs:RunTask", _family_arn(JOBS[ECS_JOBS[0]].ecs_family(env)), {}),
        ("iam:PassRole", _role_arn(ecs_execution_role_name(env)), {"iam:PassedToService": "ecs.amazonaws.com"}),
        ("iam:PassRole", _role_arn(JOBS[ECS_JOBS[0]].task_role_name(other)), TO_ECS),
        ("sqs:DeleteQueue", _queue_arn(other), {}),
        ("sqs:SendMessage", _queue_arn(env), {}),
        ("ecr:DeleteRepository", _repository_arn(JOBS[SAGEMAKER_JOBS[0]].repository(other)), {}),
        ("logs:DeleteLogGroup", _log_group_arn(JOBS[ECS_JOBS[0]].log_group(other)), {}),
    ]  # fmt: skip
    assert [call for call in allowed if not allows(policy, *call)] == []
    assert [call for call in denied if allows(policy, *call)] == []


def _hcl(value) -> str:
    """A module argument's value in HCL (objects as { name = value }, everything else as JSON writes it)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{name} = {_hcl(item)}" for name, item in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_hcl(item) for item in value) + "]"
    return json.dumps(value)


def test_the_state_input_must_name_a_bucket_and_a_state_key(tf_env, tmp_path):
    bad_state = {"bucket": "Example_State", "key": "/eksflow/*", "kms_key_arn": "alias/state"}
    inputs = {**_github_oidc_inputs("dev", terraform_state=bad_state)}
    inputs.pop("source")
    body = "".join(f"  {name} = {_hcl(value)}\n" for name, value in inputs.items())
    text = _validation_errors("github_oidc", body, tf_env, tmp_path / "bad-state")
    for message in (
        "terraform_state.bucket must be an S3 bucket name",
        "the bucket of this environment's backend.hcl",
        "terraform_state.key must be the state object's key as backend.hcl sets it",
        "terraform_state.kms_key_arn must be a KMS key ARN",
    ):
        assert message in text, message


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_each_envs_state_input_is_where_its_backend_example_puts_the_state(env, tf_env, tmp_path):
    """The roles may touch only the state named by terraform_state; backend.hcl (copied from backend.hcl.example)
    decides where Terraform keeps it: the two must agree, or plan and release would be denied their own state."""
    from tests.dev_platform import backend_example

    state = _tfvar(env, "terraform_state", tf_env, tmp_path)
    example = backend_example(env)
    assert (state["bucket"], state["key"]) == (example["bucket"], example["key"])
    assert example["use_lockfile"] == "true"  # the plan role may write <key>.tflock, nothing else


# ---------------------------------------------------------------------------------------------------------------
# Issue 14: the job-release queue as the triggerer's AssetWatcher uses it (terraform/modules/irsa).


@pytest.mark.parametrize(("env", "other"), [("dev", "prod"), ("prod", "dev")])
def test_the_triggerer_watches_its_envs_release_queue_and_sets_bad_messages_aside_in_its_dlq(
    planned_policies, env, other
):
    """Airflow runs every trigger, the AssetWatchers' included, in the triggerer: it receives, deletes and keeps
    invisible the release queue's messages and reads its attributes, and sends a malformed one to the DLQ — of its own
    environment only; it announces no release, reads no dead letter, changes no queue; the queues' key only via SQS."""
    triggerer = _documents(planned_policies, env, "triggerer")
    queue, dlq = _queue_arn(env), _queue_arn(env, dlq=True)
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"):
        assert allows(triggerer, action, queue), action
        assert not allows(triggerer, action, _queue_arn(other)), action
        assert not allows(triggerer, action, dlq), action
    assert allows(triggerer, "sqs:SendMessage", dlq)
    assert not allows(triggerer, "sqs:SendMessage", queue), "the triggerer would forge a release"
    assert not allows(triggerer, "sqs:SendMessage", _queue_arn(other, dlq=True))
    for action in ("sqs:PurgeQueue", "sqs:DeleteQueue", "sqs:SetQueueAttributes", "sqs:CreateQueue"):
        assert not allows(triggerer, action, queue), action
    via_sqs = {"kms:ViaService": f"sqs.{REGION}.amazonaws.com"}
    for action in ("kms:Decrypt", "kms:GenerateDataKey"):
        assert allows(triggerer, action, QUEUE_KMS_KEY, via_sqs), action
        assert not allows(triggerer, action, QUEUE_KMS_KEY), f"{action} outside SQS"
        assert not allows(triggerer, action, QUEUE_KMS_KEY, {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}), action


@pytest.mark.parametrize("env", PLANNED_ENVS)
def test_ecs_runner_runs_only_revisions_tagged_with_their_familys_job_and_registers_or_tags_none(planned_policies, env):
    """RunTask of a revision of a job's family only when the revision is tagged eksflow:job = that job
    (aws:ResourceTag on the task-definition resource): an untagged revision, or one tagged with another job, is not
    runnable. No RegisterTaskDefinition (tagged or not), no TagResource on a revision, no PassRole but what RunTask
    passes (the jobs' task roles and the execution role, to ECS tasks)."""
    runner = _documents(planned_policies, env, "task-ecs-runner")
    cluster = {"ecs:cluster": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/eksflow-{env}-batch"}
    for name in ECS_JOBS:
        revision = _family_arn(JOBS[name].ecs_family(env), "7")
        assert allows(runner, "ecs:RunTask", revision, {**cluster, **resource_tags({JOB_TAG_KEY: name})}), name
        assert not allows(runner, "ecs:RunTask", revision, cluster), f"{name}: an untagged revision"
        for other in (n for n in JOBS if n != name):
            assert not allows(runner, "ecs:RunTask", revision, {**cluster, **resource_tags({JOB_TAG_KEY: other})})
        tagged = {**request_tags({JOB_TAG_KEY: name}), "ecs:CreateAction": "RegisterTaskDefinition"}
        assert not allows(runner, "ecs:TagResource", revision, tagged), f"{name}: tags a revision"
        assert not allows(runner, "ecs:RegisterTaskDefinition", "*", request_tags({JOB_TAG_KEY: name})), name
    assert not allows(runner, "ecs:RegisterTaskDefinition", "*"), "an untagged revision"
    assert allows(runner, "ecs:DescribeTaskDefinition", "*") and allows(runner, "ecs:ListTaskDefinitions", "*")
    passed = {r for document in runner for st in document["Statement"] if "iam:PassRole" in _actions(st)
              for r in ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"])}  # fmt: skip
    assert passed == set(_irsa_inputs(env)["ecs_pass_role_arns"]), passed


def _actions(statement: dict) -> list[str]:
    return [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]


def test_an_ecs_family_that_is_no_role_model_jobs_fails_the_plan_naming_the_input_and_the_fix(
    tf_env, tmp_path, emulator
):
    """ecs-runner runs a family's revisions only when tagged with its job: a family the role model has no ecs job
    for has no job to require, so the plan stops naming the input."""
    inputs = _irsa_inputs("dev", ecs_task_definition_families=["eksflow-dev-etl-step", "eksflow-dev-other"])
    with pytest.raises(AssertionError) as failed:
        _planned_modules({"dev": inputs}, tf_env, tmp_path, emulator)
    text = " ".join(str(failed.value).split())
    assert "ecs_task_definition_families must be the role model's ecs job families (eksflow-dev-etl-step)" in text, text
    assert "pass the workloads module's ecs_task_definition_families" in text, text


def test_no_role_but_the_triggerer_touches_a_queue(planned_policies):
    for env in PLANNED_ENVS:
        for role, documents in planned_policies[env].items():
            assert ("sqs:" in json.dumps(documents)) is (role == "triggerer"), role


# ---------------------------------------------------------------------------------------------------------------
# Issue 14: the workloads (terraform/modules/workloads) as a plan renders them: the roles' policies and trust, the
# job repositories and the families Terraform leaves to the releases. Applied and cross-checked in
# test_terraform_apply.py; the roles held to their policies under IAM enforcement in test_least_privilege.py.

WITH_BUCKET_KEY = "dev-with-bucket-kms-key"
PULL = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")


def _bucket(env: str, purpose: str) -> str:
    return f"arn:aws:s3:::{bucket_names(env)[purpose]}"


def _workloads_inputs(env: str, **extra) -> dict:
    return {
        "source": str(TERRAFORM / "modules" / "workloads"),
        "env": env,
        "role_model": f'${{jsondecode(file("{TERRAFORM / "role-model.json"}"))}}',
        "data_bucket_arn": _bucket(env, "data"),
        "ml_artifacts_bucket_arn": _bucket(env, "ml_artifacts"),
        "vpc_id": "vpc-0123456789abcdef0",
        **extra,
    }


@pytest.fixture(scope="module")
def workloads_shown(tf_env, tmp_path_factory, emulator) -> dict:
    """terraform/modules/workloads planned for dev, prod and dev with a customer-managed bucket key."""
    modules = {env: _workloads_inputs(env) for env in ("dev", "prod")}
    modules[WITH_BUCKET_KEY] = _workloads_inputs("dev", bucket_kms_key_arn=BUCKET_KMS_KEY)
    return _planned_modules(modules, tf_env, tmp_path_factory.mktemp("workloads-plan"), emulator)


def _workload_role(shown: dict, module: str, name: str, index: str | None = None) -> dict:
    return _roles_of(shown, name)[module][index]


def _planned_resources(shown: dict, module: str, kind: str) -> dict:
    """{index: planned values} of the module's resources of one type."""
    (planned,) = [
        m for m in shown["planned_values"]["root_module"]["child_modules"] if m["address"] == f"module.{module}"
    ]
    return {r.get("index"): r["values"] for r in planned["resources"] if r["type"] == kind}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_workload_roles_have_the_role_models_names_and_trust_only_their_service_in_this_account(
    workloads_shown, env
):
    """ECS tasks (the execution role, each ecs job's task role) and SageMaker (its execution role) of this account
    only (aws:SourceAccount; ECS also names its own ARNs): another account's task or job cannot run as them."""
    ecs_trust = {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:*"},
    }
    roles = {("execution", None): ecs_execution_role_name(env)}
    roles |= {("task", job): JOBS[job].task_role_name(env) for job in ECS_JOBS}
    assert set(_roles_of(workloads_shown, "task")[env]) == set(ECS_JOBS)
    for (name, index), role_name in roles.items():
        role = _workload_role(workloads_shown, env, name, index)
        assert role["name"] == role_name
        (statement,) = role["trust"]["Statement"]
        assert (statement["Effect"], statement["Action"]) == ("Allow", "sts:AssumeRole")
        assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}, role_name
        assert statement["Condition"] == ecs_trust, role_name
    sagemaker = _workload_role(workloads_shown, env, "sagemaker_execution")
    assert sagemaker["name"] == sagemaker_execution_role_name(env)
    (statement,) = sagemaker["trust"]["Statement"]
    assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


DATA_PREFIXES = ("raw/", "curated/", "reports/", "models/")


@pytest.mark.parametrize(("env", "other"), [("dev", "prod"), ("prod", "dev")])
@pytest.mark.parametrize("job", ECS_JOBS)
def test_an_ecs_jobs_task_role_reads_its_reads_and_writes_its_writes_of_its_envs_data_only(
    workloads_shown, env, other, job
):
    """The role model's reads and writes (src/eksflow/jobs.py) are the task role's whole S3 reach: objects under
    those prefixes (not a sibling such as raw-old/), listing only there, no delete, no other bucket, no other
    environment's data, no KMS right (the buckets' AWS managed key serves every principal through S3)."""
    policy = _workload_role(workloads_shown, env, "task", job)["policy"]
    spec, data = JOBS[job], _bucket(env, "data")
    for prefix in DATA_PREFIXES:
        key = f"{data}/{prefix}day=2026-01-01/part=0000/data.csv"
        assert allows(policy, "s3:GetObject", key) is (prefix in spec.reads), prefix
        assert allows(policy, "s3:PutObject", key) is (prefix in spec.writes), prefix
        assert not allows(policy, "s3:DeleteObject", key), prefix
        listing = {"s3:prefix": f"{prefix}day=2026-01-01/"}
        assert allows(policy, "s3:ListBucket", data, listing) is (prefix in {*spec.reads, *spec.writes}), prefix
    for prefix in {*spec.reads, *spec.writes}:
        sibling = f"{data}/{prefix.rstrip('/')}-old/x"
        assert not allows(policy, "s3:GetObject", sibling) and not allows(policy, "s3:PutObject", sibling)
        assert not allows(policy, "s3:GetObject", f"{_bucket(other, 'data')}/{prefix}x")
        for purpose in ("logs", "ml_artifacts"):
            assert not allows(policy, "s3:GetObject", f"{_bucket(env, purpose)}/{prefix}x"), purpose
    assert not allows(policy, "s3:ListBucket", data), "lists the whole data bucket"
    assert "kms:" not in json.dumps(policy)
    for action, resource in (("sqs:SendMessage", _queue_arn(env)), ("ecr:BatchGetImage", "*"), ("iam:PassRole", "*")):
        assert not allows(policy, action, resource), action


def test_with_a_customer_managed_bucket_key_the_workload_roles_use_it_through_s3_only(workloads_shown):
    via_s3 = {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
    roles = [("task", job, bool(JOBS[job].writes)) for job in ECS_JOBS] + [("sagemaker_execution", None, True)]
    for name, index, writes in roles:
        policy = _workload_role(workloads_shown, WITH_BUCKET_KEY, name, index)["policy"]
        assert allows(policy, "kms:Decrypt", BUCKET_KMS_KEY, via_s3), name
        assert allows(policy, "kms:GenerateDataKey", BUCKET_KMS_KEY, via_s3) is writes, name
        assert not allows(policy, "kms:Decrypt", BUCKET_KMS_KEY), f"{name} decrypts outside S3"
        assert not allows(policy, "kms:Decrypt", QUEUE_KMS_KEY, via_s3), name
    assert "kms:" not in json.dumps(_workload_role(workloads_shown, "dev", "execution")["policy"])


def _job_log_stream(env: str, job: str) -> str:
    return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{JOBS[job].log_group(env)}:log-stream:{job}/main/0123abcd"


@pytest.mark.parametrize(("env", "other"), [("dev", "prod"), ("prod", "dev")])
def test_the_task_execution_role_pulls_only_the_ecs_jobs_images_and_writes_only_their_log_streams(
    workloads_shown, env, other
):
    """No AmazonECSTaskExecutionRolePolicy (every repository, every log group): the ecs jobs' repositories of its
    environment, read only, and their log groups' streams."""
    policy = _workload_role(workloads_shown, env, "execution")["policy"]
    assert allows(policy, "ecr:GetAuthorizationToken", "*")
    for job, spec in JOBS.items():
        for action in PULL:
            assert allows(policy, action, _repository_arn(spec.repository(env))) is (job in ECS_JOBS), (job, action)
            assert not allows(policy, action, _repository_arn(spec.repository(other))), (job, action)
    for action in (*PULL, "ecr:PutImage", "ecr:InitiateLayerUpload"):
        assert not allows(policy, action, IMAGE_REPOSITORY), action
    for job in ECS_JOBS:
        assert not allows(policy, "ecr:PutImage", _repository_arn(JOBS[job].repository(env)))
        for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
            assert allows(policy, action, _job_log_stream(env, job)), action
            assert not allows(policy, action, _job_log_stream(other, job)), action
        group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{JOBS[job].log_group(env)}"
        for action in ("logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:GetLogEvents"):
            assert not allows(policy, action, group) and not allows(policy, action, f"{group}:*"), action
    eks_logs = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/eks/eksflow-{env}/cluster:log-stream:x"
    assert not allows(policy, "logs:PutLogEvents", eks_logs)
    assert not allows(policy, "s3:GetObject", f"{_bucket(env, 'data')}/raw/x")


@pytest.mark.parametrize(("env", "other"), [("dev", "prod"), ("prod", "dev")])
def test_the_sagemaker_execution_role_reads_curated_data_keeps_models_and_pulls_the_sagemaker_jobs_images(
    workloads_shown, env, other
):
    """What SageMaker does as this role for the ML pipeline: training input under curated/ (read), model artifacts
    under models/ of the ML artifacts bucket (read and write), the sagemaker jobs' images, the logs of its own
    environment's jobs and endpoints — nothing of another environment, no raw data, no other image."""
    policy = _workload_role(workloads_shown, env, "sagemaker_execution")["policy"]
    data, artifacts = _bucket(env, "data"), _bucket(env, "ml_artifacts")
    assert allows(policy, "s3:GetObject", f"{data}/curated/day=2026-01-01/part=0000/_SUCCESS")
    assert allows(policy, "s3:ListBucket", data, {"s3:prefix": "curated/"})
    for key in ("raw/events/sample.csv", "reports/housekeeping/x.json", "curated-old/x"):
        assert not allows(policy, "s3:GetObject", f"{data}/{key}"), key
    assert not allows(policy, "s3:PutObject", f"{data}/curated/x")
    assert not allows(policy, "s3:ListBucket", data)
    for action in ("s3:GetObject", "s3:PutObject"):
        assert allows(policy, action, f"{artifacts}/models/eksflow-{env}-churn-1a/output/model.tar.gz"), action
        assert not allows(policy, action, f"{artifacts}/other/x"), action
        assert not allows(policy, action, f"{_bucket(other, 'ml_artifacts')}/models/x"), action
    assert allows(policy, "s3:ListBucket", artifacts, {"s3:prefix": "models/"})
    assert not allows(policy, "s3:DeleteObject", f"{artifacts}/models/x")
    for job, spec in JOBS.items():
        for action in PULL:
            assert allows(policy, action, _repository_arn(spec.repository(env))) is (job in SAGEMAKER_JOBS), job
            assert not allows(policy, action, _repository_arn(spec.repository(other))), job
    assert not allows(policy, "ecr:BatchGetImage", IMAGE_REPOSITORY)
    logs = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker"
    for mine, theirs in (
        (f"{logs}/TrainingJobs:log-stream:{sagemaker_name_prefix(env)}churn-1a/algo-1-1",
         f"{logs}/TrainingJobs:log-stream:{sagemaker_name_prefix(other)}churn-1a/algo-1-1"),
        (f"{logs}/ProcessingJobs:log-stream:{sagemaker_name_prefix(env)}features-1a/algo-1",
         f"{logs}/ProcessingJobs:log-stream:other-features/algo-1"),
        (f"{logs}/Endpoints/{sagemaker_name_prefix(env)}churn:log-stream:AllTraffic/i-0",
         f"{logs}/Endpoints/{sagemaker_name_prefix(other)}churn:log-stream:AllTraffic/i-0"),
    ):  # fmt: skip
        for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
            assert allows(policy, action, mine), (action, mine)
            assert not allows(policy, action, theirs), (action, theirs)
    for action in ("iam:PassRole", "sagemaker:CreateTrainingJob", "sqs:SendMessage"):
        assert not allows(policy, action, "*"), action


def test_job_repositories_are_immutable_scanned_and_expire_only_what_no_release_runs(workloads_shown):
    """A release pins its image by digest: tags never move (IMMUTABLE), every push is scanned, and the lifecycle
    expires untagged leftovers by age but tagged images only beyond the newest 100 — never by age."""
    repositories = _planned_resources(workloads_shown, "dev", "aws_ecr_repository")
    assert set(repositories) == set(JOBS)
    for job, values in repositories.items():
        assert values["name"] == JOBS[job].repository("dev")
        assert values["image_tag_mutability"] == "IMMUTABLE"
        assert values["image_scanning_configuration"] == [{"scan_on_push": True}]
        assert values["encryption_configuration"][0]["encryption_type"] == "KMS"
    lifecycles = _planned_resources(workloads_shown, "dev", "aws_ecr_lifecycle_policy")
    assert {values["repository"] for values in lifecycles.values()} == {JOBS[job].repository("dev") for job in JOBS}
    for values in lifecycles.values():
        rules = sorted(json.loads(values["policy"])["rules"], key=lambda rule: rule["rulePriority"])
        assert [rule["selection"] for rule in rules] == [
            {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14},
            {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 100},
        ]


def test_terraform_registers_each_ecs_family_once_and_leaves_the_later_revisions_to_the_releases(workloads_shown):
    """track_latest and skip_destroy as planned (with ignore_changes on the containers: a release's revision leaves
    the plan clean, test_deploy_roles.py); Fargate, awsvpc, the job's task role and the execution role."""
    families = _planned_resources(workloads_shown, "dev", "aws_ecs_task_definition")
    assert set(families) == set(ECS_JOBS)
    for job, values in families.items():
        assert values["family"] == JOBS[job].ecs_family("dev")
        assert (values["track_latest"], values["skip_destroy"]) == (True, True)
        assert (values["requires_compatibilities"], values["network_mode"]) == (["FARGATE"], "awsvpc")
        assert values["tags"][JOB_TAG_KEY] == job


# ---------------------------------------------------------------------------------------------------------------
# Issue 14: the job repositories' release roles (terraform/modules/github_oidc jobs.tf) as a plan renders them.
# Enforced on the applied dev platform: test_deploy_roles.py.

RELEASE_PUSH = ("ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
                "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                "ecr:DescribeImages")  # fmt: skip
TO_ECS = {"iam:PassedToService": "ecs-tasks.amazonaws.com"}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_each_jobs_release_role_trusts_only_its_own_repositorys_github_environment_of_its_env(job_release_plan, env):
    assert set(job_release_plan[env]) == set(JOBS)
    for job, role in job_release_plan[env].items():
        assert role["name"] == JOBS[job].github_release_role_name(env)
        (statement,) = role["trust"]["Statement"]
        assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Principal"] == {"Federated": GITHUB_PROVIDER}
        assert statement["Condition"] == {
            "StringEquals": {
                "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                "token.actions.githubusercontent.com:sub": f"repo:{JOB_REPOSITORIES[job]}:environment:{env}",
            }
        }, job


@pytest.mark.parametrize(("env", "other"), [("dev", "prod"), ("prod", "dev")])
@pytest.mark.parametrize("job", sorted(JOBS))
def test_each_jobs_release_role_may_make_exactly_its_release(job_release_plan, env, other, job):
    """Push and read its image in its own repository; an ecs job: read a family to copy, register a revision only
    tagged with its job (aws:RequestTag: RegisterTaskDefinition has no resource type), tag it only at registration,
    pass only its own task role and the execution role, only to ECS tasks; announce the release on its environment's
    queue, the key only via SQS. Nothing of another job, environment or the platform."""
    policy = job_release_plan[env][job]["policy"]
    spec, ecs = JOBS[job], JOBS[job].runs_on == "ecs"
    own, others = _repository_arn(spec.repository(env)), [n for n in JOBS if n != job]
    assert allows(policy, "ecr:GetAuthorizationToken", "*")
    for action in RELEASE_PUSH:
        assert allows(policy, action, own), action
        assert not [n for n in others if allows(policy, action, _repository_arn(JOBS[n].repository(env)))], action
        assert not allows(policy, action, _repository_arn(spec.repository(other))), action
        assert not allows(policy, action, IMAGE_REPOSITORY), action
    for action in ("ecr:BatchDeleteImage", "ecr:DeleteRepository", "ecr:PutLifecyclePolicy", "ecr:SetRepositoryPolicy",
                   "ecr:PutImageTagMutability"):  # fmt: skip
        assert not allows(policy, action, own), action
    tagged = request_tags({JOB_TAG_KEY: job})
    assert allows(policy, "ecs:RegisterTaskDefinition", "*", tagged) is ecs
    assert allows(policy, "ecs:DescribeTaskDefinition", "*") is ecs
    assert not allows(policy, "ecs:RegisterTaskDefinition", "*"), "an untagged revision"
    for name in others:
        assert not allows(policy, "ecs:RegisterTaskDefinition", "*", request_tags({JOB_TAG_KEY: name})), name
    if ecs:
        revision = _family_arn(spec.ecs_family(env), "2")
        assert allows(policy, "ecs:TagResource", revision, {**tagged, "ecs:CreateAction": "RegisterTaskDefinition"})
        assert not allows(policy, "ecs:TagResource", revision, tagged), "a TagResource of its own"
        assert allows(policy, "iam:PassRole", _role_arn(spec.task_role_name(env)), TO_ECS)
        assert not allows(policy, "iam:PassRole", _role_arn(spec.task_role_name(env))), "to any service"
        assert not allows(
            policy,
            "iam:PassRole",
            _role_arn(spec.task_role_name(env)),
            {"iam:PassedToService": "sagemaker.amazonaws.com"},
        )
    assert allows(policy, "iam:PassRole", _role_arn(ecs_execution_role_name(env)), TO_ECS) is ecs
    for name in (n for n in others if JOBS[n].runs_on == "ecs"):
        assert not allows(policy, "iam:PassRole", _role_arn(JOBS[name].task_role_name(env)), TO_ECS), name
    assert not allows(policy, "iam:PassRole", _role_arn(ecs_execution_role_name(other)), TO_ECS)
    to_sagemaker = {"iam:PassedToService": "sagemaker.amazonaws.com"}
    assert not allows(policy, "iam:PassRole", _role_arn(sagemaker_execution_role_name(env)), to_sagemaker)
    for action in ("ecs:RunTask", "ecs:DeregisterTaskDefinition", "ecs:UpdateService", "ecs:StopTask"):
        assert not allows(policy, action, "*") and not allows(policy, action, _family_arn(f"eksflow-{env}-x")), action
    assert allows(policy, "sqs:SendMessage", _queue_arn(env))
    assert not allows(policy, "sqs:SendMessage", _queue_arn(env, dlq=True))
    assert not allows(policy, "sqs:SendMessage", _queue_arn(other))
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:PurgeQueue", "sqs:SetQueueAttributes"):
        assert not allows(policy, action, _queue_arn(env)), action
    via_sqs = {"kms:ViaService": f"sqs.{REGION}.amazonaws.com"}
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert allows(policy, action, QUEUE_KMS_KEY, via_sqs), action
        assert not allows(policy, action, QUEUE_KMS_KEY), f"{action} outside SQS"
    for action, resource in (
        ("s3:GetObject", f"{_bucket(env, 'data')}/curated/x"),
        ("iam:CreateRole", _role_arn(f"eksflow-{env}-probe")),
        ("iam:PutRolePolicy", _role_arn(spec.github_release_role_name(env))),
        ("sts:AssumeRole", _role_arn(spec.task_role_name(env) if ecs else sagemaker_execution_role_name(env))),
        ("secretsmanager:GetSecretValue", _db_secret(env)),
    ):
        assert not allows(policy, action, resource), action


def test_job_repositories_must_name_every_job_and_no_other_naming_the_variable_and_the_fix(tf_env, tmp_path):
    errors = _refused_plan(tf_env, tmp_path, 'job_repositories={"etl-step"="acme/etl-step","nightly"="acme/nightly"}')
    missing = json.dumps(sorted(set(JOBS) - {"etl-step"}), separators=(",", ":"))
    assert (
        "job_repositories must name the GitHub repository of every job of the role model and of no other job: "
        f'missing {missing}, unknown ["nightly"]; set job_repositories = {{ <job> = "<owner>/<name>", ... }} in '
        "this environment's terraform.tfvars with the jobs of terraform/role-model.json (src/eksflow/jobs.py)"
    ) in errors, errors[-2000:]


def test_a_job_repository_that_is_not_owner_slash_name_is_refused(tf_env, tmp_path):
    repositories = {**JOB_REPOSITORIES, "etl-step": "https://github.com/acme/etl-step"}
    value = "{" + ",".join(f'"{job}"="{repository}"' for job, repository in repositories.items()) + "}"
    errors = _refused_plan(tf_env, tmp_path, f"job_repositories={value}")
    assert "job_repositories values must be GitHub repositories as owner/name" in errors, errors[-2000:]

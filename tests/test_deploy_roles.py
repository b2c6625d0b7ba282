"""The GitHub Actions roles (terraform/modules/github_oidc), enforced: the dev platform Terraform applied to the
emulator (tests/dev_platform.py, shared with test_terraform_apply.py and test_least_privilege.py), IAM enforcement
on, each CI stage's role assumed with a GitHub-like OIDC token of its stage (tests/support/web_identity.py; unsigned,
the emulator evaluates the trust policies, tests/support/web_identity.py says what it does not check).

- Each role is assumed only with its own stage's `sub` (branch main; the image-release, <env>-plan, <env>-infra and
  <env> GitHub environments): every other stage's token, a tag or another branch, a pull request, another
  environment or repository, another audience are refused.
- Every stage is probed with the calls of its job and ≥ 10 outside it (tests/deploy_probes.py; table in the summary).
- The real `terraform plan` of envs/dev, as a deploy job runs it: `terraform init -backend-config=backend.hcl`
  (backend.hcl.example + the emulator's endpoint, so the S3 backend and its lock file) and `terraform plan` with the
  plan role's web-identity credentials: it succeeds with no changes, taking and releasing the lock, and no request of
  it is denied. Then `terraform output -json` with the release role's, as `make deploy STAGE=release` reads it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from eksflow.platform import bucket_names, ecr_repository_name
from eksflow_dev.emulator.control import control
from eksflow_dev.emulator.seed import other_env
from eksflow_dev.local.offline import REGION
from tests.deploy_probes import IMAGE_TAG, PROBES, STAGES, DeployContext
from tests.dev_platform import ENV, REPO, backend_example
from tests.probes import run_probe, table, web_identity_session
from tests.support.web_identity import github_actions_token
from tests.terraform_cli import terraform

pytestmark = pytest.mark.slow

REFUSED = ("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")


def _repository() -> str:
    """github_repository of envs/dev/terraform.tfvars (the repository the roles trust)."""
    text = (REPO / "terraform" / "envs" / ENV / "terraform.tfvars").read_text()
    return re.search(r'^github_repository\s*=\s*"([^"]+)"', text, re.MULTILINE)[1]


REPOSITORY = _repository()
# Each stage's job: the `sub` GitHub gives it (its branch, or its job's GitHub environment).
STAGE_TOKENS = {
    "push": {"ref": "refs/heads/main"},
    "image-tag": {"environment": "image-release"},
    "plan": {"environment": f"{ENV}-plan"},
    "infra": {"environment": f"{ENV}-infra"},
    "release": {"environment": ENV},
}
# Tokens no stage role may accept.
HOSTILE_TOKENS = {
    "a v* tag push (unreviewed commit)": (REPOSITORY, {"ref": "refs/tags/v1.0.0"}),
    "another branch": (REPOSITORY, {"ref": "refs/heads/feature"}),
    "a pull request": (REPOSITORY, {"ref": "pull_request"}),
    "another env's release environment": (REPOSITORY, {"environment": other_env(ENV)}),
    "another env's infra environment": (REPOSITORY, {"environment": f"{other_env(ENV)}-infra"}),
    "a fork's main": ("someone/eksflow", {"ref": "refs/heads/main"}),
    "a fork's release environment": ("someone/eksflow", {"environment": ENV}),
}
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 2,
            "digest": "sha256:" + "1" * 64,
        },
        "layers": [],
    }
)


def _token(**claims) -> str:
    return github_actions_token(REPOSITORY, **claims)


@pytest.fixture(scope="module")
def stages(dev_platform) -> dict[str, str]:
    """Stage -> its role ARN (the env's outputs), with the state uploaded and main's image pushed; IAM enforced."""
    roles = {stage: dev_platform.outputs[f"github_{stage.replace('-', '_')}_role_arn"] for stage in STAGES}
    dev_platform.upload_state()
    other = backend_example(other_env(ENV))
    dev_platform.client("s3").put_object(Bucket=other["bucket"], Key=other["key"], Body=b"{}")
    ecr = dev_platform.client("ecr")
    ecr.put_image(repositoryName=ecr_repository_name(), imageManifest=MANIFEST, imageTag=IMAGE_TAG)
    try:
        with dev_platform.enforcement():
            yield roles
    finally:  # the repository must be empty for the session's destroy
        ecr.batch_delete_image(repositoryName=ecr_repository_name(), imageIds=[{"imageTag": IMAGE_TAG}])


def test_the_env_outputs_every_stages_role_and_no_shared_deploy_role(dev_platform, stages):
    assert "github_deploy_role_arn" not in dev_platform.outputs
    for stage, arn in stages.items():
        assert arn.endswith(f":role/eksflow-{ENV}-github-{stage}")


def test_each_stage_role_is_assumed_only_with_its_own_stages_token(dev_platform, stages):
    """Every role against every stage's token (its own admitted, the four others refused) and against tokens of no
    stage: a tag push, another branch, a pull request, another environment's GitHub environments, a fork."""
    refused = []
    for stage, arn in stages.items():
        web_identity_session(dev_platform.url, REGION, arn, _token(**STAGE_TOKENS[stage]))
        others = {f"the {s} stage's token": (REPOSITORY, STAGE_TOKENS[s]) for s in STAGES if s != stage}
        wrong_audience = {"another audience": (REPOSITORY, {**STAGE_TOKENS[stage], "audience": "sigstore"})}
        for what, (repository, claims) in {**others, **HOSTILE_TOKENS, **wrong_audience}.items():
            with pytest.raises(ClientError) as error:
                web_identity_session(dev_platform.url, REGION, arn, github_actions_token(repository, **claims))
            details = error.value.response["Error"]
            assert (details["Code"], details["Message"]) == REFUSED, f"{stage} role, {what}"
            refused.append((stage, what))
    assert len(refused) == len(STAGES) * (len(STAGES) - 1 + len(HOSTILE_TOKENS) + 1)


@pytest.fixture(scope="module")
def context(dev_platform, stages) -> DeployContext:
    state = {env: backend_example(env) for env in (ENV, other_env(ENV))}
    return DeployContext(
        env=ENV,
        other_env=other_env(ENV),
        account=stages["plan"].split(":")[4],
        region=REGION,
        state_bucket=state[ENV]["bucket"],
        state_keys={env: settings["key"] for env, settings in state.items()},
        buckets=bucket_names(ENV),
        role_arns=stages,
        db_secret_arn=dev_platform.outputs["db_secret_arn"],
        image_manifest=MANIFEST,
    )


def test_every_stage_is_denied_outside_its_job(dev_platform, stages, context, record_property):
    outcomes = []
    for stage, arn in stages.items():
        session = web_identity_session(dev_platform.url, REGION, arn, _token(**STAGE_TOKENS[stage]))
        outcomes += [run_probe(session, dev_platform.url, context, stage, probe) for probe in PROBES[stage]]
    record_property("table: least privilege — the CI stages' GitHub OIDC roles under IAM enforcement", table(outcomes))
    for stage in STAGES:
        assert sum(o.probe.expect == "deny" for o in outcomes if o.role == stage) >= 10, stage
    wrong = [o.line() for o in outcomes if not o.ok]
    assert not wrong, "\n".join(wrong)


def _as_stage(dev_platform, stages, stage: str) -> dict[str, str]:
    """The environment of a CI job after aws-actions/configure-aws-credentials: the role's session keys."""
    session = web_identity_session(dev_platform.url, REGION, stages[stage], _token(**STAGE_TOKENS[stage]))
    credentials = session.get_credentials()
    return {
        **dev_platform.env,
        "AWS_ACCESS_KEY_ID": credentials.access_key,
        "AWS_SECRET_ACCESS_KEY": credentials.secret_key,
        "AWS_SESSION_TOKEN": credentials.token,
    }


STATE = backend_example(ENV)


def _tolerated(check: dict) -> bool:
    """Denied, and carried on from by Terraform as by design: the AWS provider finds its account with iam:GetUser
    first and, refused (AWS refuses it to every role session), with sts:GetCallerIdentity; the S3 backend lists the
    workspaces' prefix env:/, and refused (the roles list only the state's key) knows the default workspace only —
    the one CI uses."""
    if (check["action"], check["resource"]) == ("iam:GetUser", "*"):
        return True
    workspaces = ("s3:ListBucket", f"arn:aws:s3:::{STATE['bucket']}", "env:/")
    return (check["action"], check["resource"], check["context"].get("s3:prefix")) == workspaces


def _checks_of(dev_platform, role_arn: str) -> list[dict]:
    """The authorization checks the emulator made for sessions of this role since the last reset."""
    role_name = role_arn.rsplit("/", 1)[1]
    checks = control(dev_platform.url, "authorizations")["authorizations"]
    return [c for c in checks if f":assumed-role/{role_name}/" in c["principal"]]


@pytest.fixture(scope="module")
def ci_checkout(dev_platform, stages, tmp_path_factory) -> Path:
    return dev_platform.remote_state_copy(tmp_path_factory.mktemp("ci-checkout"))


def test_the_plan_role_runs_terraform_plan_of_envs_dev_with_no_changes(dev_platform, stages, ci_checkout):
    """What the deploy workflow's plan job runs, under the plan role, IAM enforced: init with the S3 backend, a plan
    that locks the state (use_lockfile) and finds no changes; every request it made was allowed."""
    env = _as_stage(dev_platform, stages, "plan")
    control(dev_platform.url, "authorizations/reset", "")
    terraform(
        "init", "-input=false", "-no-color", "-reconfigure", "-backend-config=backend.hcl", cwd=ci_checkout, env=env
    )
    plan = terraform(
        "plan", "-input=false", "-no-color", "-detailed-exitcode", cwd=ci_checkout, env=env, check=False, timeout=900
    )
    assert plan.returncode == 0, f"exit {plan.returncode}:\n{plan.stdout[-4000:]}\n{plan.stderr[-4000:]}"
    checks = _checks_of(dev_platform, stages["plan"])
    denied = [c for c in checks if not c["allowed"] and not _tolerated(c)]
    assert not denied, denied
    lock = f"arn:aws:s3:::{STATE['bucket']}/{STATE['key']}.tflock"
    assert {("s3:PutObject", lock), ("s3:DeleteObject", lock)} <= {(c["action"], c["resource"]) for c in checks}
    writes = {c["action"] for c in checks} - {"s3:PutObject", "s3:DeleteObject"}
    assert not [a for a in writes if not a.split(":")[1].startswith(("Get", "List", "Describe", "Head"))], writes


def test_the_release_role_reads_the_outputs_from_the_state(dev_platform, stages, ci_checkout):
    """`make deploy STAGE=release` starts with terraform init and output (deploy.py): the release role reads the
    applied outputs from the remote state, and writes nothing."""
    env = _as_stage(dev_platform, stages, "release")
    control(dev_platform.url, "authorizations/reset", "")
    terraform(
        "init", "-input=false", "-no-color", "-reconfigure", "-backend-config=backend.hcl", cwd=ci_checkout, env=env
    )
    outputs = json.loads(terraform("output", "-json", cwd=ci_checkout, env=env).stdout)
    assert {name: output["value"] for name, output in outputs.items()} == dev_platform.outputs
    checks = _checks_of(dev_platform, stages["release"])
    assert checks and all(c["allowed"] or _tolerated(c) for c in checks), checks
    assert {c["action"] for c in checks} == {"s3:GetObject", "s3:ListBucket"}, checks

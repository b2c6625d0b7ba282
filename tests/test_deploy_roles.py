"""The GitHub Actions roles (terraform/modules/github_oidc), enforced: the dev platform Terraform applied to the
emulator (tests/dev_platform.py, shared with test_terraform_apply.py and test_least_privilege.py), IAM enforcement
on, each CI stage's role assumed with a GitHub-like OIDC token of its stage, each job repository's release role with
one of that repository (tests/support/web_identity.py; unsigned, the emulator evaluates the trust policies,
tests/support/web_identity.py says what it does not check).

- Each role is assumed only with its own stage's `sub` (branch main; the image-release, <env>-plan, <env>-infra and
  <env> GitHub environments): every other stage's token, a tag or another branch, a pull request, another
  environment or repository, another audience are refused.
- Every stage is probed with the calls of its job and ≥ 10 outside it (tests/deploy_probes.py; table in the summary).
- The real `terraform plan` of envs/dev, as a deploy job runs it: `terraform init -backend-config=backend.hcl`
  (backend.hcl.example + the emulator's endpoint, so the S3 backend and its lock file) and `terraform plan` with the
  plan role's web-identity credentials: it succeeds with no changes, taking and releasing the lock, and no request of
  it is denied. Then `terraform output -json` with the release role's, as `make deploy STAGE=release` reads it.
- Each job's release role is assumed only with its own repository's token in the GitHub environment named after the
  environment (another job's repository, another environment, a branch, the platform's repository refused), and
  probed: its release's calls allowed, ≥ 10 outside denied. An ecs job's release made with it (push, register a
  revision by digest copying the family, announce it on the queue) leaves Terraform's next plan clean, tracking that
  revision: Terraform neither rolls the family back to its bootstrap image nor fights the releases.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from eksflow.jobs import JOBS
from eksflow.platform import bucket_names, ecr_repository_name
from eksflow.releases import Release, release_from_payload
from eksflow_dev.emulator.control import control
from eksflow_dev.emulator.seed import other_env
from eksflow_dev.local.offline import REGION
from tests.deploy_probes import IMAGE_TAG, PROBES, STAGES, DeployContext, job_probes
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


def _job_repositories() -> dict[str, str]:
    """job_repositories of envs/dev/terraform.tfvars: job -> the GitHub repository its release role trusts."""
    text = (REPO / "terraform" / "envs" / ENV / "terraform.tfvars").read_text()
    line = re.search(r"^job_repositories\s*=\s*\{(.*)\}", text, re.MULTILINE)[1]
    return dict(re.findall(r'"([^"]+)"\s*=\s*"([^"]+)"', line))


JOB_REPOSITORIES = _job_repositories()
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
        release_queue_url=dev_platform.outputs["release_queue_url"],
        release_dlq_url=dev_platform.outputs["release_dlq_url"],
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


# ---------------------------------------------------------------------------------------------------------------
# The job repositories' release roles (terraform/modules/github_oidc jobs.tf).


def _job_token(job: str, **claims) -> str:
    return github_actions_token(JOB_REPOSITORIES[job], **({"environment": ENV} | claims))


@pytest.fixture(scope="module")
def job_roles(dev_platform, stages) -> dict[str, str]:
    """Job -> its release role (the env's outputs), with main's image manifest pushed to every job repository (as a
    release pushes it), removed again after (the seeded releases stay: other files' DAG runs run them; the session's
    teardown empties the repositories before its destroy). IAM enforced (``stages``)."""
    ecr = dev_platform.client("ecr")
    for job in JOBS.values():
        ecr.put_image(repositoryName=job.repository(ENV), imageManifest=MANIFEST, imageTag=IMAGE_TAG)
    try:
        yield dev_platform.outputs["job_release_role_arns"]
    finally:
        for job in JOBS.values():
            ecr.batch_delete_image(repositoryName=job.repository(ENV), imageIds=[{"imageTag": IMAGE_TAG}])


def test_the_env_outputs_every_jobs_release_role(job_roles):
    assert set(job_roles) == set(JOBS) == set(JOB_REPOSITORIES)
    for name, arn in job_roles.items():
        assert arn.endswith(f":role/{JOBS[name].github_release_role_name(ENV)}")


def test_each_jobs_release_role_is_assumed_only_with_its_own_repositorys_token_of_its_env(dev_platform, job_roles):
    """Its own repository's job in the GitHub environment named after the env is admitted; another job's repository,
    the platform's own (even its release environment), another environment, a branch or tag without an environment,
    a pull request, another audience are refused."""
    refused = []
    for job, arn in job_roles.items():
        web_identity_session(dev_platform.url, REGION, arn, _job_token(job))
        tokens = {f"the {other} repository's": _job_token(other) for other in JOB_REPOSITORIES if other != job} | {
            "the platform repository's release environment": github_actions_token(REPOSITORY, environment=ENV),
            "another env's environment": _job_token(job, environment=other_env(ENV)),
            "its plan environment": _job_token(job, environment=f"{ENV}-plan"),
            "main without the environment": github_actions_token(JOB_REPOSITORIES[job], ref="refs/heads/main"),
            "a v* tag": github_actions_token(JOB_REPOSITORIES[job], ref="refs/tags/v1.0.0"),
            "a pull request": github_actions_token(JOB_REPOSITORIES[job], ref="pull_request"),
            "a fork": github_actions_token(f"someone/{JOB_REPOSITORIES[job].split('/')[1]}", environment=ENV),
            "another audience": _job_token(job, audience="sigstore"),
        }
        for what, token in tokens.items():
            with pytest.raises(ClientError) as error:
                web_identity_session(dev_platform.url, REGION, arn, token)
            details = error.value.response["Error"]
            assert (details["Code"], details["Message"]) == REFUSED, f"{job}'s role, {what}"
            refused.append((job, what))
    assert len(refused) == len(JOBS) * (len(JOBS) - 1 + 8)


def test_every_jobs_release_role_is_denied_outside_its_release(dev_platform, job_roles, context, record_property):
    outcomes = []
    for job, arn in job_roles.items():
        session = web_identity_session(dev_platform.url, REGION, arn, _job_token(job))
        outcomes += [run_probe(session, dev_platform.url, context, job, probe) for probe in job_probes(job)]
    record_property(
        "table: least privilege — the job repositories' release roles under IAM enforcement", table(outcomes)
    )
    for job in JOBS:
        assert sum(o.probe.expect == "deny" for o in outcomes if o.role == job) >= 10, job
    wrong = [o.line() for o in outcomes if not o.ok]
    assert not wrong, "\n".join(wrong)


RELEASED_SHA = "fedcba9876543210fedcba9876543210fedcba98"
# What a release copies of the family's latest revision besides its containers (and tags).
COPIED = ("family", "taskRoleArn", "executionRoleArn", "networkMode", "volumes", "placementConstraints",
          "requiresCompatibilities", "cpu", "memory", "runtimePlatform")  # fmt: skip


def test_an_ecs_jobs_release_by_its_role_leaves_terraforms_plan_clean_tracking_the_released_revision(
    dev_platform, job_roles, tmp_path
):
    """What `eksflow job release` does for an ecs job, with the job's release role (the calls themselves: the CLI
    lives on the release side): push the image with an immutable tag, register a revision of the family with the
    image pinned by digest copying the latest revision (containers, tags), announce it on the release queue. Then
    Terraform plans no change — it neither puts its bootstrap image back nor re-registers — and its state tracks the
    released revision; the announced message parses as that release."""
    outputs = dev_platform.outputs
    released = {}
    for name, job in ((n, j) for n, j in JOBS.items() if j.runs_on == "ecs"):
        session = web_identity_session(dev_platform.url, REGION, job_roles[name], _job_token(name))
        ecr, ecs, sqs = (session.client(service, endpoint_url=dev_platform.url) for service in ("ecr", "ecs", "sqs"))
        tag = f"git-{RELEASED_SHA[:12]}"
        pushed = ecr.put_image(repositoryName=job.repository(ENV), imageManifest=MANIFEST, imageTag=tag)
        image = f"{outputs['job_repository_urls'][name]}@{pushed['image']['imageId']['imageDigest']}"
        latest = ecs.describe_task_definition(taskDefinition=job.ecs_family(ENV), include=["TAGS"])
        definition = latest["taskDefinition"]
        revision = ecs.register_task_definition(
            **{key: definition[key] for key in COPIED if key in definition},
            containerDefinitions=[{**c, "image": image} for c in definition["containerDefinitions"]],
            tags=latest["tags"],
        )["taskDefinition"]
        assert revision["revision"] > definition["revision"]
        release = Release(ENV, name, image, RELEASED_SHA, tag, revision["taskDefinitionArn"])
        sqs.send_message(QueueUrl=outputs["release_queue_url"], MessageBody=release.to_message())
        released[job.ecs_family(ENV)] = (release, revision["revision"])

    queue = dev_platform.client("sqs")
    messages = queue.receive_message(QueueUrl=outputs["release_queue_url"], MaxNumberOfMessages=10)["Messages"]
    assert [release_from_payload(m["Body"], env=ENV) for m in messages] == [r for r, _ in released.values()]
    for message in messages:
        queue.delete_message(QueueUrl=outputs["release_queue_url"], ReceiptHandle=message["ReceiptHandle"])

    plan = dev_platform.terraform(
        "plan", "-detailed-exitcode", "-input=false", f"-out={tmp_path / 'release.plan'}", check=False
    )
    assert plan.returncode == 0, (
        f"a release made Terraform plan changes (exit {plan.returncode}):\n{plan.stdout[-6000:]}"
    )
    shown = json.loads(dev_platform.terraform("show", "-json", str(tmp_path / "release.plan")).stdout)
    (workloads,) = [m for m in shown["prior_state"]["values"]["root_module"]["child_modules"]
                    if m["address"] == "module.workloads"]  # fmt: skip
    tracked = {r["values"]["family"]: r["values"]["revision"] for r in workloads["resources"]
               if r["type"] == "aws_ecs_task_definition"}  # fmt: skip
    assert tracked == {family: number for family, (_, number) in released.items()}

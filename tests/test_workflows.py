"""GitHub Actions workflows: valid against the GitHub workflow schema (check-jsonschema's vendored copy),
clean under checkov's GitHub Actions checks, third-party actions pinned by commit SHA, minimal permissions,
OIDC instead of keys, and the same commands as local (`.ci/run`, `make deploy`)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from eksflow.platform import ecr_repository_name
from tests.scanners import failures, scan, scan_tool, skips_without_reason

GITHUB = Path(__file__).resolve().parents[1] / ".github"
WORKFLOWS = GITHUB / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
ACTIONS = sorted(GITHUB.glob("actions/*/action.yml"))  # local composite actions the workflows call


def _load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def test_the_four_workflows_exist():
    assert {f.name for f in FILES} == {"ci.yml", "image.yml", "deploy.yml", "job-release.yml"}


SCHEMAS = {"workflows": ("vendor.github-workflows", FILES), "actions": ("vendor.github-actions", ACTIONS)}


@pytest.mark.parametrize(("schema", "paths"), SCHEMAS.values(), ids=SCHEMAS.keys())
def test_workflows_and_actions_match_the_github_schemas(schema, paths):
    assert paths
    command = [scan_tool("check-jsonschema"), "--builtin-schema", schema, *map(str, paths)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_github_actions_checks_pass():
    report = scan("--directory", str(WORKFLOWS.parent), "--framework", "github_actions")
    assert report["summary"]["passed"] > 50
    assert not failures(report)
    assert not skips_without_reason(FILES)


@pytest.mark.parametrize("path", FILES + ACTIONS, ids=lambda p: p.relative_to(GITHUB).as_posix())
def test_actions_are_pinned_by_commit_sha_with_their_version(path):
    for line in path.read_text().splitlines():
        match = re.search(r"uses:\s*(\S+)", line)
        if match and not match[1].startswith("./"):
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", match[1]), f"{path.name}: {line.strip()}"
            assert re.search(r"#\s*v\d", line), f"{path.name}: say which version the SHA is: {line.strip()}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_permissions_are_minimal_and_no_long_lived_keys(path):
    workflow = yaml.safe_load(path.read_text())
    assert workflow["permissions"] == {"contents": "read"}, "default token: read-only"
    text = path.read_text()
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    for name, job in workflow["jobs"].items():
        granted = job.get("permissions", workflow["permissions"])
        assert set(granted) <= {"contents", "id-token"}, f"{name}: {granted}"
        assert granted.get("contents") == "read", name
        uses_aws = "configure-aws-credentials" in _with_local_actions(job)
        assert (granted.get("id-token") == "write") == uses_aws, f"{name}: id-token only where AWS is assumed"
        assert job.get("timeout-minutes"), f"{name}: set timeout-minutes"


def _with_local_actions(job: dict) -> str:
    """The job's text with the text of every local action it uses (`uses: ./.github/actions/...`)."""
    local = [step["uses"] for step in job.get("steps", []) if step.get("uses", "").startswith("./")]
    return yaml.safe_dump(job) + "".join((GITHUB.parent / uses / "action.yml").read_text() for uses in local)


def test_ci_runs_the_same_command_as_local_ci():
    steps = _load("ci.yml")["jobs"]["test"]["steps"]
    assert any(step.get("run") in ("bash .ci/run", "sudo --preserve-env=PATH bash .ci/run") for step in steps)
    assert set(_load("ci.yml")[True]) == {"pull_request", "push"}  # YAML reads the key `on` as True


def test_ci_runs_the_kind_e2e_where_docker_exists():
    job = _load("ci.yml")["jobs"]["kind-e2e"]
    runs = [step.get("run", "") for step in job["steps"]]
    assert "make kind-e2e" in runs
    assert job["runs-on"].startswith("ubuntu-"), "GitHub-hosted Ubuntu runners come with Docker and kind"
    assert "permissions" not in job, "read-only workflow permissions suffice: no AWS, no registry"


def _steps(job: dict) -> list[dict]:
    """The job's steps with the steps of the local actions it uses in their place."""
    steps = []
    for step in job["steps"]:
        if step.get("uses", "").startswith("./"):
            steps += yaml.safe_load((GITHUB.parent / step["uses"] / "action.yml").read_text())["runs"]["steps"]
        else:
            steps.append(step)
    return steps


def _index(steps: list[dict], predicate) -> int:
    (found,) = [i for i, step in enumerate(steps) if predicate(step)]
    return found


def _runs(steps: list[dict], text: str):
    return lambda step: text in step.get("run", "")


def _uses(name: str):
    return lambda step: step.get("uses", "").startswith(name + "@")


@pytest.mark.parametrize("path", FILES + ACTIONS, ids=lambda p: p.relative_to(GITHUB).as_posix())
def test_no_expression_is_expanded_into_a_run_step(path):
    """Values reach scripts through env (quoted by the shell), never as `${{ }}` text spliced into the script."""
    document = yaml.safe_load(path.read_text())
    jobs = document.get("jobs", {"action": document.get("runs", {})})
    for name, job in jobs.items():
        for step in job.get("steps", []):
            assert "${{" not in step.get("run", ""), f"{name}: {step.get('name') or step['run']}"


def test_image_builds_and_pushes_only_on_main_via_oidc_to_the_role_model_repository():
    image = _load("image.yml")
    job = image["jobs"]["build-push"]
    assert image[True]["push"] == {"branches": ["main"], "tags": ["v*.*.*"]}
    assert job["if"] == "github.ref == 'refs/heads/main'", "the push role is trusted from refs/heads/main only"
    assert job["env"]["REPOSITORY"] == ecr_repository_name()
    assert "environment" not in job, "a job in an environment gets an environment subject, not main's ref"
    (credentials,) = [s for s in job["steps"] if _uses("aws-actions/configure-aws-credentials")(s)]
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_IMAGE_PUSH_ROLE_ARN }}"


def test_an_existing_sha_image_is_verified_before_any_build_and_the_pushed_one_after():
    """Issue 12 row 4: the old job skipped the push when `:<sha>` existed, whoever had pushed it."""
    steps = _load("image.yml")["jobs"]["build-push"]["steps"]
    existing = _index(steps, _runs(steps, 'image verify "$GITHUB_SHA" --allow-missing'))
    build = _index(steps, _runs(steps, "docker build"))
    pushed = _index(steps, lambda s: s.get("run", "").startswith(".tools/deploy/bin/eksflow image verify")
                    and "--allow-missing" not in s["run"])  # fmt: skip
    assert existing < build < pushed
    assert steps[existing]["id"] == "existing" and "if" not in steps[existing], "never skipped"
    assert '--outputs "$GITHUB_OUTPUT"' in steps[existing]["run"]
    assert "$GITHUB_STEP_SUMMARY" in steps[pushed]["run"], "the pushed digest goes to the job summary"
    for step in steps[existing + 1 : pushed + 1]:
        assert step["if"] == "steps.existing.outputs.exists != 'true'", step.get("name")
    assert "docker push" in steps[build]["run"] and not any("docker tag" in s.get("run", "") for s in steps)


def test_a_version_tag_builds_nothing_and_tags_the_verified_manifest_from_its_environment():
    job = _load("image.yml")["jobs"]["release-tag"]
    steps = _steps(job)
    assert job["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert job["environment"] == "image-release", "its role (github_image_tag_role_arn) trusts this environment"
    assert not any("docker" in step.get("run", "") for step in steps)
    revision = _index(steps, _runs(steps, "check-revision --on origin/main"))
    credentials = _index(steps, _uses("aws-actions/configure-aws-credentials"))
    retag = _index(steps, _runs(steps, "eksflow image retag"))
    assert revision == 1 and revision < credentials < retag, "first the commit, then credentials, then the tag"
    assert steps[0]["with"]["fetch-depth"] == 0, "git must see main's history"
    assert steps[credentials]["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
    assert steps[retag]["env"]["COMMIT"] == f"${{{{ steps.{steps[revision]['id']}.outputs.commit }}}}"


def test_deploy_runs_each_stage_in_its_own_environment_with_that_environments_role():
    jobs = _load("deploy.yml")["jobs"]
    assert {name: job["environment"] for name, job in jobs.items()} == {
        "plan": "${{ inputs.environment }}-plan",
        "infra": "${{ inputs.environment }}-infra",
        "release": "${{ inputs.environment }}",
    }
    assert jobs["release"]["needs"] == "infra" and jobs["infra"]["needs"] == "plan"
    for name, job in jobs.items():
        (credentials,) = [s for s in _steps(job) if _uses("aws-actions/configure-aws-credentials")(s)]
        assert credentials["with"]["role-to-assume"] == "${{ inputs.role-to-assume }}", name
        (setup,) = [s for s in job["steps"] if s.get("uses") == "./.github/actions/setup-deploy"]
        assert setup["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}", name
    runs = {name: " ".join(step.get("run", "") for step in job["steps"]) for name, job in jobs.items()}
    assert "make deploy STAGE=infra AUTO_APPROVE=1" in runs["infra"]
    assert "make deploy STAGE=release" in runs["release"]
    assert "apply" not in runs["plan"]


@pytest.mark.parametrize("name", ["plan", "infra", "release"])
def test_every_deploy_job_first_refuses_a_commit_not_on_main(name):
    steps = _steps(_load("deploy.yml")["jobs"][name])
    assert steps[0]["uses"].startswith("actions/checkout@") and steps[0]["with"]["fetch-depth"] == 0
    assert steps[1]["run"] == 'PYTHONPATH=src python3 -m eksflow.cli check-revision --on origin/main "$GITHUB_SHA"'


@pytest.mark.parametrize(("workflow", "job"), [("deploy.yml", "plan"), ("deploy.yml", "infra"),
                                               ("deploy.yml", "release"), ("image.yml", "build-push"),
                                               ("image.yml", "release-tag"),
                                               ("job-release.yml", "release")])  # fmt: skip
def test_deploy_and_image_jobs_install_only_the_hash_pinned_tools_before_any_credential(workflow, job):
    """Issue 12 row 5: deploy jobs installed the scanners (~97 unpinned packages) with prod credentials set."""
    steps = _steps(_load(workflow)["jobs"][job])
    runs = [step.get("run", "") for step in steps]
    installs = [i for i, run in enumerate(runs) if re.search(r"\bmake [^\n]*\b(deploy-tools|deploy-venv)\b", run)]
    credentials = _index(steps, _uses("aws-actions/configure-aws-credentials"))
    assert len(installs) == 1 and installs[0] < credentials
    for run in runs:
        for invocation in re.findall(r"\bmake ([^\n;&|]*)", run):
            targets = {word for word in invocation.split() if "=" not in word and not word.startswith("-")}
            assert targets <= {"deploy", "deploy-tools", "deploy-venv"}, run  # not tools (scanners), venv (Airflow)
        assert not re.search(r"\bpip3? install|\buv pip|\bnpm\b|curl |wget ", run), run


def test_the_release_runs_where_the_clusters_private_endpoint_answers():
    runs_on = _load("deploy.yml")["jobs"]["release"]["runs-on"]
    assert runs_on == "${{ vars[format('DEPLOY_RUNNER_{0}', inputs.environment)] || 'ubuntu-24.04' }}"
    assert _load("deploy.yml")["jobs"]["infra"]["runs-on"] == "ubuntu-24.04", "Terraform needs AWS APIs only"
    readme = (GITHUB.parent / "terraform" / "README.md").read_text()
    assert "DEPLOY_RUNNER_PROD" in readme


def test_the_plan_job_summary_shows_what_changes_not_the_values():
    """Issue 12 row 17: the plan's values stay in the job log; the summary gets `eksflow plan-summary`."""
    (step,) = [s for s in _load("deploy.yml")["jobs"]["plan"]["steps"] if "terraform" in s.get("run", "")]
    writes = [line for line in step["run"].splitlines() if "GITHUB_STEP_SUMMARY" in line]
    assert writes == ['.tools/deploy/bin/eksflow plan-summary plan.json >> "$GITHUB_STEP_SUMMARY"'], writes
    assert "show -json tfplan > plan.json" in step["run"]


def test_a_job_release_is_a_reusable_workflow_run_in_the_callers_environment_with_its_role():
    """A job repository calls it (workflow_call); its GitHub environment's AWS_ROLE_ARN is the job's release role."""
    workflow = _load("job-release.yml")
    assert set(workflow[True]) == {"workflow_call"}
    inputs = workflow[True]["workflow_call"]["inputs"]
    assert {name for name, spec in inputs.items() if spec.get("required")} == {
        "job", "environment", "platform-repository", "platform-ref",
    }  # fmt: skip
    (job,) = workflow["jobs"].values()
    assert job["environment"] == "${{ inputs.environment }}"
    (credentials,) = [s for s in job["steps"] if _uses("aws-actions/configure-aws-credentials")(s)]
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
    assert credentials["with"]["aws-region"] == "${{ vars.AWS_REGION }}"


def test_a_private_platform_repository_is_checked_out_with_the_optional_platform_token():
    """The caller's GITHUB_TOKEN cannot read a private platform repository: an optional secret can."""
    workflow = _load("job-release.yml")
    secrets = workflow[True]["workflow_call"]["secrets"]
    assert set(secrets) == {"platform-token"} and secrets["platform-token"]["required"] is False
    steps = workflow["jobs"]["release"]["steps"]
    (platform,) = [s for s in steps if _uses("actions/checkout")(s) and s["with"].get("repository")]
    assert platform["with"]["token"] == "${{ secrets.platform-token || github.token }}"
    (job,) = [s for s in steps if _uses("actions/checkout")(s) and not s["with"].get("repository")]
    assert "token" not in job["with"], "the job repository is read with the caller's own token"


def test_a_job_release_builds_before_any_credential_and_releases_from_the_pinned_platform_commit():
    """The job repository's Dockerfile runs without AWS credentials; the release command comes from the platform
    commit the caller pins (checked to be a full SHA before anything else), in its hash-pinned deploy venv."""
    steps = _load("job-release.yml")["jobs"]["release"]["steps"]
    pinned = _index(steps, _runs(steps, "PLATFORM_REF"))
    checkouts = [i for i, step in enumerate(steps) if _uses("actions/checkout")(step)]
    build = _index(steps, _runs(steps, "docker buildx build"))
    credentials = _index(steps, _uses("aws-actions/configure-aws-credentials"))
    release = _index(steps, _runs(steps, "eksflow job release"))
    assert pinned == 0 and pinned < checkouts[0] and max(checkouts) < build < credentials < release
    assert steps[pinned]["env"]["PLATFORM_REF"] == "${{ inputs.platform-ref }}"
    (platform,) = [steps[i] for i in checkouts if steps[i]["with"].get("repository")]
    assert platform["with"]["ref"] == "${{ inputs.platform-ref }}" and platform["with"]["path"] == "platform"
    assert all(steps[i]["with"]["persist-credentials"] is False for i in checkouts)
    build_run = steps[build]["run"]
    for flag in ("--provenance=false", "--sbom=false", "--platform linux/amd64",
                 "type=oci,dest=${RUNNER_TEMP}/image.tar",
                 '--label "org.opencontainers.image.revision=${GITHUB_SHA}"'):  # fmt: skip
        assert flag in build_run, flag
    run = steps[release]["run"]
    assert run.startswith("platform/.tools/deploy/bin/eksflow job release")
    assert '--git-sha "$GITHUB_SHA"' in run and '--image "${RUNNER_TEMP}/image.tar"' in run
    assert '--outputs "$GITHUB_OUTPUT"' in run and '--summary "$GITHUB_STEP_SUMMARY"' in run
    assert steps[release]["env"] == {"JOB": "${{ inputs.job }}", "EKSFLOW_ENV": "${{ inputs.environment }}"}

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


def test_the_three_workflows_exist():
    assert {f.name for f in FILES} == {"ci.yml", "image.yml", "deploy.yml"}


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


def test_image_pushes_to_the_role_model_repository_via_oidc():
    image = _load("image.yml")
    job = image["jobs"]["build-push"]
    assert job["env"]["REPOSITORY"] == ecr_repository_name()
    assert image[True]["push"] == {"branches": ["main"], "tags": ["v*.*.*"]}
    assert "vars.AWS_IMAGE_PUSH_ROLE_ARN" in yaml.safe_dump(job)


def test_deploy_is_approved_per_stage_and_runs_make_deploy():
    jobs = _load("deploy.yml")["jobs"]
    assert jobs["infra"]["environment"] == "${{ inputs.environment }}-infra"
    assert jobs["release"]["environment"] == "${{ inputs.environment }}"
    assert jobs["release"]["needs"] == "infra" and jobs["infra"]["needs"] == "plan"
    runs = {name: " ".join(step.get("run", "") for step in job["steps"]) for name, job in jobs.items()}
    assert "make tools deploy STAGE=infra AUTO_APPROVE=1" in runs["infra"]
    assert "make tools deploy STAGE=release" in runs["release"]
    assert "apply" not in runs["plan"]


def test_the_plan_job_summary_shows_what_changes_not_the_values():
    """Issue 12 row 17: the plan's values stay in the job log; the summary gets `eksflow plan-summary`."""
    (step,) = [s for s in _load("deploy.yml")["jobs"]["plan"]["steps"] if "terraform" in s.get("run", "")]
    writes = [line for line in step["run"].splitlines() if "GITHUB_STEP_SUMMARY" in line]
    assert writes == ['.venv/bin/eksflow plan-summary plan.json >> "$GITHUB_STEP_SUMMARY"'], writes
    assert "show -json tfplan > plan.json" in step["run"]

"""The run steps of the deploy, image and job-release workflows executed as a GitHub runner executes them (`bash -eo
pipefail`, the step's env with its expressions filled in, its working-directory, GITHUB_OUTPUT/GITHUB_STEP_SUMMARY
files) in a git checkout, against the emulator's ECR (and for a job release its ECS and SQS): the commands in the
YAML are the ones the CLI tests prove.

Stand-ins, because no emulator exists for them: `docker build`/`docker push` (the image is pushed through ECR's
layer API, tests/support/ecr.py), `docker buildx build --output type=oci` (the OCI layout it writes,
tests/support/releases.py) and the deploy venv's `eksflow` (a shim running this checkout's CLI; the venv itself:
tests/test_deploy_venv.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from eksflow.platform import ecr_repository_name
from tests.support.ecr import REVISION_LABEL, aws_env, push_image

REPO = Path(__file__).resolve().parents[1]
REPOSITORY = ecr_repository_name()
WORKFLOWS = REPO / ".github" / "workflows"
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True).stdout


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> dict:
    """A clone as actions/checkout with fetch-depth: 0 makes it: main (merged) and a branch (unreviewed), a release
    tag on each; this checkout's src/ and a shim for the deploy venv's eksflow in it."""
    origin = tmp_path_factory.mktemp("origin")
    git(origin, "init", "-q", "-b", "main")
    git(origin, "commit", "-q", "--allow-empty", "-m", "merged")
    merged = git(origin, "rev-parse", "HEAD").strip()
    git(origin, "tag", "-a", "v1.2.0", "-m", "release")
    git(origin, "checkout", "-q", "-b", "feature")
    git(origin, "commit", "-q", "--allow-empty", "-m", "unreviewed")
    unreviewed = git(origin, "rev-parse", "HEAD").strip()
    git(origin, "tag", "-a", "v6.6.6", "-m", "release from a branch")
    work = tmp_path_factory.mktemp("checkout") / "repo"
    subprocess.run(["git", "clone", "-q", f"file://{origin}", str(work)], check=True, env={**os.environ, **GIT_ENV})
    (work / "src").symlink_to(REPO / "src")
    deploy_venv_shim(work)
    return {"path": work, "merged": merged, "unreviewed": unreviewed}


def deploy_venv_shim(platform: Path) -> None:
    """What `make deploy-venv` leaves in a platform checkout: .tools/deploy/bin/eksflow (here: this checkout's CLI)."""
    shim = platform / ".tools" / "deploy" / "bin" / "eksflow"
    shim.parent.mkdir(parents=True)
    shim.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO / "src"}" exec "{sys.executable}" -m eksflow.cli "$@"\n')
    shim.chmod(0o755)


def step(workflow: str, job: str, name: str) -> dict:
    (found,) = [s for s in yaml.safe_load((WORKFLOWS / workflow).read_text())["jobs"][job]["steps"]
                if s.get("name", "").startswith(name)]  # fmt: skip
    return found


def run_step(found: dict, cwd: Path, tmp_path: Path, context: dict[str, str], env: dict | None = None):
    """The step as the runner runs it; returns (result, outputs written, summary written)."""
    outputs, summary = tmp_path / "github_output", tmp_path / "github_step_summary"
    for path in (outputs, summary):
        path.write_text("")

    def expression(match: re.Match) -> str:
        return context[match[1]]  # a KeyError: the test did not say what GitHub would put there

    step_env = {
        key: re.sub(r"\$\{\{\s*(.+?)\s*\}\}", expression, str(value)) for key, value in found.get("env", {}).items()
    }
    full_env = {**(env or os.environ), **GIT_ENV, **step_env, "GITHUB_OUTPUT": str(outputs),
                "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_SHA": context["github.sha"]}  # fmt: skip
    command = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", found["run"]]
    cwd = cwd / found.get("working-directory", "")
    result = subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120, check=False)
    return result, outputs.read_text(), summary.read_text()


@pytest.mark.parametrize("job", ["plan", "infra", "release"])
def test_each_deploy_jobs_first_step_passes_main_and_stops_a_branch(checkout, tmp_path, job):
    found = step("deploy.yml", job, "Refuse a commit that is not on main")
    passed, _, _ = run_step(found, checkout["path"], tmp_path, {"github.sha": checkout["merged"]})
    assert passed.returncode == 0, passed.stderr
    stopped, _, _ = run_step(found, checkout["path"], tmp_path, {"github.sha": checkout["unreviewed"]})
    assert stopped.returncode == 1 and "is not on origin/main" in stopped.stderr


def test_on_main_a_missing_image_is_built_and_the_pushed_one_verified_into_the_summary(
    checkout, ecr_emulator, ecr, tmp_path
):
    sha, env, work = checkout["merged"], aws_env(ecr_emulator.url), checkout["path"]
    context = {"github.sha": sha}
    existing, outputs, _ = run_step(step("image.yml", "build-push", "An existing :<sha>"), work, tmp_path, context, env)
    assert existing.returncode == 0, existing.stderr
    assert outputs == "exists=false\n", "the build and push steps run (their if: exists != 'true')"
    digest = push_image(ecr, sha, {REVISION_LABEL: sha})  # docker build --build-arg REVISION=$GITHUB_SHA; docker push
    verify = step("image.yml", "build-push", "Verify the pushed image")
    pushed, _, summary = run_step(verify, work, tmp_path, context, env)
    assert pushed.returncode == 0, pushed.stderr
    assert f"`{digest}`" in summary


def test_on_main_a_sha_tag_someone_else_pushed_fails_the_job(checkout, ecr_emulator, ecr, tmp_path):
    sha = checkout["merged"]
    push_image(ecr, sha, {REVISION_LABEL: checkout["unreviewed"]})  # a branch build squatting main's SHA
    found = step("image.yml", "build-push", "An existing :<sha>")
    result, outputs, _ = run_step(found, checkout["path"], tmp_path, {"github.sha": sha}, aws_env(ecr_emulator.url))
    assert result.returncode == 1
    assert f"revision label {REVISION_LABEL}={checkout['unreviewed']}, not {sha}" in result.stderr
    assert outputs == ""


def test_a_release_tag_on_main_tags_the_verified_image_and_one_on_a_branch_stops_first(
    checkout, ecr_emulator, ecr, tmp_path
):
    merged, env = checkout["merged"], aws_env(ecr_emulator.url)
    digest = push_image(ecr, merged, {REVISION_LABEL: merged})
    revision_step = step("image.yml", "release-tag", "Refuse a tag on a commit that is not on main")
    tag_object = git(checkout["path"], "rev-parse", "v1.2.0").strip()
    checked, outputs, _ = run_step(revision_step, checkout["path"], tmp_path, {"github.sha": tag_object}, env)
    assert checked.returncode == 0, checked.stderr
    assert outputs == f"commit={merged}\n"
    context = {
        "github.sha": tag_object,
        "github.ref_name": "v1.2.0",
        f"steps.{revision_step['id']}.outputs.commit": merged,
    }
    retag_step = step("image.yml", "release-tag", "Put the version tag")
    tagged, _, summary = run_step(retag_step, checkout["path"], tmp_path, context, env)
    assert tagged.returncode == 0, tagged.stderr
    (released,) = ecr.describe_images(repositoryName=REPOSITORY, imageIds=[{"imageTag": "1.2.0"}])["imageDetails"]
    assert released["imageDigest"] == digest
    assert "Image released" in summary
    branch_tag = git(checkout["path"], "rev-parse", "v6.6.6").strip()
    refused, outputs, _ = run_step(revision_step, checkout["path"], tmp_path, {"github.sha": branch_tag}, env)
    assert refused.returncode == 1 and outputs == ""


JOB_SHA = "0123456789abcdef0123456789abcdef01234567"  # the job repository's commit (GITHUB_SHA in its workflow)


@pytest.mark.parametrize(("ref", "passes"), [(JOB_SHA, True), ("main", False), ("v1.2.0", False), ("", False)])
def test_a_job_release_runs_the_platform_only_from_a_full_commit_sha(tmp_path, ref, passes):
    found = step("job-release.yml", "release", "The platform commit must be a full SHA")
    result, _, _ = run_step(found, tmp_path, tmp_path, {"github.sha": JOB_SHA, "inputs.platform-ref": ref})
    assert (result.returncode == 0) == passes, result.stdout + result.stderr
    if not passes:
        assert f"::error::platform-ref '{ref}' is not a full commit SHA" in result.stdout


def test_a_job_releases_release_step_pushes_registers_and_announces_the_built_image(fresh_emulator, tmp_path):
    """The workspace as the job's steps leave it: the job repository in job/, the platform commit in platform/ with
    its deploy venv, the image buildx wrote in $RUNNER_TEMP/image.tar; the environment's role's credentials."""
    from eksflow.releases import release_from_payload
    from tests.support.releases import ENV, built_image, release_messages

    workspace, runner_temp = tmp_path / "workspace", tmp_path / "runner-temp"
    deploy_venv_shim(workspace / "platform")
    runner_temp.mkdir()
    built_image(runner_temp / "image", JOB_SHA, tar=True)  # docker buildx build --output type=oci,dest=image.tar
    found = step("job-release.yml", "release", "Release (push under the git SHA")
    context = {"github.sha": JOB_SHA, "inputs.job": "etl-step", "inputs.environment": ENV}
    env = {**aws_env(fresh_emulator.url), "RUNNER_TEMP": str(runner_temp)}
    result, outputs, summary = run_step(found, workspace, tmp_path, context, env)
    assert result.returncode == 0, result.stderr
    written = dict(line.split("=", 1) for line in outputs.splitlines())
    ecs = fresh_emulator.client("ecs")
    latest = ecs.describe_task_definition(taskDefinition=f"eksflow-{ENV}-etl-step")["taskDefinition"]
    assert written["task_definition_arn"] == latest["taskDefinitionArn"]
    assert latest["containerDefinitions"][0]["image"] == written["image"]
    assert f"| `{written['image']}` | `{JOB_SHA}` | `{latest['taskDefinitionArn']}` |" in summary
    (body,) = release_messages(fresh_emulator.client("sqs"))
    assert release_from_payload(body, env=ENV).image == written["image"]

"""The deploy tools' venv (issue 12 row 5): `make deploy-venv` — what the deploy and image jobs run before any AWS
credential exists — installs exactly requirements-deploy.lock with --require-hashes (a wrong hash stops it), the
lock is what `make lock` derives from requirements.lock, and every command those jobs run works from that venv,
which holds neither Airflow nor moto nor a scanner.

Built for real: the Python's own pip downloads the locked wheels from the package index (PyPI; ~15 s, reachable
here and in CI). uv's cache would serve them offline, but then the test would not run the installer the jobs run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from eksflow.platform import ecr_repository_name
from tests.conftest import running_emulator
from tests.support.ecr import REVISION_LABEL, aws_env, create_repository, push_image
from tests.support.terraform_outputs import terraform_outputs

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements-deploy.lock"
# What a venv has before anything is installed (ensurepip), and what must never be in the deploy venv.
BOOTSTRAP = {"pip", "setuptools"}
# The checkout itself, on the venv's path by design (eksflow-checkout.pth): pip lists it where `make venv` left its
# metadata in src/ (src/eksflow.egg-info).
CHECKOUT = {"eksflow"}
NEVER = {"apache-airflow", "apache-airflow-core", "moto", "checkov", "pytest", "sqlalchemy", "kubernetes"}


def make(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = ["make", "--no-print-directory", "-C", str(REPO), f"VENV={sys.prefix}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, env=env)


def locked() -> dict[str, str]:
    return dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+)", LOCK.read_text(), re.MULTILINE))


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("deploy-tools") / "deploy"
    result = make("deploy-venv", f"DEPLOY_VENV={path}")
    assert result.returncode == 0, result.stdout + result.stderr
    return path


def run(venv: Path, *args: str, cwd: Path = REPO, env: dict | None = None, stdin: str | None = None):
    return subprocess.run(
        [str(venv / "bin" / "eksflow"), *args],
        capture_output=True, text=True, timeout=120, check=False, cwd=cwd, env=env, input=stdin,
    )  # fmt: skip


def test_the_lock_is_what_make_lock_derives_from_requirements_lock(tmp_path):
    fresh = tmp_path / "requirements-deploy.lock"
    result = make("lock-deploy", f"DEPLOY_LOCK={fresh}")
    assert result.returncode == 0, result.stderr
    assert fresh.read_text() == LOCK.read_text(), "requirements-deploy.lock is stale: run `make lock`"
    pins = dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==([^\s;]+)", (REPO / "requirements.lock").read_text(), re.M))
    assert all(pins[name] == version for name, version in locked().items()), "one home for versions"


def test_every_locked_file_carries_a_hash():
    entries = re.split(r"\n(?=[a-z])", LOCK.read_text().split("\n", 2)[2])
    assert len(entries) == len(locked()) >= 5
    for entry in entries:
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), entry.splitlines()[0]


def test_the_venv_holds_exactly_the_locked_packages_and_nothing_of_airflow(venv):
    listing = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    installed = {item["name"].lower(): item["version"] for item in json.loads(listing.stdout)}
    assert {name: installed[name] for name in installed.keys() - BOOTSTRAP - CHECKOUT} == locked()
    assert not NEVER & installed.keys()


def test_a_file_whose_hash_is_not_the_locked_one_is_refused(tmp_path):
    text = LOCK.read_text()
    six = re.search(r"^six==.*?(?=^\S)", text, re.MULTILINE | re.DOTALL)[0]
    tampered = tmp_path / "requirements-deploy.lock"
    tampered.write_text(text.replace(six, re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, six)))
    result = make("deploy-venv", f"DEPLOY_VENV={tmp_path / 'deploy'}", f"DEPLOY_LOCK={tampered}")
    assert result.returncode != 0
    assert "DO NOT MATCH THE HASHES" in result.stderr, result.stderr


def test_deploy_dry_run_plan_summary_and_chart_values_run_from_the_venv(venv, tmp_path):
    sha = "0123456789abcdef0123456789abcdef01234567"
    dry_run = run(venv, "deploy", "--env", "prod", "--image-tag", sha, "--dry-run")
    assert dry_run.returncode == 0, dry_run.stderr
    assert f"eksflow image verify {sha} --region <output region>" in dry_run.stdout
    plan = {"resource_changes": [{"address": "aws_s3_bucket.logs", "change": {"actions": ["create"]}}]}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    summary = run(venv, "plan-summary", str(tmp_path / "plan.json"))
    assert summary.returncode == 0 and "aws_s3_bucket.logs" in summary.stdout, summary.stderr
    values = run(venv, "chart-values", stdin=json.dumps(terraform_outputs()))
    assert values.returncode == 0 and "eksflow-prod-logs" in values.stdout, values.stderr


def test_check_revision_runs_from_the_venv(venv, tmp_path):
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "first"]):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, env=env)
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    result = run(venv, "check-revision", "--on", "main", head.strip(), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"commit {head.strip()} is on main\n"


def test_image_verify_and_retag_run_from_the_venv_against_ecr(venv, tmp_path):
    sha = "89abcdef0123456789abcdef0123456789abcdef"
    with running_emulator(tmp_path / "emulator", seeded=False) as emulator:
        ecr = emulator.client("ecr")
        create_repository(ecr)
        digest = push_image(ecr, sha, {REVISION_LABEL: sha})
        env = aws_env(emulator.url)
        verified = run(venv, "image", "verify", sha, env=env)
        released = run(venv, "image", "retag", sha, "v2.0.1", env=env)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout == f"verified {ecr_repository_name()}:{sha} = {digest} (revision label {sha})\n"
    assert released.returncode == 0, released.stderr
    assert released.stdout == f"{ecr_repository_name()}:2.0.1 = {digest} (tagged now)\n"


def test_a_job_release_runs_from_the_venv_against_the_emulator(venv, tmp_path):
    """What a job repository's release workflow runs (.github/workflows/job-release.yml): the venv has what the push,
    the revision and the announcement import (no Airflow)."""
    from tests.support.releases import ENV, built_image

    sha = "89abcdef0123456789abcdef0123456789abcdef"
    image = built_image(tmp_path / "image", sha, tar=True)
    with running_emulator(tmp_path / "emulator") as emulator:  # seeded: the job's repository, family and queue
        released = run(venv, "job", "release", "--env", ENV, "--job", "etl-step", "--image", str(image),
                       "--git-sha", sha, env=aws_env(emulator.url))  # fmt: skip
        latest = emulator.client("ecs").describe_task_definition(taskDefinition=f"eksflow-{ENV}-etl-step")
    assert released.returncode == 0, released.stderr
    image_uri = latest["taskDefinition"]["containerDefinitions"][0]["image"]
    assert released.stdout.endswith(f"released job etl-step to {ENV}: {image_uri}\n")

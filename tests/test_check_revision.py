"""`eksflow check-revision`, the first step of every deploy job and of the image-release job, against real git
repositories cloned as actions/checkout clones them: a commit on main (or a tag on one) passes and is printed; a
commit of another branch, a tag on one, or a commit the clone does not know is refused; a shallow clone or one
without origin/main cannot tell and says how to fetch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=GIT_ENV, check=True)
    return result.stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "commit", "--allow-empty", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> dict[str, str]:
    """main: first → merged; feature (not merged): unreviewed; annotated tags on merged and on unreviewed."""
    repo = tmp_path_factory.mktemp("origin")
    git(repo, "init", "-q", "-b", "main")
    shas = {"first": commit(repo, "first"), "merged": commit(repo, "merged")}
    git(repo, "checkout", "-q", "-b", "feature")
    shas["unreviewed"] = commit(repo, "unreviewed")
    git(repo, "tag", "-a", "v9.9.9", "-m", "release from a branch")
    git(repo, "checkout", "-q", "main")
    git(repo, "tag", "-a", "v1.0.0", shas["merged"], "-m", "release")
    shas["tag-on-main"] = git(repo, "rev-parse", "v1.0.0")
    shas["tag-on-branch"] = git(repo, "rev-parse", "v9.9.9")
    shas["path"] = str(repo)
    return shas


def clone(origin: dict[str, str], target: Path, *args: str) -> Path:
    """As actions/checkout with fetch-depth: 0 (every branch as origin/*, tags) or with a depth."""
    subprocess.run(
        ["git", "clone", "-q", *args, f"file://{origin['path']}", str(target)], env=GIT_ENV, check=True, timeout=60
    )
    return target


@pytest.fixture(scope="module")
def checkout(origin, tmp_path_factory) -> Path:
    return clone(origin, tmp_path_factory.mktemp("checkout") / "repo")


def check(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "eksflow.cli", "check-revision", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, cwd=cwd, env=GIT_ENV)


@pytest.mark.parametrize(("name", "on_main"), [("merged", "merged"), ("first", "first"), ("tag-on-main", "merged")])
def test_a_commit_on_main_passes_and_is_printed_as_the_commit(origin, checkout, tmp_path, name, on_main):
    outputs = tmp_path / "outputs"
    result = check(checkout, origin[name], "--outputs", str(outputs))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"commit {origin[on_main]} is on origin/main\n"
    assert outputs.read_text() == f"commit={origin[on_main]}\n", "a tag object is peeled to the commit it tags"


@pytest.mark.parametrize("name", ["unreviewed", "tag-on-branch"])
def test_a_commit_of_another_branch_is_refused(origin, checkout, tmp_path, name):
    """Issue 12 row 4: the deploy shipped github.sha from any branch; a v* tag on any commit ran the push role."""
    outputs = tmp_path / "outputs"
    result = check(checkout, origin[name], "--outputs", str(outputs))
    assert result.returncode == 1
    assert f"eksflow: refused: commit {origin['unreviewed']} is not on origin/main (tip {origin['merged']})" in (
        result.stderr
    )
    assert not outputs.exists()


def test_a_commit_the_clone_does_not_know_is_refused(checkout):
    result = check(checkout, "f" * 40)
    assert result.returncode == 1
    assert f"{'f' * 40} is not a commit of this repository's history" in result.stderr


def test_a_shallow_clone_cannot_tell_and_says_how_to_fetch(origin, tmp_path):
    shallow = clone(origin, tmp_path / "shallow", "--depth", "1", "--no-single-branch")
    result = check(shallow, origin["merged"])
    assert result.returncode == 2
    assert "the checkout is shallow" in result.stderr and "fetch-depth: 0" in result.stderr


def test_a_clone_without_the_branch_says_how_to_fetch(origin, checkout):
    result = check(checkout, origin["merged"], "--on", "origin/release")
    assert result.returncode == 2
    assert "origin/release is not in this checkout" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("0123abc",), "revision '0123abc' is not a full commit SHA"),
        (("--", "-" + "a" * 39), "is not a full commit SHA"),
        (("a" * 40, "--on", "origin/main..feature"), "--on 'origin/main..feature' is not a branch name"),
        (("a" * 40, "--on=--all"), "--on '--all' is not a branch name"),
    ],
    ids=["short-sha", "option-like", "range", "option-as-branch"],
)
def test_bad_input_is_refused_naming_it(checkout, args, message):
    result = check(checkout, *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_outside_a_checkout_it_says_so(tmp_path):
    result = check(tmp_path, "a" * 40)
    assert result.returncode == 2
    assert "is not a git checkout" in result.stderr

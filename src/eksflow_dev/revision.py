"""``eksflow check-revision``: is a commit on main? The deploy and image-release jobs ask before anything else, so
that a workflow started on another branch, or a version tag on an unreviewed commit, stops there. Answered by git
itself (``merge-base --is-ancestor``) in the job's checkout, which must hold the history (``fetch-depth: 0``)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

COMMIT_RE = re.compile(r"[0-9a-f]{40}")
HISTORY_HINT = "fetch the history first (actions/checkout with fetch-depth: 0, or `git fetch --unshallow origin`)"


class RevisionRefused(RuntimeError):
    """The revision is not on the branch: the job must stop."""


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False, timeout=60)


def _commit(repo: Path, name: str) -> str | None:
    found = _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{name}^{{commit}}")
    return found.stdout.strip() if found.returncode == 0 else None


def check_on(revision: str, branch: str = "origin/main", repo: Path = Path(".")) -> str:
    """The commit ``revision`` names (a tag object is peeled to its commit) when that commit is ``branch``'s tip or
    one of its ancestors; ``RevisionRefused`` otherwise, ``ValueError`` for input or a checkout that cannot tell."""
    if not COMMIT_RE.fullmatch(revision):
        raise ValueError(f"revision {revision!r} is not a full commit SHA (40 lowercase hex digits), e.g. $GITHUB_SHA")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]*", branch) or ".." in branch:
        raise ValueError(f"--on {branch!r} is not a branch name, e.g. origin/main")
    inside = _git(repo, "rev-parse", "--is-shallow-repository")
    if inside.returncode != 0:
        raise ValueError(f"{repo.resolve()} is not a git checkout: run it in the repository's checkout")
    if inside.stdout.strip() == "true":
        raise ValueError(f"the checkout is shallow, so git cannot tell what is on {branch}: {HISTORY_HINT}")
    tip = _commit(repo, branch)
    if tip is None:
        raise ValueError(f"{branch} is not in this checkout: {HISTORY_HINT}")
    commit = _commit(repo, revision)
    if commit is None:
        raise RevisionRefused(f"{revision} is not a commit of this repository's history: {HISTORY_HINT}")
    if _git(repo, "merge-base", "--is-ancestor", commit, tip).returncode != 0:
        raise RevisionRefused(
            f"commit {commit} is not on {branch} (tip {tip}): only reviewed commits merged to main are deployed or "
            "released — merge it first, then run the workflow on main"
        )
    return commit

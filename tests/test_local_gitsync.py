"""The local cluster's DAG repository (eksflow_dev.cluster.dagsrepo) and git-sync emulation
(eksflow_dev.cluster.gitsync), run for real: publish an author's worktree, serve it over dumb HTTP, sync it."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from eksflow_dev.cluster import dagsrepo

GITSYNC = [sys.executable, "-m", "eksflow_dev.cluster.gitsync"]


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "a"}
    env["GIT_COMMITTER_EMAIL"] = "a@x"
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


def author_state(repo: Path) -> dict[str, str]:
    return {
        "HEAD": git(repo, "rev-parse", "HEAD"),
        "index": hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest(),
        "status": git(
            repo, "--no-optional-locks", "status", "--porcelain", "--untracked-files=all"
        ),  # no index refresh
        "refs": git(repo, "for-each-ref"),
        "objects": git(repo, "count-objects", "-v"),
    }


def wait_for(what: str, check: Callable[[], bool], proc: subprocess.Popen | None = None, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"git-sync exited ({proc.returncode}) while waiting for {what}: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {limit:.0f}s")
        time.sleep(0.1)


def link_hash(root: Path) -> str:
    link = root / "repo"
    return os.path.basename(os.readlink(link)) if link.is_symlink() else ""


@pytest.fixture
def author(tmp_path: Path) -> Path:
    """An author's repository: one commit, then an untracked new DAG file and an ignored file."""
    repo = tmp_path / "author"
    (repo / "dags").mkdir(parents=True)
    (repo / "dags" / "committed.py").write_text("A = 1\n")
    (repo / ".gitignore").write_text("*.pyc\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    (repo / "dags" / "draft.py").write_text("DRAFT = 1\n")
    (repo / "dags" / "cache.pyc").write_bytes(b"\0")
    return repo


@pytest.fixture
def served(author: Path, tmp_path: Path) -> Iterator[tuple[dagsrepo.DagsRepoServer, str]]:
    sha = dagsrepo.publish(author, tmp_path / "dags.git")
    with dagsrepo.serve(tmp_path / "dags.git") as server:
        yield server, sha


def gitsync_env(home: Path, repo: str, root: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "PYTHONDONTWRITEBYTECODE": "1",
        "GITSYNC_REPO": repo,
        "GITSYNC_REF": "main",
        "GITSYNC_DEPTH": "0",
        "GITSYNC_PERIOD": "1s",
        "GITSYNC_ROOT": str(root),
        "GITSYNC_LINK": "repo",
        "GITSYNC_ONE_TIME": "true",
    }
    return env | extra


def one_time(env: dict[str, str], prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, *GITSYNC], env=env, capture_output=True, text=True, timeout=60)


def test_one_time_sync_gets_the_authors_current_files_and_leaves_the_author_alone(author, tmp_path):
    before = author_state(author)
    sha = dagsrepo.publish(author, tmp_path / "dags.git")
    assert dagsrepo.publish(author, tmp_path / "dags.git") == sha, "nothing changed: no new commit"
    assert author_state(author) == before

    home, tmp = tmp_path / "home", tmp_path / "tmpdir"
    home.mkdir()
    tmp.mkdir()
    root = tmp_path / "git"
    with dagsrepo.serve(tmp_path / "dags.git") as server:
        done = one_time(gitsync_env(home, server.url, root, TMPDIR=str(tmp)))
    assert done.returncode == 0, done.stderr
    assert f'"remote": "{sha}"' in done.stderr and "updated successfully" in done.stderr

    assert link_hash(root) == sha
    assert os.readlink(root / "repo") == f".worktrees/{sha}", "relative, so the volume may be mounted anywhere"
    assert (root / "repo" / "dags" / "committed.py").read_text() == "A = 1\n"
    assert (root / "repo" / "dags" / "draft.py").read_text() == "DRAFT = 1\n", "uncommitted files are published"
    assert not (root / "repo" / "dags" / "cache.pyc").exists(), ".gitignore is honoured"
    assert (root / ".git").is_dir()
    assert git(root / "repo", "rev-parse", "HEAD").strip() == sha
    assert list(home.iterdir()) == [] and list(tmp.iterdir()) == [], "wrote outside GITSYNC_ROOT"


def test_continuous_sync_follows_a_new_publish_and_removes_the_old_worktree(author, served, tmp_path):
    server, first = served
    root = tmp_path / "git"
    env = gitsync_env(tmp_path, server.url, root, GITSYNC_ONE_TIME="false")
    proc = subprocess.Popen(GITSYNC, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for("first sync", lambda: link_hash(root) == first, proc)
        (author / "dags" / "committed.py").write_text("A = 2\n")
        second = dagsrepo.publish(author, tmp_path / "dags.git")
        assert second != first
        assert git(tmp_path / "dags.git", "rev-parse", f"{second}^").strip() == first, "published on top"
        wait_for("link moved to the second publish", lambda: link_hash(root) == second, proc)
        assert (root / "repo" / "dags" / "committed.py").read_text() == "A = 2\n"
        wait_for("old worktree removed", lambda: not (root / ".worktrees" / first).exists(), proc)
        assert sorted(p.name for p in (root / ".worktrees").iterdir()) == [second]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == -signal.SIGTERM, stderr  # killed by the signal, as the Go binary is
    assert first in stderr and second in stderr


def test_a_missing_ref_fails_a_one_time_sync_naming_the_ref(served, tmp_path):
    server, _ = served
    done = one_time(gitsync_env(tmp_path, server.url, tmp_path / "git", GITSYNC_REF="no-such-branch"))
    assert done.returncode != 0
    assert "GITSYNC_REF=no-such-branch" in done.stderr and "couldn't find remote ref no-such-branch" in done.stderr


def test_a_shallow_sync_from_dumb_http_fails_naming_gitsync_depth(served, tmp_path):
    server, _ = served
    done = one_time(gitsync_env(tmp_path, server.url, tmp_path / "git", GITSYNC_DEPTH="1"))
    assert done.returncode != 0
    assert "GITSYNC_DEPTH=1" in done.stderr and "dumb HTTP" in done.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [("GITSYNC_PERIOD", "10 seconds"), ("GITSYNC_PERIOD", "5ms"), ("GITSYNC_ONE_TIME", "yes"), ("GITSYNC_DEPTH", "x")],
)
def test_a_bad_value_is_fatal_and_names_the_variable(tmp_path, name, value):
    done = one_time(gitsync_env(tmp_path, "http://127.0.0.1:1/x.git", tmp_path / "git", **{name: value}))
    assert done.returncode == 1
    assert name in done.stderr, done.stderr
    assert not (tmp_path / "git").exists(), "nothing is done with a bad configuration"


def test_username_and_password_reach_the_server(author, tmp_path):
    dagsrepo.publish(author, tmp_path / "dags.git")
    with dagsrepo.serve(tmp_path / "dags.git", auth=("dagbot", "s3cret-token")) as server:
        good = one_time(
            gitsync_env(
                tmp_path, server.url, tmp_path / "ok", GITSYNC_USERNAME="dagbot", GITSYNC_PASSWORD="s3cret-token"
            )
        )
        wrong = one_time(
            gitsync_env(tmp_path, server.url, tmp_path / "bad", GITSYNC_USERNAME="dagbot", GITSYNC_PASSWORD="nope")
        )
        anonymous = one_time(gitsync_env(tmp_path, server.url, tmp_path / "anon"))
    assert good.returncode == 0, good.stderr
    assert (tmp_path / "ok" / "repo" / "dags" / "draft.py").is_file()
    assert "s3cret-token" not in good.stderr
    assert wrong.returncode != 0 and "Authentication failed" in wrong.stderr
    assert anonymous.returncode != 0


@pytest.fixture
def foreign_uid() -> Iterator[tuple[int, tuple[str, ...], Path]]:
    """A uid without an /etc/passwd entry, the setpriv prefix that runs as it, and a directory it may write."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("SKIPPED LOUDLY: running as a uid without a passwd entry needs root and setpriv (util-linux)")
    uid = next(u for u in range(54321, 54421) if not _has_passwd_entry(u))
    as_uid = (setpriv, f"--reuid={uid}", "--regid=0", "--clear-groups")
    probe = subprocess.run([*as_uid, sys.executable, "-c", "import eksflow_dev.cluster.gitsync"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"SKIPPED LOUDLY: uid {uid} cannot run {sys.executable}: {probe.stderr.decode().strip()}")
    shared = Path(tempfile.mkdtemp(prefix="eksflow-gitsync-uid-"))
    shared.chmod(0o777)
    try:
        yield uid, as_uid, shared
    finally:
        shutil.rmtree(shared)


def _has_passwd_entry(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


def test_a_uid_without_passwd_entry_syncs_over_http(served, foreign_uid):
    server, sha = served
    uid, as_uid, shared = foreign_uid
    root = shared / "git"
    done = one_time(gitsync_env(shared, server.url, root, TMPDIR=str(shared)), prefix=as_uid)
    assert done.returncode == 0, done.stderr
    assert link_hash(root) == sha
    assert (root / ".git").stat().st_uid == uid


def test_ssh_as_a_uid_without_passwd_entry_fails_as_real_ssh_does(foreign_uid):
    if shutil.which("ssh") is None:
        pytest.skip("SKIPPED LOUDLY: no ssh client (apt-get install -y openssh-client) to show the real failure")
    uid, as_uid, shared = foreign_uid
    (shared / "ssh-key").write_text("not a key\n")
    (shared / "known_hosts").write_text("")
    env = gitsync_env(
        shared,
        "ssh://git@127.0.0.1:1/x.git",
        shared / "git",
        GITSYNC_SSH_KEY_FILE=str(shared / "ssh-key"),
        GITSYNC_SSH_KNOWN_HOSTS="true",
        GITSYNC_SSH_KNOWN_HOSTS_FILE=str(shared / "known_hosts"),
        TMPDIR=str(shared),
    )
    done = one_time(env, prefix=as_uid)
    assert done.returncode != 0
    assert f"No user exists for uid {uid}" in done.stderr, done.stderr

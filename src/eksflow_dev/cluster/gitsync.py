"""An emulation of git-sync v4 (registry.k8s.io/git-sync/git-sync:v4.4.2) for the local cluster's node.

The node has no container images, so the chart's git-sync containers (the dag-processor and triggerer
sidecars, the workers' init container) run ``python -m eksflow_dev.cluster.gitsync`` with the container's
environment. It follows the contract documented by ``git-sync --man`` for v4.4.2, with git and ssh doing
the real work:

- Configuration from the environment: GITSYNC_REPO (required), GITSYNC_ROOT (required), GITSYNC_REF (branch,
  tag or commit hash; default HEAD, the remote's default branch), GITSYNC_DEPTH (default 1; 0 = full history,
  a shallow local repository is unshallowed), GITSYNC_SUBMODULES (recursive | shallow | off),
  GITSYNC_PERIOD and GITSYNC_SYNC_TIMEOUT (Go durations such as "10s", "1m30s"; at least 10ms; default 10s
  and 120s), GITSYNC_LINK (absolute or relative to the root; default: the last element of the repo URL),
  GITSYNC_ONE_TIME, GITSYNC_MAX_FAILURES (default 0: the first failed sync ends the process; negative:
  retry forever), GITSYNC_STALE_WORKTREE_TIMEOUT, GITSYNC_GIT_GC, GITSYNC_USERNAME with GITSYNC_PASSWORD or
  GITSYNC_PASSWORD_FILE (or credentials in an http(s) URL), GITSYNC_SSH_KEY_FILE (":"-separated, default
  /etc/git-secret/ssh), GITSYNC_SSH_KNOWN_HOSTS (default true), GITSYNC_SSH_KNOWN_HOSTS_FILE (default
  /etc/git-secret/known_hosts), GITSYNC_VERBOSE, GITSYNC_GIT. Values are parsed like Go does (ParseBool,
  ParseInt, ParseDuration); a bad value is fatal and the message names the variable.
- The root layout: the root is the git repository (ROOT/.git, ``git init -b git-sync``, remote "origin");
  each synced commit is a worktree ROOT/.worktrees/<hash> whose .git file is relative; the link is a
  relative symlink to the current worktree, swapped atomically (a new symlink ROOT/tmp-link renamed over
  it), so ``basename "$(readlink LINK)"`` is the synced hash. A root that is not a usable repository is
  emptied first.
- Each sync: ``git fetch <repo> <ref> --depth N``, ``FETCH_HEAD^{}``; a new hash gets a new worktree and
  the link moves; then stale worktrees are removed, worktrees pruned, reflogs expired and ``git gc --auto``
  run. A ref that is the synced hash itself stops further syncs (the process idles, like git-sync).
- Exit status: 0 after a one-time sync, 1 on a configuration error or after too many failed syncs; SIGTERM
  and SIGINT end the process (and the git command in flight) at once, by that signal, like the Go binary.
- git runs with a private global config created in $TMPDIR (safe.directory=*, core.askPass=true,
  gc.autoDetach=false, gc.pruneExpire=now) and no system config; HOME comes from the environment.
  Nothing is written outside the root and $TMPDIR, so a read-only root filesystem and any uid work.
- ssh: GIT_SSH_COMMAND is "ssh -i <key>... -o StrictHostKeyChecking=yes -o UserKnownHostsFile=<file>"
  (or StrictHostKeyChecking=no), running the real ssh client: as a uid without an /etc/passwd entry ssh
  fails with "No user exists for uid N", exactly as the real image does without GITSYNC_ADD_USER.
- Logs: JSON lines on stderr ("update required", "updated successfully" with the remote hash, errors with
  git's stderr), like git-sync's funcr logger; passwords are never logged.

Differences from real git-sync:

- Environment variables only: no command-line flags, --help, --man or --version; the deprecated v3 names
  (GIT_SYNC_*, GIT_SSH_KEY_FILE, ...) are ignored.
- Not emulated, and refused when set: webhooks (GITSYNC_WEBHOOK_URL), exechooks (GITSYNC_EXECHOOK_COMMAND),
  the HTTP endpoint (GITSYNC_HTTP_BIND: liveness, /metrics, pprof), GITSYNC_ADD_USER, GITSYNC_ASKPASS_URL,
  GITSYNC_COOKIE_FILE, GITSYNC_CREDENTIAL, GitHub app auth, GITSYNC_GIT_CONFIG, GITSYNC_GROUP_WRITE,
  GITSYNC_SPARSE_CHECKOUT_FILE, GITSYNC_SYNC_ON_SIGNAL, GITSYNC_TOUCH_FILE, GITSYNC_ERROR_FILE.
- Credentials reach git through a credential helper that reads them from this process's environment
  (scoped to the repo's scheme://host:port), instead of ``git credential approve`` into git's credential
  cache daemon: no daemon outlives the process and no socket is created under HOME.
- GITSYNC_SYNC_TIMEOUT bounds each git command by what is left of the sync instead of cancelling a Go
  context. Log lines carry no caller field; there are no Prometheus metrics.
- It needs the node's git, ssh (for ssh URLs) and this Python, all usable by the container's uid; the image's
  own binaries and its /etc/passwd (which has git-sync's uid 65533) are not there.
- A fetch with GITSYNC_DEPTH > 0 from a remote served over git's dumb HTTP protocol (as the local cluster's
  DAG repository, eksflow_dev.cluster.dagsrepo) fails with an error naming GITSYNC_DEPTH (git alone says
  "dumb http transport does not support shallow capabilities").
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

NOT_EMULATED = (
    "GITSYNC_WEBHOOK_URL",
    "GITSYNC_EXECHOOK_COMMAND",
    "GITSYNC_HTTP_BIND",
    "GITSYNC_ADD_USER",
    "GITSYNC_ASKPASS_URL",
    "GITSYNC_COOKIE_FILE",
    "GITSYNC_CREDENTIAL",
    "GITSYNC_GITHUB_APP_PRIVATE_KEY",
    "GITSYNC_GITHUB_APP_PRIVATE_KEY_FILE",
    "GITSYNC_GIT_CONFIG",
    "GITSYNC_GROUP_WRITE",
    "GITSYNC_SPARSE_CHECKOUT_FILE",
    "GITSYNC_SYNC_ON_SIGNAL",
    "GITSYNC_TOUCH_FILE",
    "GITSYNC_ERROR_FILE",
)
_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = r"([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)"
# The credential helper prints what this process put in its children's environment: no secret in argv or files.
_CREDENTIAL_HELPER = (
    "!f() { if test \"$1\" = get; then printf 'username=%s\\npassword=%s\\n' "
    '"$EKSFLOW_GITSYNC_USERNAME" "$EKSFLOW_GITSYNC_PASSWORD"; fi; }; f'
)


class ConfigError(Exception):
    """A bad environment variable; the message names it."""


class SyncError(Exception):
    """One sync attempt failed."""


class _Terminated(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def parse_duration(name: str, value: str) -> float:
    """Seconds of a Go duration ("300ms", "10s", "1h30m"), like time.ParseDuration."""
    text = value[1:] if value[:1] in "+-" else value
    if text == "0":
        return 0.0
    if not re.fullmatch(f"(?:{_DURATION_PART})+", text):
        raise ConfigError(
            f'invalid duration env {name}="{value}": expected a Go duration such as "10s", "1m" or "1h30m"'
        )
    seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in re.findall(_DURATION_PART, text))
    return -seconds if value.startswith("-") else seconds


def _format_duration(seconds: float) -> str:
    return f"{seconds:g}s"


@dataclass(frozen=True)
class Config:
    repo: str
    root: Path
    link_name: str
    ref: str = "HEAD"
    depth: int = 1
    submodules: str = "recursive"
    period: float = 10.0
    sync_timeout: float = 120.0
    one_time: bool = False
    max_failures: int = 0
    stale_worktree_timeout: float = 0.0
    git_gc: str = "auto"
    username: str = ""
    password: str = ""
    ssh_key_files: tuple[str, ...] = ("/etc/git-secret/ssh",)
    ssh_known_hosts: bool = True
    ssh_known_hosts_file: str = "/etc/git-secret/known_hosts"
    verbose: int = 0
    git: str = "git"

    @property
    def link(self) -> Path:
        return self.root / self.link_name  # an absolute GITSYNC_LINK replaces the root

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        def boolean(name: str, default: bool) -> bool:
            if name not in env:
                return default
            if env[name] in _GO_TRUE | _GO_FALSE:
                return env[name] in _GO_TRUE
            raise ConfigError(f'invalid bool env {name}="{env[name]}": use true or false')

        def integer(name: str, default: int) -> int:
            try:
                return int(env[name], 0) if name in env else default
            except ValueError:
                raise ConfigError(f'invalid int env {name}="{env[name]}": use a whole number') from None

        def duration(name: str, default: float) -> float:
            return parse_duration(name, env[name]) if name in env else default

        for name in NOT_EMULATED:
            if env.get(name, "") not in ("", *_GO_FALSE):
                raise ConfigError(f"{name} is set, but the git-sync emulation does not implement it: unset it")
        repo, root = env.get("GITSYNC_REPO", ""), env.get("GITSYNC_ROOT", "")
        if not repo:
            raise ConfigError("required: GITSYNC_REPO must be set to the git repository to sync")
        if not root:
            raise ConfigError("required: GITSYNC_ROOT must be set to the directory git-sync works in")
        ref = env.get("GITSYNC_REF", "HEAD")
        if not ref:
            raise ConfigError("required: GITSYNC_REF must not be empty (a branch, tag or commit hash; HEAD by default)")
        depth = integer("GITSYNC_DEPTH", 1)
        if depth < 0:
            raise ConfigError(f"invalid env GITSYNC_DEPTH={depth}: must be 0 (full history) or more")
        submodules = env.get("GITSYNC_SUBMODULES", "recursive")
        if submodules not in ("recursive", "shallow", "off"):
            raise ConfigError(f'invalid env GITSYNC_SUBMODULES="{submodules}": use recursive, shallow or off')
        git_gc = env.get("GITSYNC_GIT_GC", "auto")
        if git_gc not in ("auto", "always", "aggressive", "off"):
            raise ConfigError(f'invalid env GITSYNC_GIT_GC="{git_gc}": use auto, always, aggressive or off')
        period, sync_timeout = duration("GITSYNC_PERIOD", 10.0), duration("GITSYNC_SYNC_TIMEOUT", 120.0)
        for name, value in (("GITSYNC_PERIOD", period), ("GITSYNC_SYNC_TIMEOUT", sync_timeout)):
            if value < 0.01:
                raise ConfigError(f'invalid env {name}="{env[name]}": must be at least 10ms')

        repo, username, password = _credentials(env, repo)
        return cls(
            repo=repo,
            root=Path(os.path.abspath(root)),
            link_name=env.get("GITSYNC_LINK", "") or repo.strip("/").split("/")[-1],
            ref=ref,
            depth=depth,
            submodules=submodules,
            period=period,
            sync_timeout=sync_timeout,
            one_time=boolean("GITSYNC_ONE_TIME", False),
            max_failures=integer("GITSYNC_MAX_FAILURES", 0),
            stale_worktree_timeout=duration("GITSYNC_STALE_WORKTREE_TIMEOUT", 0.0),
            git_gc=git_gc,
            username=username,
            password=password,
            ssh_key_files=tuple(env.get("GITSYNC_SSH_KEY_FILE", "/etc/git-secret/ssh").split(":")),
            ssh_known_hosts=boolean("GITSYNC_SSH_KNOWN_HOSTS", True),
            ssh_known_hosts_file=env.get("GITSYNC_SSH_KNOWN_HOSTS_FILE", "/etc/git-secret/known_hosts"),
            verbose=integer("GITSYNC_VERBOSE", 0),
            git=env.get("GITSYNC_GIT", "git"),
        )


def _credentials(env: Mapping[str, str], repo: str) -> tuple[str, str, str]:
    """(repo without credentials, username, password), checked like git-sync checks them."""
    username, password = env.get("GITSYNC_USERNAME", ""), env.get("GITSYNC_PASSWORD", "")
    password_file = env.get("GITSYNC_PASSWORD_FILE", "")
    url = urllib.parse.urlsplit(repo)
    embedded = url.scheme in ("http", "https") and (url.username is not None or url.password is not None)
    if username:
        if not password and not password_file:
            raise ConfigError("required: GITSYNC_PASSWORD or GITSYNC_PASSWORD_FILE must be set with GITSYNC_USERNAME")
        if password and password_file:
            raise ConfigError("invalid env: set only one of GITSYNC_PASSWORD and GITSYNC_PASSWORD_FILE")
        if embedded:
            raise ConfigError("invalid env: GITSYNC_REPO may not hold credentials when GITSYNC_USERNAME is set")
    elif password or password_file:
        name = "GITSYNC_PASSWORD" if password else "GITSYNC_PASSWORD_FILE"
        raise ConfigError(f"invalid env: {name} may only be set with GITSYNC_USERNAME")
    elif embedded:
        username = urllib.parse.unquote(url.username or "")
        password = urllib.parse.unquote(url.password or "")
        repo = urllib.parse.urlunsplit(url._replace(netloc=url.netloc.rpartition("@")[2]))
    if password_file:
        try:
            password = Path(password_file).read_text()
        except OSError as err:
            raise ConfigError(f"can't read GITSYNC_PASSWORD_FILE={password_file}: {err}") from None
    return repo, username, password


class Log:
    """git-sync's JSON log lines (funcr) on stderr; V(n) lines are printed when n <= GITSYNC_VERBOSE."""

    def __init__(self, verbose: int) -> None:
        self.verbose = verbose

    def info(self, level: int, msg: str, **values: object) -> None:
        if level <= self.verbose:
            self._emit({"level": level, "msg": msg, **values})

    def error(self, msg: str, err: BaseException | None, **values: object) -> None:
        self._emit({"msg": msg, "error": str(err) if err else None, **values})

    @staticmethod
    def _emit(record: dict[str, object]) -> None:
        ts = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")
        print(json.dumps({"logger": "", "ts": ts, **record}), file=sys.stderr, flush=True)


class GitError(SyncError):
    def __init__(self, args: list[str], returncode: int, stderr: str) -> None:
        super().__init__(f"Run({shlex.join(args)}): exit status {returncode}: {{ stderr: {stderr.strip()!r} }}")
        self.stderr = stderr


class RepoSync:
    """One root kept in sync with one remote ref (git-sync's repoSync)."""

    def __init__(self, cfg: Config, log: Log, env: Mapping[str, str]) -> None:
        self.cfg, self.log, self.env = cfg, log, dict(env)
        self.sync_count = 0
        self._deadline: float | None = None  # of the sync in progress

    def git(self, *args: str, cwd: Path | None = None) -> str:
        cmd = [self.cfg.git, *args]
        timeout = None if self._deadline is None else self._deadline - time.monotonic()
        if timeout is not None and timeout <= 0:
            raise SyncError(f"the sync took longer than GITSYNC_SYNC_TIMEOUT={_format_duration(self.cfg.sync_timeout)}")
        self.log.info(5, "running command", cwd=str(cwd or self.cfg.root), cmd=shlex.join(cmd))
        try:
            done = subprocess.run(
                cmd, cwd=cwd or self.cfg.root, env=self.env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise SyncError(
                f"{shlex.join(cmd)} outlived GITSYNC_SYNC_TIMEOUT={_format_duration(self.cfg.sync_timeout)}"
            ) from None
        self.log.info(6, "command result", stdout=done.stdout, stderr=done.stderr)
        if done.returncode != 0:
            raise GitError(cmd, done.returncode, done.stderr)
        return done.stdout

    def worktree_for(self, hash_: str) -> Path:
        return self.cfg.root / ".worktrees" / hash_

    def current_worktree(self) -> Path | None:
        try:
            target = os.readlink(self.cfg.link)
        except FileNotFoundError:
            return None
        return Path(os.path.normpath(self.cfg.link.parent / target))

    def sync_repo(self) -> tuple[bool, str]:
        """Fetch the ref and publish it; (whether the link moved, the synced hash)."""
        self._deadline = time.monotonic() + self.cfg.sync_timeout
        self._init_repo()
        current = self.current_worktree()
        current_hash = current.name if current else ""
        self._fetch()
        remote_hash = self.git("rev-parse", "FETCH_HEAD^{}").strip()
        if current is not None and current_hash == remote_hash and not self._worktree_ok(current):
            self.log.info(0, "worktree failed checks or was empty", path=str(current))
            self._remove_worktree(current)
            current_hash = ""
        changed = current_hash != remote_hash or current != self.worktree_for(current_hash)
        if changed or self.sync_count == 0:
            ref, count = self.cfg.ref, self.sync_count
            self.log.info(0, "update required", ref=ref, local=current_hash, remote=remote_hash, syncCount=count)
            self.git("reset", "--soft", remote_hash, "--")
            worktree = self._create_worktree(remote_hash) if changed else current
            assert worktree is not None
            self._configure_worktree(worktree)
            if changed:
                self._publish_symlink(worktree)
                if current is not None:
                    with contextlib.suppress(OSError):
                        os.utime(current)  # starts GITSYNC_STALE_WORKTREE_TIMEOUT
            self.sync_count += 1
            self.log.info(0, "updated successfully", ref=self.cfg.ref, remote=remote_hash, syncCount=self.sync_count)
        else:
            self.log.info(2, "update not required", ref=self.cfg.ref, remote=remote_hash, syncCount=self.sync_count)
        return changed, remote_hash

    def cleanup(self) -> None:
        """Remove stale worktrees; if any went, prune, expire reflogs and gc."""
        current = self.current_worktree()
        base, removed = self.worktree_for(""), 0
        for entry in base.iterdir() if base.is_dir() else ():
            stale = time.time() - entry.stat().st_mtime
            if entry != current and (self.cfg.stale_worktree_timeout == 0 or stale > self.cfg.stale_worktree_timeout):
                self.log.info(1, "removing stale worktree", path=str(entry))
                shutil.rmtree(entry)
                removed += 1
        if removed:
            self.git("worktree", "prune", "--verbose")
            self.git("reflog", "expire", "--expire-unreachable=all", "--all")
            gc = {"auto": ["--auto"], "always": [], "aggressive": ["--aggressive"]}.get(self.cfg.git_gc)
            if gc is not None:
                self.git("gc", *gc)

    def _init_repo(self) -> None:
        root = self.cfg.root
        root.mkdir(mode=0o775, parents=True, exist_ok=True)
        if not self._repo_ok():
            if any(root.iterdir()):
                self.log.info(0, "repo directory was empty or failed checks", path=str(root))
                for entry in root.iterdir():  # not the root itself: it is often a volume's mount point
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
            self.log.info(0, "initializing repo directory", path=str(root))
            self.git("init", "-b", "git-sync")
            if not self._repo_ok():
                raise SyncError(f"can't initialize a git repository in GITSYNC_ROOT={root}")
        try:
            origin = self.git("remote", "get-url", "origin").strip()
        except GitError as err:
            if "No such remote" not in err.stderr:
                raise
            self.git("remote", "add", "origin", self.cfg.repo)
        else:
            if origin != self.cfg.repo:
                self.git("remote", "set-url", "origin", self.cfg.repo)

    def _repo_ok(self) -> bool:
        root = self.cfg.root
        if not any(root.iterdir()) or (root / ".git" / "shallow.lock").exists():
            return False
        try:
            if self.git("rev-parse", "--show-toplevel").strip() != str(root):
                return False  # the root is inside another repository
            self.git("fsck", "--no-progress", "--connectivity-only")
        except GitError as err:
            self.log.info(3, "repo failed checks", path=str(root), error=str(err))
            return False
        return True

    def _worktree_ok(self, worktree: Path) -> bool:
        if not worktree.is_dir() or not any(worktree.iterdir()):
            return False
        try:
            head = self.git("rev-parse", "HEAD", cwd=worktree).strip()
            self.git("fsck", "--no-progress", "--connectivity-only", cwd=worktree)
        except GitError:
            return False
        return head == worktree.name

    def _fetch(self) -> None:
        cfg = self.cfg
        args = ["fetch", cfg.repo, cfg.ref, "--verbose", "--no-progress", "--prune", "--no-auto-gc"]
        if cfg.depth > 0:
            args += ["--depth", str(cfg.depth)]
        elif self.git("rev-parse", "--is-shallow-repository").strip() == "true":
            args.append("--unshallow")
        try:
            self.git(*args)
        except GitError as err:
            if "dumb http transport does not support shallow" in err.stderr:
                raise SyncError(
                    f"GITSYNC_DEPTH={cfg.depth}: {cfg.repo} is served over git's dumb HTTP protocol, which cannot "
                    "make shallow clones; set GITSYNC_DEPTH=0 (chart value gitSync.depth: 0)"
                ) from err
            if "couldn't find remote ref" in err.stderr:
                raise SyncError(
                    f"GITSYNC_REF={cfg.ref} does not exist in {cfg.repo} ({err.stderr.strip()}): "
                    "set GITSYNC_REF to an existing branch, tag or commit hash"
                ) from err
            raise

    def _remove_worktree(self, worktree: Path) -> None:
        if worktree.exists():
            self.log.info(1, "removing worktree", path=str(worktree))
            shutil.rmtree(worktree)
            self.git("worktree", "prune", "--verbose")

    def _create_worktree(self, hash_: str) -> Path:
        worktree = self.worktree_for(hash_)
        self._remove_worktree(worktree)  # a leftover of a sync that died half-way
        self.log.info(1, "adding worktree", path=str(worktree), hash=hash_)
        self.git("worktree", "add", "--force", "--detach", str(worktree), hash_, "--no-checkout")
        return worktree

    def _configure_worktree(self, worktree: Path) -> None:
        hash_ = worktree.name
        # A relative gitdir keeps the worktree valid where the volume is mounted at another path.
        git_dir = os.path.join(os.path.relpath(self.cfg.root, worktree), ".git", "worktrees", hash_)
        (worktree / ".git").write_text(f"gitdir: {git_dir}\n")
        (self.cfg.root / ".git" / "worktrees" / hash_ / "info" / "sparse-checkout").unlink(missing_ok=True)
        self.log.info(1, "setting worktree HEAD", hash=hash_)
        self.git("reset", "--hard", hash_, "--", cwd=worktree)
        if self.cfg.submodules != "off":
            args = ["submodule", "update", "--init"]
            if self.cfg.submodules == "recursive":
                args.append("--recursive")
            if self.cfg.depth:
                args += ["--depth", str(self.cfg.depth)]
            self.git(*args, cwd=worktree)

    def _publish_symlink(self, worktree: Path) -> None:
        link_dir = self.cfg.link.parent
        link_dir.mkdir(mode=0o775, parents=True, exist_ok=True)
        tmp_link = link_dir / "tmp-link"
        tmp_link.unlink(missing_ok=True)
        # Relative, so the link works wherever the volume is mounted; rename() swaps it atomically.
        os.symlink(os.path.relpath(worktree, link_dir), tmp_link)
        os.rename(tmp_link, self.cfg.link)


def git_environment(cfg: Config, env: Mapping[str, str], global_config: str) -> dict[str, str]:
    """The environment of every git command: the private global config, ssh options, credentials."""
    ssh = env.get("GIT_SSH_COMMAND") or "ssh"
    ssh += "".join(f" -i {shlex.quote(key)}" for key in cfg.ssh_key_files)
    if cfg.ssh_known_hosts:
        ssh += f" -o StrictHostKeyChecking=yes -o UserKnownHostsFile={shlex.quote(cfg.ssh_known_hosts_file)}"
    else:
        ssh += " -o StrictHostKeyChecking=no"
    result = {
        **env,
        "GIT_CONFIG_GLOBAL": global_config,
        "GIT_CONFIG_NOSYSTEM": "true",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_SSH_COMMAND": ssh,
    }
    if cfg.username:
        result |= {"EKSFLOW_GITSYNC_USERNAME": cfg.username, "EKSFLOW_GITSYNC_PASSWORD": cfg.password}
    return result


def _write_global_config(cfg: Config, run: RepoSync, path: str) -> None:
    settings = [
        ("gc.autoDetach", "false"),
        ("gc.pruneExpire", "now"),
        ("core.askPass", "true"),
        ("safe.directory", "*"),
    ]
    url = urllib.parse.urlsplit(cfg.repo)
    if cfg.username and url.scheme and url.netloc:
        settings.append((f"credential.{url.scheme}://{url.netloc}.helper", _CREDENTIAL_HELPER))
    for key, value in settings:
        run.git("config", "--file", path, key, value, cwd=Path(tempfile.gettempdir()))


def run(cfg: Config, log: Log, env: Mapping[str, str]) -> int:
    """The sync loop; returns the exit status."""
    os.umask(0o022)
    git_path = shutil.which(cfg.git)
    if git_path is None:
        log.error("FATAL: git executable not found", None, git=cfg.git)
        return 1
    try:
        cfg.root.mkdir(mode=0o775, parents=True, exist_ok=True)
        cfg = dataclasses.replace(cfg, root=cfg.root.resolve())  # git reports resolved paths
    except OSError as err:
        log.error("FATAL: can't make GITSYNC_ROOT", err, path=str(cfg.root))
        return 1
    fd, global_config = tempfile.mkstemp(prefix="git-sync.gitconfig.")
    os.close(fd)
    try:
        sync = RepoSync(cfg, log, git_environment(cfg, env, global_config))
        _write_global_config(cfg, sync, global_config)
        log.info(0, "git version", version=sync.git("version", cwd=Path(global_config).parent).strip())
        return _loop(cfg, log, sync)
    finally:
        os.unlink(global_config)


def _loop(cfg: Config, log: Log, sync: RepoSync) -> int:
    failures = 0
    while True:
        try:
            _changed, hash_ = sync.sync_repo()
        except (SyncError, OSError) as err:
            failures += 1
            if cfg.max_failures >= 0 and failures >= cfg.max_failures:
                log.error("too many failures, aborting", err, failCount=failures, maxFailures=cfg.max_failures)
                return 1
            log.error("error syncing repo, will retry", err, failCount=failures)
        else:
            try:
                sync.cleanup()
            except (SyncError, OSError) as err:
                log.error("git cleanup failed", err)
            if cfg.one_time:
                log.info(0, "exiting after one sync", status=0)
                return 0
            if hash_ == cfg.ref:
                log.info(0, "ref appears to be a git hash, no further sync needed", ref=cfg.ref)
                while True:
                    time.sleep(3600)
            failures = 0
        log.info(3, "next sync", waitTime=_format_duration(cfg.period), syncCount=sync.sync_count)
        time.sleep(cfg.period)


def _on_signal(signum: int, _frame: object) -> None:
    raise _Terminated(signum)


def main() -> int:
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        try:
            cfg = Config.from_env(os.environ)
        except ConfigError as err:
            print(f"FATAL: {err}", file=sys.stderr, flush=True)
            return 1
        log = Log(cfg.verbose)
        log.info(
            0,
            "starting up",
            pid=os.getpid(),
            uid=os.getuid(),
            gid=os.getgid(),
            home=os.environ.get("HOME", ""),
            repo=cfg.repo,
            ref=cfg.ref,
            depth=cfg.depth,
            root=str(cfg.root),
            link=str(cfg.link),
            period=_format_duration(cfg.period),
            oneTime=cfg.one_time,
            maxFailures=cfg.max_failures,
        )
        return run(cfg, log, os.environ)
    except _Terminated as stop:
        # Die by the signal, as the Go binary (which installs no handler for it) does.
        signal.signal(stop.signum, signal.SIG_DFL)
        os.kill(os.getpid(), stop.signum)
        return 128 + stop.signum


if __name__ == "__main__":
    sys.exit(main())

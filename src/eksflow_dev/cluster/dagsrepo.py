"""The DAG repository of the local cluster: a bare git repository on this machine that holds the DAG author's
current files, served over git's dumb HTTP protocol to the node's git-sync (eksflow_dev.cluster.gitsync).

publish() commits the files of a directory as they are on disk — committed or not, tracked or not, minus what
.gitignore excludes — through a temporary index straight into the bare repository, on top of the previous
published commit. The author's own repository (HEAD, index, branches, objects) is never read or written.

Dumb HTTP is plain files, so clients cannot ask for a shallow history: git-sync must use depth 0.

    python -m eksflow_dev.cluster.dagsrepo --worktree W --bare B --port P [--interval SECONDS]

publishes W into B, serves B at http://127.0.0.1:P/<B's name> (the URL is printed on stdout), re-publishes
every SECONDS if given, and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import os
import signal
import subprocess
import sys
import tempfile
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

IDENTITY = {
    "GIT_AUTHOR_NAME": "eksflow dev",
    "GIT_AUTHOR_EMAIL": "dev@eksflow.invalid",
    "GIT_COMMITTER_NAME": "eksflow dev",
    "GIT_COMMITTER_EMAIL": "dev@eksflow.invalid",
}


def _git(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}  # no GIT_DIR etc. of a caller
    done = subprocess.run(
        ["git", "-c", "safe.directory=*", *args],
        env={**clean, **IDENTITY, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed (exit {done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip()


def publish(worktree: Path, bare: Path, branch: str = "main") -> str:
    """Make `branch` of the bare repository point at a commit of the worktree's current files; its SHA."""
    worktree, bare = Path(worktree).resolve(), Path(bare).resolve()
    if not worktree.is_dir():
        raise FileNotFoundError(f"no DAG worktree at {worktree}: pass the directory that holds the DAG files")
    if not (bare / "HEAD").is_file():
        bare.mkdir(parents=True, exist_ok=True)
        _git("init", "--quiet", "--bare", "--initial-branch", branch, str(bare))
    ref = f"refs/heads/{branch}"
    with tempfile.TemporaryDirectory(prefix="eksflow-dagsrepo-") as tmp:
        # A throwaway index over the bare repository's object store: the author's .git stays untouched.
        env = {"GIT_DIR": str(bare), "GIT_WORK_TREE": str(worktree), "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _git("add", "--all", ".", env=env, cwd=worktree)
        tree = _git("write-tree", env=env, cwd=worktree)
    try:
        parent = _git("-C", str(bare), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except RuntimeError:
        parent = ""
    if parent and _git("-C", str(bare), "rev-parse", f"{parent}^{{tree}}") == tree:
        sha = parent
    else:
        parents = ["-p", parent] if parent else []
        sha = _git("-C", str(bare), "commit-tree", tree, *parents, "-m", f"Publish the DAG files of {worktree}")
        # The expected old value makes a concurrent publish fail instead of losing a commit.
        _git("-C", str(bare), "update-ref", "-m", "publish", ref, sha, parent or "0" * 40)
        # Packs the new loose objects: a dumb-HTTP client then fetches one file per publish, not one per object.
        _git("-C", str(bare), "repack", "-d", "-q")
    _git("-C", str(bare), "update-server-info")  # info/refs and objects/info/packs, what dumb HTTP clients read
    return sha


class _Handler(SimpleHTTPRequestHandler):
    prefix = "/"
    authorization: str | None = None

    def do_GET(self) -> None:
        if self._allowed():
            super().do_GET()

    def do_HEAD(self) -> None:
        if self._allowed():
            super().do_HEAD()

    def _allowed(self) -> bool:
        expected = self.authorization
        given = self.headers.get("Authorization", "").encode()
        if expected is not None and not hmac.compare_digest(given, expected.encode()):
            self.send_response(HTTPStatus.UNAUTHORIZED)
            self.send_header("WWW-Authenticate", 'Basic realm="eksflow dags"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        if not self.path.startswith(self.prefix):
            self.send_error(HTTPStatus.NOT_FOUND)
            return False
        self.path = self.path[len(self.prefix) - 1 :]
        return True

    def list_directory(self, path: str) -> None:  # no listings: git needs none
        self.send_error(HTTPStatus.NOT_FOUND)

    def log_message(self, format: str, *args: object) -> None:
        pass


class DagsRepoServer:
    """The bare repository, read-only over HTTP at `url`, optionally behind basic auth."""

    def __init__(self, bare: Path, host: str = "127.0.0.1", port: int = 0, auth: tuple[str, str] | None = None):
        bare = Path(bare).resolve()
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode() if auth else None
        handler = type(
            "DagsRepoHandler",
            (_Handler,),
            {"prefix": f"/{bare.name}/", "authorization": f"Basic {token}" if token else None},
        )
        self._httpd = ThreadingHTTPServer((host, port), lambda *args: handler(*args, directory=str(bare)))
        self._httpd.daemon_threads = True
        self.host, self.port = host, self._httpd.server_address[1]
        self.url = f"http://{host}:{self.port}/{bare.name}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.1,), name=f"dagsrepo:{self.port}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> DagsRepoServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(bare: Path, host: str = "127.0.0.1", port: int = 0, auth: tuple[str, str] | None = None) -> DagsRepoServer:
    """Serve the bare repository over git's dumb HTTP protocol until .close()."""
    return DagsRepoServer(bare, host, port, auth)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eksflow_dev.cluster.dagsrepo", description=__doc__.split("\n")[0])
    parser.add_argument("--worktree", type=Path, required=True, help="directory of the DAG files to publish")
    parser.add_argument("--bare", type=Path, required=True, help="bare repository to publish into and serve")
    parser.add_argument("--branch", default="main")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (read the URL on stdout)")
    parser.add_argument("--interval", type=float, default=0, help="re-publish every this many seconds (0: never)")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    sha = publish(args.worktree, args.bare, args.branch)
    with serve(args.bare, args.host, args.port) as server:
        print(f"serving {server.url} ({args.branch} at {sha})", flush=True)
        while not stop.wait(args.interval or None):
            new = publish(args.worktree, args.bare, args.branch)
            if new != sha:
                sha = new
                print(f"published {sha}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The images the local node "has": descriptions the runtime (runtime.py) turns into a container's filesystem view.

Nothing is pulled or unpacked: an image is this host's system directories (/etc, /usr, /var... through a
per-container overlay, see container_init.py) plus the image's own users, directories and files, plus host
directories it exposes read-only (the Python interpreter and the project's venv).

The eksflow platform image (`platform_image`, ref "eksflow:local") stands for the repo's Dockerfile:
`FROM apache/airflow:3.3.2-python3.12`, `pip install` of the project, `USER 50000`.

Emulated, as the official Airflow image has it:
- user airflow, uid 50000, gid 0, home /home/airflow, shell /bin/bash, member of group root (`id` says
  uid=50000(airflow) gid=0(root) groups=0(root)); /etc/passwd mode 0664 (group 0 may add an arbitrary uid);
- ENTRYPOINT ["/usr/bin/dumb-init", "--", "/entrypoint"], CMD [], WORKDIR /opt/airflow;
- AIRFLOW_HOME=/opt/airflow with dags/ and logs/ (50000:0, 0775), /home/airflow (50000:0, 0775);
- ENV: PATH (/home/airflow/.local/bin first), VIRTUAL_ENV=/home/airflow/.local, AIRFLOW_USER_HOME_DIR,
  AIRFLOW_UID, AIRFLOW_VERSION, AIRFLOW_PYTHON_VERSION, AIRFLOW_IMAGE_TYPE, DUMB_INIT_SETSID=1,
  AIRFLOW__CORE__LOAD_EXAMPLES=false, GUNICORN_CMD_ARGS, LANG/LC_* C.UTF-8, PIP_CACHE_DIR, ...;
- `python` and `airflow` resolve to the venv, exposed at /home/airflow/.local (the official image's venv) and at
  its host path (its scripts' shebangs are absolute); the interpreter prefix is exposed at its host path;
- dumb-init is the real one: Debian's dumb-init package on this host (`apt-get install dumb-init`), visible at
  /usr/bin/dumb-init through /usr, exactly as the official image installs it;
- /entrypoint (platform_entrypoint.sh, our own script) behaves like entrypoint_prod.sh: `bash` and `python` as
  first argument are exec'ed directly, `airflow X` and `X` both run `airflow X`; every command through the
  entrypoint (bash and python included) first runs `airflow db check` up to CONNECTION_CHECK_MAX_COUNT
  (default 20) times, CONNECTION_CHECK_SLEEP_TIME (default 3) s apart, unless the count is 0; a container
  `command` bypasses the entrypoint (no check); _AIRFLOW_DB_MIGRATE (and the deprecated _AIRFLOW_DB_UPGRADE)
  runs `airflow db migrate`; _AIRFLOW_WWW_USER_CREATE + _AIRFLOW_WWW_USER_* creates a user; `scheduler` and
  `celery` wait for the Celery broker when the executor is CeleryExecutor; a gid other than 0 fails (uid
  50000 only warns); a uid without a passwd entry gets one when /etc/passwd is writable and HOME=/home/airflow;
  as root, PYTHONPATH gains the user site-packages; PIP_USER is unset; umask 0002; LD_PRELOAD=libstdc++.

Not emulated (differences):
- Python: the venv's version (3.11 here) instead of the base tag's (3.12); the test records it as a note;
- the Debian userland is this host's (bookworm), not the image's; /usr/python, /root/bin/pip (the root pip
  guard), /clean-logs and /airflow-scheduler-autorestart are absent; sudo is not configured;
- the venv holds the project installed editable: src/eksflow is exposed read-only (src/eksflow_dev, the
  developer tooling, is not: as in the image, a DAG cannot import it) where the image has the eksflow wheel;
- _PIP_ADDITIONAL_REQUIREMENTS (a dev-only feature) fails with a message instead of pip-installing;
- the broker reachability check uses Python sockets instead of netcat;
- /root is mode 0711 instead of 0700: the interpreter prefix lives under it and the airflow user must
  traverse it (it still cannot list it).

The git-sync image (`gitsync_image`, registry.k8s.io/git-sync/git-sync:<tag>) runs our git-sync
(`python -m eksflow_dev.cluster.gitsync`) as /git-sync; its users are the real image's (Debian's base users
plus git-sync 65533:65533; no airflow), HOME=/tmp, WORKDIR /tmp, GITSYNC_ROOT=/git, /git 65533:65533 02775;
git and ssh are the host's (/usr/bin).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent
SRC_DIR = NODE_DIR.parents[2]

PLATFORM_REFS = ("eksflow:local",)
GITSYNC_REPOSITORY = "registry.k8s.io/git-sync/git-sync"
GITSYNC_TAGS = ("v4.4.2",)

AIRFLOW_UID = 50000
AIRFLOW_HOME = "/opt/airflow"
AIRFLOW_USER_HOME = "/home/airflow"
GITSYNC_UID = 65533
DUMB_INIT = "/usr/bin/dumb-init"

# Debian bookworm's base-files users and groups (what both images start from).
DEBIAN_PASSWD = (
    "root:x:0:0:root:/root:/bin/bash",
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
    "bin:x:2:2:bin:/bin:/usr/sbin/nologin",
    "sys:x:3:3:sys:/dev:/usr/sbin/nologin",
    "sync:x:4:65534:sync:/bin:/bin/sync",
    "games:x:5:60:games:/usr/games:/usr/sbin/nologin",
    "man:x:6:12:man:/var/cache/man:/usr/sbin/nologin",
    "lp:x:7:7:lp:/var/spool/lpd:/usr/sbin/nologin",
    "mail:x:8:8:mail:/var/mail:/usr/sbin/nologin",
    "news:x:9:9:news:/var/spool/news:/usr/sbin/nologin",
    "uucp:x:10:10:uucp:/var/spool/uucp:/usr/sbin/nologin",
    "proxy:x:13:13:proxy:/bin:/usr/sbin/nologin",
    "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin",
    "backup:x:34:34:backup:/var/backups:/usr/sbin/nologin",
    "list:x:38:38:Mailing List Manager:/var/list:/usr/sbin/nologin",
    "irc:x:39:39:ircd:/run/ircd:/usr/sbin/nologin",
    "_apt:x:42:65534::/nonexistent:/usr/sbin/nologin",
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
)
DEBIAN_GROUPS = (
    "root:x:0:",
    "daemon:x:1:",
    "bin:x:2:",
    "sys:x:3:",
    "adm:x:4:",
    "tty:x:5:",
    "disk:x:6:",
    "lp:x:7:",
    "mail:x:8:",
    "news:x:9:",
    "uucp:x:10:",
    "man:x:12:",
    "proxy:x:13:",
    "kmem:x:15:",
    "dialout:x:20:",
    "fax:x:21:",
    "voice:x:22:",
    "cdrom:x:24:",
    "floppy:x:25:",
    "tape:x:26:",
    "sudo:x:27:",
    "audio:x:29:",
    "dip:x:30:",
    "www-data:x:33:",
    "backup:x:34:",
    "operator:x:37:",
    "list:x:38:",
    "irc:x:39:",
    "src:x:40:",
    "shadow:x:42:",
    "utmp:x:43:",
    "video:x:44:",
    "sasl:x:45:",
    "plugdev:x:46:",
    "staff:x:50:",
    "games:x:60:",
    "users:x:100:",
    "nogroup:x:65534:",
)
# Runtime default when an image sets no PATH (containerd's).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ImageUnavailable(RuntimeError):
    """A known image that cannot be assembled on this node (the message names the fix)."""


@dataclass
class ImageSpec:
    ref: str
    entrypoint: list[str]
    cmd: list[str]
    env: dict[str, str]  # the image's ENV (PATH, AIRFLOW_HOME...); the container's env applies over it
    user: int  # default uid (USER)
    group: int  # default gid
    workdir: str
    passwd: list[str]  # the image's /etc/passwd lines
    group_lines: list[str]  # the image's /etc/group lines
    dirs: list[tuple[str, int, int, int]] = field(default_factory=list)  # (path, uid, gid, mode)
    files: dict[str, tuple[str | bytes, int]] = field(default_factory=dict)  # path -> (content, mode), root-owned
    host_paths: list[tuple[str, str]] = field(default_factory=list)  # (host dir, image path), read-only
    passwd_mode: int = 0o644
    notes: list[str] = field(default_factory=list)  # known differences from the real image


@dataclass(frozen=True)
class PythonEnv:
    """A venv and the interpreter prefix it was made from (its pyvenv.cfg `home`)."""

    venv: Path
    prefix: Path
    version: str  # e.g. "3.11.7"

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


def python_env(venv: Path) -> PythonEnv:
    cfg = venv / "pyvenv.cfg"
    if not cfg.is_file():
        raise ImageUnavailable(f"{venv} is not a venv (no pyvenv.cfg): pass the project's venv, e.g. .venv")
    values = {}
    for line in cfg.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    home = Path(values.get("home", ""))
    version = values.get("version") or values.get("version_info", "")
    if not home.is_absolute() or not version:
        raise ImageUnavailable(f"{cfg}: no 'home' or 'version': recreate the venv with `python -m venv`")
    return PythonEnv(venv=venv, prefix=home.parent, version=version)


def installed_version(venv: Path, distribution: str) -> str:
    """A distribution's version in the venv, from its dist-info directory name."""
    name = "[-_.]".join(re.escape(part) for part in re.split(r"[-_.]", distribution))
    pattern = re.compile(rf"^{name}-([^-]+)\.dist-info$", re.IGNORECASE)
    for site in venv.glob("lib/python*/site-packages"):
        for entry in site.iterdir():
            match = pattern.match(entry.name)
            if match:
                return match.group(1)
    raise ImageUnavailable(f"{distribution} is not installed in {venv}: run `pip install -e .` in the project")


def _python_host_paths(py: PythonEnv, src: Path) -> list[tuple[str, str]]:
    """The interpreter prefix, the venv and the project sources (the editable install's .pth), at their host paths."""
    return [(str(p), str(p)) for p in (py.prefix, py.venv, src)]


def _traversal_dirs(host_paths: list[tuple[str, str]]) -> list[tuple[str, int, int, int]]:
    # /root is 0700 in the images; a non-root user must traverse it to reach an interpreter installed under it.
    if any(target.startswith("/root/") for _, target in host_paths):
        return [("/root", 0, 0, 0o711)]
    return []


def platform_image(ref: str, venv: Path, src: Path) -> ImageSpec:
    if not Path(DUMB_INIT).is_file():
        raise ImageUnavailable(f"{ref}: {DUMB_INIT} is missing on this node: apt-get install dumb-init")
    py = python_env(venv)
    airflow_version = installed_version(venv, "apache-airflow")
    home = AIRFLOW_USER_HOME
    # The Dockerfile installs src/eksflow only: the runtime package, without the developer tooling beside it.
    host_paths = [*_python_host_paths(py, src / "eksflow"), (str(venv), f"{home}/.local")]
    env = {
        "PATH": f"/root/bin:{home}/.local/bin:/usr/python/bin:{DEFAULT_PATH}",
        "VIRTUAL_ENV": f"{home}/.local",
        "AIRFLOW_HOME": AIRFLOW_HOME,
        "AIRFLOW_USER_HOME_DIR": home,
        "AIRFLOW_UID": str(AIRFLOW_UID),
        "AIRFLOW_VERSION": airflow_version,
        "AIRFLOW_PYTHON_VERSION": py.version,
        "AIRFLOW_IMAGE_TYPE": "prod",
        "AIRFLOW_INSTALLATION_METHOD": "apache-airflow",
        "AIRFLOW_USE_UV": "false",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
        "DUMB_INIT_SETSID": "1",
        "PS1": "(airflow)",
        "GUNICORN_CMD_ARGS": "--worker-tmp-dir /dev/shm",
        "BASE_IMAGE": "debian:bookworm-slim",
        "DEBIAN_FRONTEND": "noninteractive",
        "LANGUAGE": "C.UTF-8",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "LC_CTYPE": "C.UTF-8",
        "LC_MESSAGES": "C.UTF-8",
        "PIP_CACHE_DIR": "/tmp/.cache/pip",  # noqa: S108 (paths in the container)
        "UV_CACHE_DIR": "/tmp/.cache/uv",  # noqa: S108
    }
    owned = (AIRFLOW_UID, 0, 0o775)
    return ImageSpec(
        ref=ref,
        entrypoint=[DUMB_INIT, "--", "/entrypoint"],
        cmd=[],
        env=env,
        user=AIRFLOW_UID,
        group=0,
        workdir=AIRFLOW_HOME,
        passwd=[
            *DEBIAN_PASSWD,
            f"airflow:x:{AIRFLOW_UID}:0:First Last,RoomNumber,WorkPhone,HomePhone:{home}:/bin/bash",
        ],
        group_lines=["root:x:0:airflow", *DEBIAN_GROUPS[1:]],
        dirs=[
            *_traversal_dirs(host_paths),
            (home, *owned),
            (AIRFLOW_HOME, *owned),
            (f"{AIRFLOW_HOME}/dags", *owned),
            (f"{AIRFLOW_HOME}/logs", *owned),
        ],
        files={"/entrypoint": ((NODE_DIR / "platform_entrypoint.sh").read_text(), 0o755)},
        host_paths=host_paths,
        passwd_mode=0o664,
        notes=[f"python {py.minor} (the venv's) instead of the base image tag's python"],
    )


def gitsync_image(ref: str, venv: Path, src: Path) -> ImageSpec:
    py = python_env(venv)
    host_paths = _python_host_paths(py, src)
    script = f'#!/bin/sh\nexec {venv}/bin/python -m eksflow_dev.cluster.gitsync "$@"\n'
    return ImageSpec(
        ref=ref,
        entrypoint=["/git-sync"],
        cmd=[],
        env={"HOME": "/tmp", "GITSYNC_ROOT": "/git"},  # noqa: S108 (paths in the container)
        user=GITSYNC_UID,
        group=GITSYNC_UID,
        workdir="/tmp",  # noqa: S108
        passwd=[*DEBIAN_PASSWD, f"git-sync:x:{GITSYNC_UID}:{GITSYNC_UID}::/tmp:/sbin/nologin"],
        group_lines=[*DEBIAN_GROUPS, f"git-sync:x:{GITSYNC_UID}:git-sync"],
        dirs=[*_traversal_dirs(host_paths), ("/git", GITSYNC_UID, GITSYNC_UID, 0o2775)],
        files={"/git-sync": (script, 0o755)},
        host_paths=host_paths,
        passwd_mode=0o666,
        notes=["git-sync is eksflow_dev.cluster.gitsync (Python), not the Go binary"],
    )


def normalize_ref(ref: str) -> str:
    """Docker Hub's implicit prefixes dropped and the implicit :latest added, as containerd resolves them."""
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/", "index.docker.io/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
            break
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last or "@" in last else f"{ref}:latest"


def this_venv() -> Path:
    if sys.prefix == sys.base_prefix:
        raise ImageUnavailable("the node runs outside a venv: start it with the project's .venv/bin/python")
    return Path(sys.prefix)


@cache
def resolve(ref: str) -> ImageSpec | None:
    """The image for a pod's image ref, or None when this node does not have it (the kubelet: ErrImagePull).

    Raises ImageUnavailable for a known image that cannot be assembled here (its message names the fix)."""
    ref = normalize_ref(ref)
    if ref in PLATFORM_REFS:
        return platform_image(ref, this_venv(), SRC_DIR)
    repository, _, tag = ref.rpartition(":")
    if repository == GITSYNC_REPOSITORY and tag in GITSYNC_TAGS:
        return gitsync_image(ref, this_venv(), SRC_DIR)
    return None

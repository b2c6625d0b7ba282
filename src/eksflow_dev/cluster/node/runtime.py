"""The node's container runtime: one container of a pod as a process tree with container semantics.

`start(spec)` spawns the container's PID 1 as a direct child of the calling process, in a new PID namespace
(unshare(CLONE_NEWPID) on the spawning thread around the fork, so its exit status is PID 1's own):
    python -I -S container_init.py   (joins the memory cgroup and the pod's netns, unshares mount + UTS, builds the
                                      filesystem view: see container_init.py)
    -> exec setpriv --reuid --regid --groups|--clear-groups --no-new-privs --inh-caps=-all --bounding-set=...
    -> exec the container's argv (the image entrypoint, e.g. dumb-init, or the container's command), still PID 1.
stdout and stderr go through pipes to a pump thread that appends CRI-format lines to spec.log_path.
exec() enters the container with nsenter + setpriv.

Semantics as Kubernetes + containerd give them: argv from command/args/entrypoint/cmd with $(VAR) expansion;
env = HOSTNAME, then the image ENV, then the container's env, plus PATH and HOME defaults; the user/group from
the spec or the image (a runAsUser without runAsGroup takes the user's group from the image's /etc/passwd),
supplementary groups from the image's /etc/group plus the spec's; capabilities: none for a non-root user,
Docker's default set for root; no_new_privs always.

Not emulated: IPC and user namespaces, seccomp/AppArmor, CPU/pids limits, /dev/shm shared between a pod's
containers (each container has its own 64 MiB one), log rotation, image layers (see image.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import marshal
import os
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from eksflow_dev.cluster.node.image import DEFAULT_PATH, ImageSpec

log = logging.getLogger(__name__)
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWPID = 0x20000000

INIT_SCRIPT = Path(__file__).resolve().with_name("container_init.py")
MEMORY_CGROUP_ROOT = Path("/sys/fs/cgroup/memory")
SHM_SIZE = 64 * 1024 * 1024
LOG_LINE_MAX = 16 * 1024
START_TIMEOUT = 60.0
# Docker's default capabilities, what a root container keeps.
ROOT_CAPS = (
    "chown",
    "dac_override",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "net_bind_service",
    "net_raw",
    "sys_chroot",
    "mknod",
    "audit_write",
    "setfcap",
)


@dataclass(frozen=True)
class Mount:
    source: Path  # host path: a directory or a regular file
    target: str  # absolute path in the container
    read_only: bool = False


@dataclass
class ContainerSpec:
    name: str
    image: ImageSpec
    command: list[str] | None  # Kubernetes container.command: replaces the image entrypoint (and drops cmd)
    args: list[str] | None  # Kubernetes container.args: replaces the image cmd
    env: dict[str, str]  # the container's env resolved by the kubelet; image env applies underneath
    working_dir: str | None  # None: the image workdir
    run_as_user: int | None  # None: the image user
    run_as_group: int | None  # None: the image group
    supplemental_groups: list[int]  # e.g. the pod's fsGroup
    read_only_root: bool
    mounts: list[Mount]  # volumes, applied AFTER the root is made read-only, each with its own ro/rw
    log_path: Path  # the container log, CRI format, appended: "<RFC3339Nano UTC> stdout|stderr F <line>"
    netns: Path | None = None  # e.g. /proc/<pid>/ns/net of the pod sandbox; None: the caller's network namespace
    memory_limit: int | None = None  # bytes; enforced with a cgroup v1 memory cgroup when available
    hosts_file: Path | None = None  # bind-mounted read-only at /etc/hosts
    resolv_conf: Path | None = None  # bind-mounted read-only at /etc/resolv.conf
    hostname: str | None = None  # the pod name (own UTS namespace)
    cgroup_parent: str = "eksflow"  # memory cgroup parent dir name


class RuntimeUnavailable(RuntimeError):
    """This machine cannot run containers (the message names what is missing)."""


# --- argv, env, user -------------------------------------------------------------------------------------------


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined names are replaced, undefined ones kept as written, $$ is a $."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] != "$" or i + 1 == n:
            out.append(text[i])
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = text.find(")", i + 2)
            if close < 0:  # incomplete reference: kept, scanning goes on after "$("
                out.append("$(")
                i += 2
                continue
            name = text[i + 2 : close]
            out.append(env.get(name, f"$({name})"))
            i = close + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


def container_argv(
    image: ImageSpec, command: list[str] | None, args: list[str] | None, env: dict[str, str]
) -> list[str]:
    """command replaces the entrypoint and drops the image cmd; args replace the cmd (empty lists count as unset)."""
    expanded_args = [expand(a, env) for a in args] if args else None
    if command:
        return [expand(c, env) for c in command] + (expanded_args or [])
    return [*image.entrypoint, *(expanded_args if expanded_args is not None else image.cmd)]


def _passwd(image: ImageSpec) -> dict[int, tuple[str, int, str]]:
    """uid -> (name, gid, home) from the image's /etc/passwd (first entry wins)."""
    users: dict[int, tuple[str, int, str]] = {}
    for line in image.passwd:
        parts = line.split(":")
        if len(parts) >= 7 and parts[2].isdigit() and parts[3].isdigit():
            users.setdefault(int(parts[2]), (parts[0], int(parts[3]), parts[5]))
    return users


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def identity(spec: ContainerSpec) -> Identity:
    users = _passwd(spec.image)
    uid = spec.image.user if spec.run_as_user is None else spec.run_as_user
    name, passwd_gid, home = users.get(uid, ("", 0, "/"))
    if spec.run_as_group is not None:
        gid = spec.run_as_group
    elif spec.run_as_user is None:
        gid = spec.image.group
    else:
        gid = passwd_gid
    groups: list[int] = []
    for line in spec.image.group_lines:
        parts = line.split(":")
        if len(parts) >= 4 and parts[2].isdigit() and name and name in parts[3].split(","):
            groups.append(int(parts[2]))
    groups += spec.supplemental_groups
    return Identity(uid=uid, gid=gid, groups=tuple(dict.fromkeys(groups)), home=home)


def container_env(spec: ContainerSpec, who: Identity) -> dict[str, str]:
    env = {"HOSTNAME": spec.hostname} if spec.hostname else {}
    env.update(spec.image.env)
    env.update(spec.env)
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOME", who.home or "/")
    return env


def setpriv_argv(who: Identity) -> list[str]:
    caps = "-all" if who.uid != 0 else "-all," + ",".join(f"+{c}" for c in ROOT_CAPS)
    groups = f"--groups={','.join(map(str, who.groups))}" if who.groups else "--clear-groups"
    return [
        "/usr/bin/setpriv",
        f"--reuid={who.uid}",
        f"--regid={who.gid}",
        groups,
        "--no-new-privs",
        "--inh-caps=-all",
        f"--bounding-set={caps}",
    ]


# --- host prerequisites, cgroup ----------------------------------------------------------------------------------


@cache
def tools() -> dict[str, str]:
    """Absolute paths of the util-linux tools; raises RuntimeUnavailable naming what is missing."""
    if os.geteuid() != 0:
        raise RuntimeUnavailable("containers need root (mount, PID namespaces, setpriv): run the node as root")
    found = {name: shutil.which(name) for name in ("nsenter", "setpriv")}
    missing = [name for name, path in found.items() if not path]
    if missing:
        raise RuntimeUnavailable(f"missing {', '.join(missing)}: apt-get install util-linux")
    if found["setpriv"] != "/usr/bin/setpriv":
        raise RuntimeUnavailable(f"setpriv is {found['setpriv']}, the container view expects /usr/bin/setpriv")
    return {name: str(path) for name, path in found.items()}


def memory_cgroup_base(parent: str, pid: int | str = "self") -> Path | None:
    """<memory hierarchy>/<the memory cgroup of process `pid` (default: this one)>/<parent>, or None without a
    cgroup v1 memory controller. Each container's cgroup is a directory `<container name>-<12 hex>` in it.

    Nested under our own cgroup so that the containers stay inside whatever limits the node itself runs in."""
    if not (MEMORY_CGROUP_ROOT / "cgroup.procs").exists():
        return None
    own = "/"
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            own = path
    return MEMORY_CGROUP_ROOT / own.lstrip("/") / parent


class MemoryCgroup:
    def __init__(self, path: Path, limit: int | None):
        self.path = path
        path.mkdir(parents=True)
        if limit is not None:
            (path / "memory.limit_in_bytes").write_text(str(limit))
            memsw = path / "memory.memsw.limit_in_bytes"
            if memsw.exists():  # equal limits: no swapping around the limit
                memsw.write_text(str(limit))

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def oom_killed(self, exit_code: int) -> bool:
        """Whether the OOM killer killed a process of the cgroup (memory.oom_control's oom_kill counter; kernels
        before 4.13 lack it: then a SIGKILL exit after the limit was hit counts)."""
        try:
            for line in (self.path / "memory.oom_control").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value) > 0
            return exit_code == 128 + signal.SIGKILL and int((self.path / "memory.failcnt").read_text()) > 0
        except OSError:
            return False

    def remove(self) -> None:
        for _ in range(50):  # the kernel frees the cgroup a moment after its last process is reaped
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)
        log.warning("memory cgroup %s not removed: processes still in it", self.path)


# --- logs -----------------------------------------------------------------------------------------------------------


def cri_timestamp(ns: int | None = None) -> str:
    """RFC3339Nano in UTC, trailing zeros of the fraction dropped (Go's time.RFC3339Nano)."""
    secs, frac = divmod(time.time_ns() if ns is None else ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    return f"{text}.{frac:09d}".rstrip("0").rstrip(".") + "Z"


class LogPump(threading.Thread):
    """Reads the container's stdout and stderr, appends CRI lines ("F" full, "P" a piece of a longer line)."""

    def __init__(self, log_path: Path, stdout, stderr):
        super().__init__(name=f"log-pump {log_path}", daemon=True)
        self.log_path = log_path
        self.streams = {stdout.fileno(): (b"stdout", stdout), stderr.fileno(): (b"stderr", stderr)}
        self.eof_at: datetime | None = None

    def _write(self, fd: int, stream: bytes, tag: bytes, line: bytes) -> None:
        while len(line) > LOG_LINE_MAX:
            os.write(fd, b"%s %s P %s\n" % (cri_timestamp().encode(), stream, line[:LOG_LINE_MAX]))
            line = line[LOG_LINE_MAX:]
        os.write(fd, b"%s %s %s %s\n" % (cri_timestamp().encode(), stream, tag, line))

    def run(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        buffers = {fd: b"" for fd in self.streams}
        with selectors.DefaultSelector() as sel:
            for fd in self.streams:
                sel.register(fd, selectors.EVENT_READ)
            while sel.get_map():
                for key, _ in sel.select():
                    fd = key.fd
                    stream = self.streams[fd][0]
                    data = os.read(fd, 65536)
                    buf = buffers[fd] + data
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        self._write(out, stream, b"F", line)
                    while len(buf) >= LOG_LINE_MAX:  # an unfinished line: its full pieces now
                        self._write(out, stream, b"P", buf[:LOG_LINE_MAX])
                        buf = buf[LOG_LINE_MAX:]
                    if not data:
                        if buf:
                            self._write(out, stream, b"F", buf)
                        sel.unregister(fd)
                        self.streams[fd][1].close()
                        buf = b""
                    buffers[fd] = buf
        os.close(out)
        self.eof_at = datetime.now(UTC)


# --- the container ------------------------------------------------------------------------------------------------


@dataclass
class Container:
    spec: ContainerSpec
    pid: int  # host pid of the container's PID 1 (0 when it never started)
    started_at: datetime
    exit_code: int | None = None
    reason: str | None = None  # Completed | Error | OOMKilled | StartError
    message: str | None = None  # why a StartError
    finished_at: datetime | None = None
    _proc: subprocess.Popen | None = field(default=None, repr=False)
    _pidfd: int | None = field(default=None, repr=False)
    _cgroup: MemoryCgroup | None = field(default=None, repr=False)
    _pump: LogPump | None = field(default=None, repr=False)
    _env: dict[str, str] = field(default_factory=dict, repr=False)
    _setpriv: list[str] = field(default_factory=list, repr=False)
    _workdir: str = "/"
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def cgroup_path(self) -> Path | None:
        """The container's memory cgroup (memory.usage_in_bytes etc.), None without a memory controller."""
        return self._cgroup.path if self._cgroup is not None else None

    def poll(self) -> int | None:
        """The exit code once the container has exited (its log complete), else None."""
        if self.exit_code is not None:
            return self.exit_code
        if self._proc is None or self._proc.poll() is None:
            return None
        self._finish()
        return self.exit_code

    def wait(self, timeout: float | None = None) -> int:
        """Waits for the exit; raises subprocess.TimeoutExpired after `timeout` seconds."""
        if self.exit_code is None and self._proc is not None:
            self._proc.wait(timeout)
            self._finish()
        assert self.exit_code is not None
        return self.exit_code

    def _finish(self) -> None:
        with self._lock:
            if self.exit_code is not None:
                return
            if self._pump is not None:
                self._pump.join(5)  # EOF follows the PID namespace's end within moments
            rc = self._proc.returncode
            code = 128 - rc if rc < 0 else rc  # killed by a signal: 128 + its number, as containerd reports
            self.finished_at = (self._pump.eof_at if self._pump else None) or datetime.now(UTC)
            if self._cgroup is not None and self._cgroup.oom_killed(code):
                self.reason = "OOMKilled"
            else:
                self.reason = "Completed" if code == 0 else "Error"
            self.exit_code = code

    def _signal(self, sig: int) -> None:
        if self._pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, sig)

    def stop(self, grace_seconds: float) -> int:
        """SIGTERM to PID 1, SIGKILL after the grace period; the PID namespace dies with PID 1 (the whole tree)."""
        if self.poll() is not None:
            return self.exit_code
        self._signal(signal.SIGTERM)
        try:
            return self.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            return self.wait()

    def exec(self, argv: list[str], timeout: float, env: dict[str, str] | None = None) -> tuple[int, str]:
        """Runs argv inside the container (its namespaces, user, groups, env, workdir and cgroup).

        Returns (exit code, stdout+stderr). On timeout the command is killed and the code is -9 (a negative code
        never comes from the command itself)."""
        if self.poll() is not None or not self.pid:
            return 126, f"container {self.spec.name} is not running\n"
        inner = [
            tools()["nsenter"],
            f"--target={self.pid}",
            "--mount",
            "--uts",
            "--net",
            "--pid",
            f"--wdns={self._workdir}",
            "--",
            *self._setpriv,
            "--",
            *argv,
        ]
        if self._cgroup is not None:  # join the container's memory cgroup first, as runc exec does
            inner = ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self._cgroup.procs), *inner]
        proc = subprocess.Popen(
            inner,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**self._env, **(env or {})},
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
            rc = proc.returncode
            return (128 - rc if rc < 0 else rc), out.decode(errors="replace")
        except subprocess.TimeoutExpired:
            # The command's processes share nsenter's process group. nsenter itself stays alive to reap its child:
            # an orphan of the exec would go to the host's init, and the container's end would wait for that.
            for _ in range(2):  # again for what forked meanwhile
                _kill_process_group(proc.pid, but=proc.pid)
            try:
                out, _ = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:  # something inside still holds the pipe
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.kill()
                proc.wait()
                out = b""
            return -signal.SIGKILL, out.decode(errors="replace")

    def cleanup(self) -> None:
        """Kills what is left (SIGKILL), then removes the memory cgroup. Call once the container is done with."""
        if self.poll() is None and self._proc is not None:
            self._signal(signal.SIGKILL)
            self.wait()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        if self._cgroup is not None:
            self._cgroup.remove()


def _plan(spec: ContainerSpec, who: Identity, env: dict[str, str], workdir: str, cgroup: MemoryCgroup | None):
    image = spec.image
    files = [(path, c.encode() if isinstance(c, str) else c, mode, 0, 0) for path, (c, mode) in image.files.items()]
    files.append(("/etc/passwd", "".join(f"{line}\n" for line in image.passwd).encode(), image.passwd_mode, 0, 0))
    files.append(("/etc/group", "".join(f"{line}\n" for line in image.group_lines).encode(), 0o644, 0, 0))
    # The image's own (locked) shadow files: the host's password hashes stay out of root containers.
    names = [line.split(":")[0] for line in image.passwd]
    groups = [line.split(":") for line in image.group_lines]
    shadow = "".join(f"{n}:*:19000:0:99999:7:::\n" for n in names)
    gshadow = "".join(f"{g[0]}:*::{g[3] if len(g) > 3 else ''}\n" for g in groups)
    files += [("/etc/shadow", shadow.encode(), 0o640, 0, 42), ("/etc/gshadow", gshadow.encode(), 0o640, 0, 42)]
    if spec.hostname:
        files.append(("/etc/hostname", f"{spec.hostname}\n".encode(), 0o644, 0, 0))
    mounts = [(str(m.source), m.target, m.read_only) for m in spec.mounts]
    for source, target in ((spec.hosts_file, "/etc/hosts"), (spec.resolv_conf, "/etc/resolv.conf")):
        if source is not None:
            mounts.append((str(source), target, True))
    for source, target, _ in mounts:
        if not os.path.exists(source):
            raise FileNotFoundError(f"mount source {source} (for {target}) does not exist on the node")
        if not target.startswith("/"):
            raise ValueError(f"mount target {target!r} must be an absolute path")
    return {
        "cgroup_procs": str(cgroup.procs) if cgroup else None,
        "netns": str(spec.netns) if spec.netns is not None else None,
        "hostname": spec.hostname,
        "host_paths": [list(p) for p in image.host_paths],
        "dirs": [list(d) for d in image.dirs],
        "files": files,
        "mounts": mounts,
        "read_only_root": spec.read_only_root,
        "workdir": workdir,
        "shm_size": SHM_SIZE,
        "argv": container_argv(image, spec.command, spec.args, spec.env),
        "env": env,
        "setpriv": setpriv_argv(who),
    }


def _read_status(fd: int, deadline: float) -> str | None:
    """None once the init has said "ready" and exec'ed (the exec closes the pipe), else why it failed."""
    data = b""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while chunk := (os.read(fd, 4096) if sel.select(max(0.0, deadline - time.monotonic())) else None):
            data += chunk
    if chunk is None:
        return f"container init did not finish within {START_TIMEOUT:.0f}s"
    text = data.decode(errors="replace").strip()
    if text == "ready":
        return None
    error = text.rpartition("error ")[2] if "error " in text else ""
    return error or "container init died before the exec (see the container log)"


def _wait_for_workload_exec(proc: subprocess.Popen, deadline: float) -> None:
    """Returns once PID 1 is the workload, not setpriv any more (or has exited): start() returns a running
    container, so an exec probe right away sees the workload as PID 1."""
    comm = Path(f"/proc/{proc.pid}/comm")
    with contextlib.suppress(OSError):
        while comm.read_text() == "setpriv\n" and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.0005)


_spawn_lock = threading.Lock()


def _spawn_in_new_pid_namespace(argv: list[str], **popen_kwargs) -> subprocess.Popen:
    """Popen whose child is PID 1 of a new PID namespace, while the caller's own children stay where they were.

    CLONE_NEWPID only changes the namespace the calling thread's next children go to, so the thread switches to
    a new one around the fork and back to its own (setns) right after; the lock keeps other starts out."""
    with _spawn_lock:
        own = os.open("/proc/thread-self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if libc.unshare(CLONE_NEWPID) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"unshare(CLONE_NEWPID): {os.strerror(err)}")
            try:
                return subprocess.Popen(argv, **popen_kwargs)
            finally:
                if libc.setns(own, CLONE_NEWPID) != 0:  # cannot fail for our own namespace; never go on without it
                    err = ctypes.get_errno()
                    raise SystemExit(f"setns back to the node's PID namespace failed: {os.strerror(err)}")
        finally:
            os.close(own)


def _kill_process_group(pgid: int, but: int) -> None:
    """SIGKILL to every process of a process group except one (from /proc/<pid>/stat's pgrp field)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == but:
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
            if int(fields[2]) == pgid:
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, IndexError, ValueError):
            pass  # gone meanwhile


def _start_error(spec: ContainerSpec, started: datetime, message: str) -> Container:
    now = datetime.now(UTC)
    return Container(spec, 0, started, exit_code=128, reason="StartError", message=message, finished_at=now)


def start(spec: ContainerSpec) -> Container:
    """Starts the container. Any failure before the workload's exec (a missing mount source, a command not in
    PATH, a view that cannot be built, a node that cannot run containers) gives a Container that has already
    exited with reason StartError, exit code 128 and the cause in `message`, as containerd reports it."""
    started = datetime.now(UTC)
    who = identity(spec)
    env = container_env(spec, who)
    workdir = spec.working_dir or spec.image.workdir or "/"
    cgroup = None
    try:
        tools()
        base = memory_cgroup_base(spec.cgroup_parent)
        if base is not None:
            cgroup = MemoryCgroup(base / f"{spec.name}-{uuid.uuid4().hex[:12]}", spec.memory_limit)
        elif spec.memory_limit is not None:
            log.warning("%s: no cgroup v1 memory controller: memory limit not enforced", spec.name)
        plan = marshal.dumps(_plan(spec, who, env, workdir, cgroup))
    except (OSError, ValueError, RuntimeUnavailable) as error:
        if cgroup is not None:
            cgroup.remove()
        return _start_error(spec, started, str(error))

    plan_r, plan_w = os.pipe()
    status_r, status_w = os.pipe()
    try:
        proc = _spawn_in_new_pid_namespace(
            [sys.executable, "-I", "-S", str(INIT_SCRIPT), str(plan_r), str(status_w)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(plan_r, status_w),
            env={},
            start_new_session=True,
        )
    except OSError as error:  # out of pids, fds, memory...
        for fd in (plan_w, status_r):
            os.close(fd)
        if cgroup is not None:
            cgroup.remove()
        return _start_error(spec, started, f"spawning the container init: {error}")
    finally:
        os.close(plan_r)
        os.close(status_w)
    pump = LogPump(spec.log_path, proc.stdout, proc.stderr)
    pump.start()
    with contextlib.suppress(BrokenPipeError), os.fdopen(plan_w, "wb") as f:  # died early: its status says why
        f.write(plan)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        error = _read_status(status_r, deadline)
    finally:
        os.close(status_r)
    if error is None:
        _wait_for_workload_exec(proc, deadline)
    container = Container(
        spec=spec,
        pid=proc.pid,
        started_at=started,
        _proc=proc,
        _pidfd=os.pidfd_open(proc.pid),  # our child: its pid cannot be reused before we reap it
        _cgroup=cgroup,
        _pump=pump,
        _env=env,
        _setpriv=setpriv_argv(who),
        _workdir=workdir,
    )
    if error is not None:
        container._signal(signal.SIGKILL)
        container.wait()
        os.close(container._pidfd)
        container._pidfd, container.pid = None, 0
        container.exit_code, container.reason, container.message = 128, "StartError", error
    return container

"""The container init step: builds one container's filesystem view, then execs the workload through setpriv.

Run by runtime.start() as `python -I -S container_init.py <plan-fd> <status-fd>`, spawned as PID 1 of a fresh
PID namespace, as root. It joins the memory cgroup and the pod's network namespace, unshares its own mount and
UTS namespaces, builds the view and execs the workload. The plan is a marshal'ed dict (runtime.py builds it).
The status pipe gets "ready" and is closed by the exec, or gets "error <message>" (nothing is exec'ed; the
message also goes to stderr, i.e. the container log). Stdlib only, no json/socket imports: this runs once per
container start, so its import time is start overhead.

The view is a per-container tmpfs root (pivot_root'ed into), holding:
- the host's system directories (/etc, /usr, /var; /bin, /lib... as the host has them, symlinks stay symlinks)
  as overlays whose upper layer is per-container tmpfs: a root container writes its own copy (a container
  layer), the host is never written, and mount points can be created anywhere (e.g. /etc/git-secret); host
  directories mounted below them are bound over read-only;
- empty image directories (/home, /root, /opt, /tmp, /run, ...): nothing else of the host (/work, /root,
  /home, /tmp, /opt, /mnt, ... and unknown top-level entries) is reachable;
- the image's host paths (venv, interpreter), read-only bind mounts; the image's dirs and files;
- a fresh /proc (read-only /proc/sys etc., /proc/kcore etc. masked), /sys read-only, a minimal /dev tmpfs with
  the usual nodes, a new devpts instance and a fresh /dev/shm;
then, with read_only_root, every mount read-only (mount_setattr AT_RECURSIVE) except /dev and /proc, checked
in /proc/self/mountinfo; then the volume mounts, each with its own read-only flag.
"""

import _signal  # the builtin behind `signal`, without its enum import time
import contextlib
import ctypes
import marshal
import os
import sys

libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWNET = 0x20000, 0x4000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x2, 0x4, 0x8
MS_BIND, MS_REC, MS_PRIVATE, MS_SLAVE = 0x1000, 0x4000, 0x40000, 0x80000
MNT_DETACH = 0x2
AT_FDCWD, AT_EMPTY_PATH, AT_RECURSIVE = -100, 0x1000, 0x8000
OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC = 0x1, os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY = 0x1
# The new mount API has the same numbers on every architecture; pivot_root does not (and has no libc wrapper).
SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
SYS_RT_SIGACTION = {"x86_64": 13, "aarch64": 134}

# The host's /tmp, covered in this private mount namespace only; volume sources are cloned before it is covered.
STAGE = "/tmp"  # noqa: S108
# Host top-level entries that make up the image's base system; anything else of the host stays out.
HOST_SYSTEM = ("bin", "etc", "lib", "lib32", "lib64", "libx32", "sbin", "usr", "var")
SKELETON = (
    ("boot", 0o755),
    ("dev", 0o755),
    ("home", 0o755),
    ("media", 0o755),
    ("mnt", 0o755),
    ("opt", 0o755),
    ("proc", 0o555),
    ("root", 0o700),
    ("run", 0o755),
    ("srv", 0o755),
    ("sys", 0o555),
    ("tmp", 0o1777),
)
# Inside the host's /var overlay: directories the image has empty (opaque upper dirs hide the host's content).
OPAQUE = {"var": (("tmp", 0o1777),)}
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
)
PROC_READ_ONLY = ("bus", "fs", "irq", "sys", "sysrq-trigger")
PROC_MASKED = ("kcore", "keys", "latency_stats", "timer_list", "timer_stats", "sched_debug")


class MountAttr(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("attr_set", "attr_clr", "propagation", "userns_fd")]


def _check(ret, what):
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _b(path):
    return os.fsencode(path) if path is not None else None


def mount(source, target, fstype=None, flags=0, data=None):
    _check(libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), f"mount {fstype or ''} {target}")


def umount(target, flags=0):
    _check(libc.umount2(_b(target), flags), f"umount {target}")


def clone_tree(path, read_only):
    """A detached recursive bind mount of `path` (an fd), made read-only now if asked."""
    fd = _check(
        libc.syscall(SYS_OPEN_TREE, AT_FDCWD, _b(path), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE),
        f"open_tree {path}",
    )
    if read_only:
        set_attr(fd, MOUNT_ATTR_RDONLY, 0, recursive=True)
    return fd


def attach(fd, target):
    _check(libc.syscall(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, _b(target), MOVE_MOUNT_F_EMPTY_PATH), f"move_mount {target}")
    os.close(fd)


def set_attr(where, attr_set, attr_clr, recursive):
    """mount_setattr on a path or a mount fd."""
    attr = MountAttr(attr_set=attr_set, attr_clr=attr_clr)
    flags = AT_RECURSIVE if recursive else 0
    if isinstance(where, int):
        dfd, path, flags = where, b"", flags | AT_EMPTY_PATH
    else:
        dfd, path = AT_FDCWD, _b(where)
    _check(
        libc.syscall(SYS_MOUNT_SETATTR, dfd, path, flags, ctypes.byref(attr), ctypes.sizeof(attr)),
        f"mount_setattr {where}",
    )


def bind(source, target, read_only=False, recursive=False):
    mount(source, target, None, MS_BIND | (MS_REC if recursive else 0))
    if read_only:
        set_attr(target, MOUNT_ATTR_RDONLY, 0, recursive=recursive)


def pivot_into(root):
    """pivot_root(".", ".") as runc does: the old root ends up stacked on the new one and is detached."""
    number = SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise OSError(f"pivot_root: unsupported architecture {os.uname().machine} (add its syscall number)")
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY)
    os.chdir(root)
    _check(libc.syscall(number, b".", b"."), "pivot_root")
    os.fchdir(old)
    os.close(old)
    mount(None, ".", None, MS_SLAVE | MS_REC)
    umount(".", MNT_DETACH)
    os.chdir("/")


def mount_points():
    """(mount point, options) of every mount, from mountinfo, with its octal escapes decoded."""
    with open("/proc/self/mountinfo", "rb") as f:
        lines = f.read().decode("utf-8", "surrogateescape").splitlines()
    result = []
    for line in lines:
        fields = line.split(" ")
        point = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
        result.append((point.replace("\\134", "\\"), fields[5].split(",")))
    return result


def _under(path, parent):
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def make_dirs(path, mode=0o755):
    """mkdir -p that creates missing parents root-owned with `mode` (the view is built as root, umask 0)."""
    if os.path.isdir(path):
        return
    make_dirs(os.path.dirname(path), mode)
    os.mkdir(path, mode)


def ensure_mount_point(target, is_dir):
    """Create a missing mount point in the view (on the tmpfs root or in an overlay's upper layer)."""
    if os.path.lexists(target):
        return
    make_dirs(os.path.dirname(target))
    if is_dir:
        os.mkdir(target, 0o755)
    else:
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))


def build_root(stage, host_submounts):
    """The tmpfs root: the skeleton, and the host's system dirs as overlays with per-container upper layers."""
    root, layers = f"{stage}/root", f"{stage}/layers"
    os.mkdir(root, 0o755)
    os.mkdir(layers, 0o700)
    bind(root, root)  # pivot_root needs the new root to be a mount point
    for name, mode in SKELETON:
        os.mkdir(f"{root}/{name}", mode)
    for name in HOST_SYSTEM:
        host = f"/{name}"
        if os.path.islink(host):
            os.symlink(os.readlink(host), f"{root}/{name}")
        elif os.path.isdir(host):
            os.mkdir(f"{root}/{name}", 0o755)
            st = os.stat(host)
            upper, work = f"{layers}/{name}/upper", f"{layers}/{name}/work"
            make_dirs(work)
            os.mkdir(upper, st.st_mode & 0o7777)
            os.chown(upper, st.st_uid, st.st_gid)
            for sub, mode in OPAQUE.get(name, ()):
                os.mkdir(f"{upper}/{sub}", mode)
                os.setxattr(f"{upper}/{sub}", "trusted.overlay.opaque", b"y")
            mount("overlay", f"{root}/{name}", "overlay", 0, f"lowerdir={host},upperdir={upper},workdir={work}")
            # A directory mounted below it on the host (/usr/local on its own disk, say) is not in the lower
            # layer: bound over the overlay, read-only. File mounts (an outer container's /etc/hosts) stay out:
            # the container gets its own from the spec.
            bound = []
            for point in sorted(host_submounts):
                nested = any(_under(point, b) for b in bound)
                if point != host and _under(point, host) and os.path.isdir(point) and not nested:
                    bind(point, f"{root}{point}", read_only=True, recursive=True)
                    bound.append(point)
    return root


def build_dev(root, shm_size):
    dev = f"{root}/dev"
    mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k")
    for node in DEV_NODES:
        if os.path.exists(f"/dev/{node}"):
            os.close(os.open(f"{dev}/{node}", os.O_CREAT | os.O_WRONLY, 0o666))
            bind(f"/dev/{node}", f"{dev}/{node}")
    for name, target in DEV_LINKS:
        os.symlink(target, f"{dev}/{name}")
    os.mkdir(f"{dev}/pts", 0o755)
    mount("devpts", f"{dev}/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5")
    os.mkdir(f"{dev}/shm", 0o1777)
    mount("shm", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"mode=1777,size={shm_size}")


def build_proc_sys(root):
    proc = f"{root}/proc"
    mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for name in PROC_READ_ONLY:
        if os.path.exists(f"{proc}/{name}"):
            bind(f"{proc}/{name}", f"{proc}/{name}", read_only=True, recursive=True)
    for name in PROC_MASKED:
        if os.path.isfile(f"{proc}/{name}"):
            bind(f"{root}/dev/null", f"{proc}/{name}")
    bind("/sys", f"{root}/sys", read_only=True, recursive=True)


def make_read_only():
    """Every mount read-only except /dev (tmpfs, nodes, pts, shm) and /proc; then check that it holds."""
    set_attr("/", MOUNT_ATTR_RDONLY, 0, recursive=True)
    set_attr("/dev", 0, MOUNT_ATTR_RDONLY, recursive=True)
    set_attr("/proc", 0, MOUNT_ATTR_RDONLY, recursive=False)
    writable = [p for p, opts in mount_points() if "rw" in opts and p != "/proc" and not _under(p, "/dev")]
    if writable:
        raise OSError(f"read-only root: mounts still writable: {writable}")


def find_executable(name, env, workdir):
    if "/" in name:
        path = name if name.startswith("/") else os.path.join(workdir, name)
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    for d in env.get("PATH", "").split(":"):
        path = os.path.join(d or ".", name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def reset_signals():
    """Like runc: the workload starts with every signal at its default disposition, including the two
    real-time signals glibc reserves (and hides from Python), which a parent may have left ignored."""
    valid = _signal.valid_signals()
    for sig in valid:
        if sig not in (_signal.SIGKILL, _signal.SIGSTOP):
            with contextlib.suppress(OSError, ValueError, RuntimeError):
                _signal.signal(sig, _signal.SIG_DFL)
    number = SYS_RT_SIGACTION.get(os.uname().machine)
    default = (ctypes.c_ulong * 4)()  # struct kernel_sigaction {handler = SIG_DFL, flags, restorer, mask}: all 0
    for sig in range(1, 65):
        if sig not in valid and number is not None:
            libc.syscall(number, sig, ctypes.byref(default), None, 8)


def run(plan, status):
    if plan["cgroup_procs"]:
        with open(plan["cgroup_procs"], "w") as f:
            f.write("0")  # this process, before anything of the container runs (children inherit it)
    if plan["netns"]:
        fd = os.open(plan["netns"], os.O_RDONLY | os.O_CLOEXEC)
        _check(libc.setns(fd, CLONE_NEWNET), f"setns {plan['netns']}")
        os.close(fd)
    _check(libc.unshare(CLONE_NEWNS | CLONE_NEWUTS), "unshare mount+uts")
    if plan["hostname"]:
        name = plan["hostname"].encode()
        _check(libc.sethostname(name, len(name)), "sethostname")
    os.umask(0)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    # Clone every host source before STAGE covers part of the host (a volume may live under /tmp).
    host_paths = [(clone_tree(src, True), target) for src, target in plan["host_paths"]]
    volumes = [(clone_tree(src, ro), target, os.path.isdir(src)) for src, target, ro in plan["mounts"]]
    # An image path a volume will cover (a checkout under /tmp, where pods mount an emptyDir): the image's
    # files must still be there, as they are in a real image whose /home, /usr are never under /tmp.
    covered = [
        (clone_tree(src, True), target)
        for src, target in plan["host_paths"]
        if any(_under(target, volume) for _, volume, _ in volumes)
    ]
    submounts = [p for p, _ in mount_points() if p != "/"]
    mount("tmpfs", STAGE, "tmpfs", 0, "mode=0700")
    root = build_root(STAGE, submounts)
    build_dev(root, plan["shm_size"])
    build_proc_sys(root)
    pivot_into(root)

    for path, uid, gid, mode in plan["dirs"]:
        make_dirs(path)
        os.chown(path, uid, gid)
        os.chmod(path, mode)
    for fd, target in host_paths:
        make_dirs(target)
        attach(fd, target)
    for path, content, mode, uid, gid in plan["files"]:
        make_dirs(os.path.dirname(path))
        if os.path.lexists(path):
            os.unlink(path)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, mode)
        os.write(fd, content)
        os.close(fd)
        os.chown(path, uid, gid)
    make_dirs(plan["workdir"])
    # Mount points now, while the root is writable; one inside an earlier volume is made in that volume later.
    targets = [target for _, target, _ in volumes]
    for i, (_, target, is_dir) in enumerate(volumes):
        if not any(_under(target, earlier) for earlier in targets[:i]):
            ensure_mount_point(target, is_dir)
    if plan["read_only_root"]:
        make_read_only()
    for fd, target, is_dir in volumes:
        ensure_mount_point(target, is_dir)
        attach(fd, target)
    for fd, target in covered:
        make_dirs(target)
        attach(fd, target)

    os.chdir(plan["workdir"])
    argv, env = plan["argv"], plan["env"]
    if not argv:
        raise OSError("no command: the image has no entrypoint/cmd and the container sets no command/args")
    if find_executable(argv[0], env, plan["workdir"]) is None:
        raise OSError(f'exec: "{argv[0]}": executable file not found in $PATH')
    os.umask(0o022)  # the view was built with umask 0; the workload gets the runtime default (runc's)
    reset_signals()
    os.write(status, b"ready\n")
    os.execve(plan["setpriv"][0], [*plan["setpriv"], "--", *argv], env)  # noqa: S606 (argv, not a shell line)


def main():
    plan_fd, status = int(sys.argv[1]), int(sys.argv[2])
    os.set_inheritable(status, False)  # the workload must not inherit it
    with os.fdopen(plan_fd, "rb") as f:
        plan = marshal.loads(f.read())  # noqa: S302 (from runtime.start, our parent, through a pipe)
    try:
        run(plan, status)
    except Exception as exc:
        message = f"{exc}".replace("\n", " ")
        os.write(status, f"error {message}\n".encode(errors="replace"))
        os.write(2, f"container init: {message}\n".encode(errors="replace"))
        os._exit(1)


if __name__ == "__main__":
    main()

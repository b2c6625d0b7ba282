"""The local node's container runtime (eksflow_dev.cluster.node.runtime) running real containers of the node's
images: filesystem view, user, env, argv, exit reasons, memory limit, exec, stop, the platform entrypoint."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from eksflow_dev.cluster.node import image as images
from eksflow_dev.cluster.node import runtime
from eksflow_dev.cluster.node.runtime import Container, ContainerSpec, Mount

REPO = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024
UNREACHABLE_DB = "postgresql+psycopg2://airflow:airflow@127.0.0.1:9/airflow"  # port 9 (discard): refused
CRI_LINE = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z) (stdout|stderr) ([FP]) (.*)$", re.DOTALL)


@pytest.fixture(scope="module", autouse=True)
def node_can_run_containers():
    try:
        runtime.tools()
    except runtime.RuntimeUnavailable as exc:
        pytest.skip(f"CANNOT RUN CONTAINERS HERE: {exc}")
    if not Path(images.DUMB_INIT).is_file():
        pytest.skip(f"MISSING {images.DUMB_INIT}: the platform image needs it (apt-get install dumb-init)")
    if sys.prefix == sys.base_prefix:
        pytest.skip("MISSING venv: the images expose the project's venv; run .venv/bin/pytest")


@pytest.fixture(scope="module")
def platform() -> images.ImageSpec:
    return images.resolve("eksflow:local")


@pytest.fixture
def make(tmp_path, platform) -> Callable[..., ContainerSpec]:
    """A ContainerSpec like the chart's control-plane containers: read-only root, emptyDirs at /tmp and
    /opt/airflow/logs, airflow.cfg as a read-only single-file mount."""
    counter = iter(range(1000))

    def make(**overrides) -> ContainerSpec:
        n = next(counter)
        pod = tmp_path / f"pod{n}"
        for d in ("tmp", "logs"):
            (pod / d).mkdir(parents=True)
            (pod / d).chmod(0o777)  # an emptyDir
        (pod / "airflow.cfg").write_text("[core]\nload_examples = False\n")
        fields = {
            "name": f"c{n}",
            "image": platform,
            "command": None,
            "args": None,
            "env": {"CONNECTION_CHECK_MAX_COUNT": "0"},
            "working_dir": None,
            "run_as_user": None,
            "run_as_group": None,
            "supplemental_groups": [],
            "read_only_root": True,
            "mounts": [
                Mount(pod / "tmp", "/tmp"),
                Mount(pod / "logs", "/opt/airflow/logs"),
                Mount(pod / "airflow.cfg", "/opt/airflow/airflow.cfg", read_only=True),
            ],
            "log_path": pod / "container.log",
            "hostname": f"pod-{n}",
        }
        fields.update(overrides)
        return ContainerSpec(**fields)

    return make


def read_log(path: Path) -> dict[str, str]:
    """stdout and stderr text from a CRI log, checking every line's format."""
    text = {"stdout": b"", "stderr": b""}
    for raw in path.read_bytes().split(b"\n")[:-1]:
        match = CRI_LINE.match(raw)
        assert match, f"not a CRI log line: {raw[:200]!r}"
        stream, tag, content = match.group(3).decode(), match.group(4), match.group(5)
        text[stream] += content + (b"\n" if tag == b"F" else b"")
    return {k: v.decode(errors="replace") for k, v in text.items()}


def run(spec: ContainerSpec, timeout: float = 120) -> tuple[Container, dict[str, str]]:
    container = runtime.start(spec)
    try:
        container.wait(timeout)
    finally:
        container.stop(0)
        container.cleanup()
    return container, read_log(spec.log_path)


def run_all(specs: list[ContainerSpec]) -> list[tuple[Container, dict[str, str]]]:
    with ThreadPoolExecutor(len(specs)) as pool:
        return list(pool.map(run, specs))


def pids_in_namespace(pid: int) -> list[int]:
    """Host pids of the processes in the PID namespace of `pid`."""
    target = os.stat(f"/proc/{pid}/ns/pid").st_ino
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/pid").st_ino == target:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone meanwhile
        return b""


def still_in_namespace(pids: list[int], ns_inode: int) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if os.stat(f"/proc/{pid}/ns/pid").st_ino == ns_inode:
                alive.append(pid)
        except OSError:
            pass
    return alive


def wait_for(condition: Callable[[], bool], what: str, tries: int = 400) -> None:
    for _ in range(tries):
        if condition():
            return
        subprocess.run(["sleep", "0.05"], check=True)
    raise AssertionError(f"never happened: {what}")


PROBE = """
import errno, json, os, shutil, socket, subprocess, sys

def attempt(action):
    try:
        action()
        return "ok"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    except ImportError as exc:
        return type(exc).__name__

def write(path):
    with open(path, "w") as f:
        f.write("x")

def caps(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1], 16)

host_secret, repo = sys.argv[1], sys.argv[2]
print(json.dumps({
    "id_un": subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip(),
    "ids": [os.getuid(), os.getgid(), os.getgroups()],
    "umask": os.umask(0),
    "writes": {p: attempt(lambda p=p: write(p)) for p in [
        "/x", "/opt/airflow/x", "/etc/x", "/usr/local/x", "/home/airflow/x", "/var/tmp/x", sys.prefix + "/x",
        "/opt/airflow/airflow.cfg", "/tmp/x", "/opt/airflow/logs/x", "/dev/shm/x"]},
    "cfg": open("/opt/airflow/airflow.cfg").read(),
    "list_root": attempt(lambda: os.listdir("/root")),
    "visible": {p: os.path.exists(p) for p in [
        host_secret, "/root/.bashrc", repo + "/Dockerfile", repo + "/tests", repo + "/.git", repo + "/src"]},
    "importable": {m: attempt(lambda m=m: __import__(m)) for m in ["eksflow.kit", "eksflow_dev"]},
    "python": [sys.executable, sys.prefix, shutil.which("python"), shutil.which("airflow")],
    "argv": sys.argv[3:],
    "env": {k: os.environ.get(k) for k in ["HOME", "AIRFLOW_HOME", "GREETING", "HOSTNAME", "PIP_USER", "LD_PRELOAD"]},
    "pid1": open("/proc/1/cmdline", "rb").read().split(b"\\0")[:3],
    "hostname": socket.gethostname(),
    "cap_eff": caps("CapEff"),
    "cap_bnd": caps("CapBnd"),
    "no_new_privs": caps("NoNewPrivs"),
}, default=lambda b: b.decode()))
"""


def test_platform_container_view_user_and_env(make, tmp_path):
    secret = tmp_path / "host-secret"
    secret.write_text("not for containers")
    spec = make(
        args=["python", "-c", PROBE, str(secret), str(REPO), "$(GREETING)", "$$(GREETING)", "$(MISSING)", "a$$b"],
        env={"CONNECTION_CHECK_MAX_COUNT": "0", "GREETING": "hello", "PIP_USER": "true"},
    )
    container, out = run(spec)
    assert (container.exit_code, container.reason) == (0, "Completed"), out
    seen = json.loads(out["stdout"])

    assert seen["id_un"] == "airflow"
    assert seen["ids"] == [50000, 0, [0]]
    assert seen["cap_eff"] == 0 and seen["cap_bnd"] == 0 and seen["no_new_privs"] == 1
    assert seen["umask"] == 0o002  # set by /entrypoint

    writes = seen["writes"]
    for path in ["/x", "/opt/airflow/x", "/etc/x", "/usr/local/x", "/home/airflow/x", "/var/tmp/x"]:
        assert writes[path] != "ok", path
    assert writes["/opt/airflow/airflow.cfg"] == "EROFS"
    assert [p for p, result in writes.items() if result == "ok"] == ["/tmp/x", "/opt/airflow/logs/x", "/dev/shm/x"]
    assert (spec.mounts[0].source / "x").read_text() == "x"  # the emptyDir on the host got it
    assert seen["cfg"] == "[core]\nload_examples = False\n"

    assert seen["list_root"] == "EACCES"
    assert seen["visible"] == {
        str(secret): False,
        "/root/.bashrc": False,
        f"{REPO}/Dockerfile": False,
        f"{REPO}/tests": False,
        f"{REPO}/.git": False,
        f"{REPO}/src": True,  # exposed: the venv's editable install points there
    }
    # As in the image (the Dockerfile installs src/eksflow only): a DAG cannot import the developer tooling.
    assert seen["importable"] == {"eksflow.kit": "ok", "eksflow_dev": "ModuleNotFoundError"}
    assert seen["python"][1:] == [
        "/home/airflow/.local",
        "/home/airflow/.local/bin/python",
        "/home/airflow/.local/bin/airflow",
    ]

    assert seen["argv"] == ["hello", "$(GREETING)", "$(MISSING)", "a$b"]
    assert seen["env"]["HOME"] == "/home/airflow" and seen["env"]["AIRFLOW_HOME"] == "/opt/airflow"
    assert seen["env"]["GREETING"] == "hello" and seen["env"]["HOSTNAME"] == spec.hostname
    assert seen["env"]["PIP_USER"] is None  # unset by /entrypoint
    assert seen["pid1"] == ["/usr/bin/dumb-init", "--", "/entrypoint"]
    assert seen["hostname"] == spec.hostname


def test_root_container_never_writes_the_host(make):
    paths = ["/x", "/etc/eksflow-x", "/usr/eksflow-x", "/opt/airflow/x", f"{sys.prefix}/eksflow-x"]
    script = (
        "for p in " + " ".join(paths) + '; do if touch "$p" 2>/dev/null; then echo "$p ok"; else echo "$p no"; fi; done'
    )
    ro, rw = run_all(
        [
            make(command=["sh", "-c", script], run_as_user=0),
            make(
                command=["sh", "-c", script + "; id -u; cat /proc/self/status /etc/shadow"],
                run_as_user=0,
                read_only_root=False,
            ),
        ]
    )
    assert ro[1]["stdout"].split("\n")[: len(paths)] == [f"{p} no" for p in paths]
    # Without readOnlyRootFilesystem root writes its own layer; the exposed venv stays read-only.
    assert rw[1]["stdout"].split("\n")[: len(paths) + 1] == [f"{p} ok" for p in paths[:-1]] + [f"{paths[-1]} no", "0"]
    assert "CapBnd:\t00000000a80425fb" in rw[1]["stdout"]  # Docker's default capability set
    assert "root:*:" in rw[1]["stdout"]  # the image's shadow file, not the host's
    for p in paths:
        assert not os.path.exists(p), f"a container wrote the host: {p}"


def test_argv_env_and_expansion(make, platform):
    spec = make(
        command=["/bin/echo", "$(GREETING)", "$$(GREETING)", "$(MISSING)", "$(", "a$$b", "$x"],
        args=["$(NAME)-arg"],
        env={"GREETING": "hello world", "NAME": "n", "AIRFLOW_HOME": "/elsewhere"},
    )
    env_spec = make(
        command=["sh", "-c", "umask; pwd; grep SigIgn /proc/self/status; /usr/bin/env"],
        env={"AIRFLOW_HOME": "/elsewhere"},
        working_dir="/opt/airflow/logs",
    )
    (_, echo_out), (_, env_out) = run_all([spec, env_spec])
    assert echo_out["stdout"] == "hello world $(GREETING) $(MISSING) $( a$b $x n-arg\n"
    umask, pwd, ignored, *env_lines = env_out["stdout"].splitlines()
    assert (umask, pwd) == ("0022", "/opt/airflow/logs")  # a command bypasses /entrypoint: the runtime's umask
    assert ignored == "SigIgn:\t0000000000000000"  # nothing of the runtime's own signal handling leaks in
    seen = dict(line.split("=", 1) for line in env_lines)
    assert seen["AIRFLOW_HOME"] == "/elsewhere"  # the container's env over the image's
    assert seen["PATH"] == platform.env["PATH"] and seen["HOME"] == "/home/airflow"
    assert runtime.container_argv(platform, None, None, {}) == ["/usr/bin/dumb-init", "--", "/entrypoint"]
    assert runtime.container_argv(platform, None, ["$(A)"], {"A": "x"})[-1] == "x"
    assert runtime.container_argv(platform, ["$(A)"], None, {"A": "x"}) == ["x"]


def test_exit_codes_start_errors_and_log_format(make, tmp_path):
    long_line = "head -c 40000 /dev/zero | tr '\\0' a; echo; echo to-stderr >&2; exit 3"
    (failed, out), (missing, _) = run_all([make(command=["sh", "-c", long_line]), make(command=["no-such-command"])])
    assert (failed.exit_code, failed.reason) == (3, "Error")
    assert failed.started_at <= failed.finished_at
    assert out == {"stdout": "a" * 40000 + "\n", "stderr": "to-stderr\n"}
    tags = [line.split(b" ")[2] for line in failed.spec.log_path.read_bytes().splitlines()]
    assert tags.count(b"P") == 2  # 40000 bytes: two 16 KiB pieces and the rest
    assert (missing.exit_code, missing.reason) == (128, "StartError")
    assert "no-such-command" in missing.message and "not found" in missing.message
    no_source = runtime.start(make(command=["true"], mounts=[Mount(tmp_path / "absent", "/data")]))
    assert (no_source.poll(), no_source.reason) == (128, "StartError")
    assert "absent" in no_source.message and "does not exist" in no_source.message


def test_memory_limit_oom_kills(make):
    if runtime.memory_cgroup_base("eksflow") is None:
        pytest.skip("MISSING cgroup v1 memory controller (/sys/fs/cgroup/memory): memory limits are not enforced")
    spec = make(command=["python", "-c", "b = bytearray(b'x') * (200 << 20)"], memory_limit=64 * MiB)
    container = runtime.start(spec)
    try:
        cgroup = container.cgroup_path
        assert cgroup is not None and (cgroup / "memory.limit_in_bytes").read_text().strip() == str(64 * MiB)
        container.wait(120)
        assert (container.exit_code, container.reason) == (137, "OOMKilled")
    finally:
        container.stop(0)
        container.cleanup()
    assert not cgroup.exists()


def test_exec_runs_inside_the_container(make):
    container = runtime.start(make(command=["sleep", "300"]))
    try:
        code, pid1 = container.exec(["cat", "/proc/1/cmdline"], timeout=30)
        assert (code, pid1) == (0, "sleep\0" + "300\0")
        code, mounts = container.exec(["cat", "/proc/self/mountinfo"], timeout=30)
        assert code == 0 and mounts == Path(f"/proc/{container.pid}/mountinfo").read_text()
        code, out = container.exec(
            ["sh", "-c", 'id -un; pwd; hostname; echo "$AIRFLOW_HOME $EXTRA"'], 30, {"EXTRA": "e"}
        )
        assert (code, out) == (0, f"airflow\n/opt/airflow\n{container.spec.hostname}\n/opt/airflow e\n")
        assert container.exec(["sh", "-c", "exit 4"], timeout=30)[0] == 4

        ns = os.stat(f"/proc/{container.pid}/ns/pid").st_ino
        code, _ = container.exec(["sh", "-c", "sleep 123 & sleep 124"], timeout=0.5)
        assert code == -9
        leftovers = [p for p in pids_in_namespace(container.pid) if re.search(rb"12[34]", cmdline(p))]
        assert still_in_namespace(leftovers, ns) == [], "the timed-out exec left processes behind"
    finally:
        container.stop(0)
        container.cleanup()


def test_stop_kills_the_whole_tree(make):
    container = runtime.start(make(command=["sh", "-c", "sleep 300 & sleep 301 & sleep 302"]))
    ns = os.stat(f"/proc/{container.pid}/ns/pid").st_ino
    wait_for(lambda: len(pids_in_namespace(container.pid)) >= 4, "the container's four processes")
    pids = pids_in_namespace(container.pid)
    assert container.stop(0.5) == 137  # sh as PID 1 has no SIGTERM handler: the grace period ends in SIGKILL
    assert container.reason == "Error"
    assert still_in_namespace(pids, ns) == []
    container.cleanup()


def test_stop_is_forwarded_by_dumb_init(make):
    script = "trap 'echo got-term; exit 0' TERM; echo ready; sleep 300 & wait"
    container = runtime.start(make(args=["bash", "-c", script]))
    wait_for(lambda: "ready" in read_log(container.spec.log_path)["stdout"], "the container's trap")
    assert container.stop(60) == 0  # dumb-init sent SIGTERM to the group, bash exited 0, dumb-init with it
    assert container.reason == "Completed"
    assert "got-term" in read_log(container.spec.log_path)["stdout"]
    container.cleanup()


def test_entrypoint_waits_for_the_db_only_for_commands_through_it(make):
    no_db = {"CONNECTION_CHECK_MAX_COUNT": "1", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": UNREACHABLE_DB}
    specs = {
        "python args, check on": make(args=["python", "-c", "print('payload-ran')"], env=no_db),
        "airflow args, check on": make(args=["airflow", "version"], env=no_db),
        "python args, check off": make(
            args=["python", "-c", "print('payload-ran')"], env={**no_db, "CONNECTION_CHECK_MAX_COUNT": "0"}
        ),
        "airflow args, check off": make(args=["version"], env={**no_db, "CONNECTION_CHECK_MAX_COUNT": "0"}),
        "command bypasses /entrypoint": make(command=["python", "-c", "print('payload-ran')"], env=no_db),
    }
    results = dict(zip(specs, run_all(list(specs.values())), strict=True))
    for name in ("python args, check on", "airflow args, check on"):
        container, out = results[name]
        assert container.exit_code == 1, name
        assert "ERROR! Maximum number of retries (1) reached." in out["stdout"], name
        assert "$ airflow db check" in out["stdout"] and "Connection refused" in out["stdout"], name
        assert not {"payload-ran", "3.3.2"} & set(out["stdout"].splitlines()), name
    assert results["python args, check off"][1]["stdout"] == "payload-ran\n"
    assert results["airflow args, check off"][1]["stdout"] == "3.3.2\n"
    assert results["command bypasses /entrypoint"][1]["stdout"] == "payload-ran\n"


def test_entrypoint_and_arbitrary_uids(make):
    """OpenShift style: any uid with gid 0 works (a passwd entry is added when /etc/passwd is writable, i.e.
    without a read-only root: the image makes it group-0 writable); another gid is refused."""
    script = ["bash", "-c", "whoami; echo $HOME; stat -c %a /etc/passwd"]
    (wrong_gid, wrong_out), (added, added_out), (ro, ro_out) = run_all(
        [
            make(args=["python", "-c", "print('payload-ran')"], run_as_user=1234, run_as_group=1234),
            make(args=script, run_as_user=1234, run_as_group=0, read_only_root=False),
            make(args=script, run_as_user=1234, run_as_group=0),
        ]
    )
    assert wrong_gid.exit_code == 1 and "ERROR! You should run the image with GID=0" in wrong_out["stderr"]
    assert (added.exit_code, added_out["stdout"]) == (0, "default\n/home/airflow\n664\n")
    assert ro.exit_code == 0 and ro_out["stdout"] == "/home/airflow\n664\n"  # whoami fails: no entry, ro /etc


def test_gitsync_image(make, tmp_path):
    gitsync = images.resolve("registry.k8s.io/git-sync/git-sync:v4.4.2")
    secret = tmp_path / "git-secret"
    secret.mkdir()
    (secret / "known_hosts").write_text("example.com ssh-ed25519 AAAA\n")
    root = tmp_path / "git"
    root.mkdir(mode=0o777)
    root.chmod(0o777)
    spec = make(
        image=gitsync,
        command=["sh", "-c", "id; cat /etc/passwd; git --version; ssh -V 2>&1; cat /etc/git-secret/known_hosts; pwd"],
        mounts=[*make().mounts[:1], Mount(root, "/git"), Mount(secret, "/etc/git-secret", read_only=True)],
    )
    container, out = run(spec)
    assert container.exit_code == 0, out
    lines = out["stdout"].splitlines()
    assert lines[0] == "uid=65533(git-sync) gid=65533(git-sync) groups=65533(git-sync)"
    passwd = [line for line in lines if line.count(":") == 6]
    assert "git-sync:x:65533:65533::/tmp:/sbin/nologin" in passwd
    assert not [line for line in passwd if line.split(":")[2] == "50000"]
    assert any(line.startswith("git version") for line in lines)
    assert any(line.startswith("OpenSSH") for line in lines)
    assert lines[-2:] == ["example.com ssh-ed25519 AAAA", "/tmp"]
    assert not os.path.exists("/etc/git-secret")  # the mount point lives in the container's /etc layer


def test_network_namespace_of_the_sandbox(make):
    unshare = shutil.which("unshare")
    sandbox = subprocess.Popen([unshare, "--net", "sleep", "300"])
    try:
        netns = Path(f"/proc/{sandbox.pid}/ns/net")
        wait_for(lambda: netns.stat().st_ino != Path("/proc/self/ns/net").stat().st_ino, "the sandbox netns")
        _, out = run(make(command=["cat", "/proc/net/dev"], netns=netns))
        interfaces = [line.split(":")[0].strip() for line in out["stdout"].splitlines()[2:]]
        assert interfaces == ["lo"]
    finally:
        sandbox.kill()
        sandbox.wait()

"""The local cluster node's pod network, for real: a node process in a network namespace of its own (this file run as
`unshare --net python tests/test_local_network.py node`, driven over JSON lines), pod sandboxes with HTTP servers
in them, the Service proxy, forwarders across namespaces, names from hosts files; plus the relay's TCP semantics and
the DNS files, which need no namespaces."""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import http.client
import http.server
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from eksflow_dev.cluster.node.forward import Forwarder, NetNamespace
from eksflow_dev.cluster.node.forward import main as forward_main
from eksflow_dev.cluster.node.network import PodNetwork, hosts_file, resolv_conf, write_in_place

REPO = Path(__file__).resolve().parents[1]
SBIN = "/usr/sbin:/sbin:/usr/bin:/bin"
TOOLS = {
    name: shutil.which(name) or shutil.which(name, path=SBIN)
    for name in ("ip", "unshare", "nsenter", "mount", "setpriv")
}
MISSING = sorted(name for name, path in TOOLS.items() if path is None)
needs_namespaces = pytest.mark.skipif(
    os.geteuid() != 0 or bool(MISSING),
    reason=f"NOT TESTED: the pod network needs root and {sorted(TOOLS)} (euid {os.geteuid()}, missing {MISSING})",
)
TIMEOUT = 30.0
SERVICE_IP = "10.96.0.10"
HERE = "/proc/self/ns/net"  # the namespace of the process that opens it


# ---------------------------------------------------------------- the node side (runs in its own namespace)


def _node_main() -> None:
    """Sets up a PodNetwork and answers one JSON line per request line on stdin; closes everything at EOF."""
    network = PodNetwork()
    network.setup()
    sandboxes = {}
    forwarders = []

    def create(key):
        sandboxes[key] = network.create_sandbox(key)
        return asdict(sandboxes[key])

    def forward(listen_ns, listen, connect_ns, connect):
        forwarders.append(Forwarder(listen_ns, tuple(listen), connect_ns, tuple(connect)))
        return forwarders[-1].port

    ops = {
        "ready": lambda: network.gateway,
        "create": create,
        "delete": lambda key: network.delete_sandbox(sandboxes.pop(key)),
        "service": lambda ip, ports: network.set_service(ip, {int(port): eps for port, eps in ports.items()}),
        "remove_service": network.remove_service,
        "forward": forward,
        "links": lambda: [name for _, name in socket.if_nameindex()],
    }
    try:
        for line in sys.stdin:
            request = json.loads(line)
            try:
                reply = {"result": ops[request["op"]](*request["args"])}
            except Exception as error:
                reply = {"error": f"{type(error).__name__}: {error}"}
            print(json.dumps(reply), flush=True)
    finally:
        for forwarder in forwarders:
            forwarder.close()
        network.close()


# ---------------------------------------------------------------- helpers on the test side


def _read_line(stream, timeout: float) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([stream], [], [], remaining)[0]:
            break
        chunk = os.read(stream.fileno(), 1)  # byte by byte: nothing after the newline gets swallowed
        if not chunk:
            break
        data += chunk
    return data


class Node:
    """The node process, `unshare --net` from here; stop() closes its network (EOF), else kills it by PID."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [TOOLS["unshare"], "--net", "--", sys.executable, __file__, "node"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO,
        )
        self.pid = self.process.pid
        self.netns = f"/proc/{self.pid}/ns/net"
        try:
            self.gateway = self.call("ready")
        except BaseException:
            self.stop()
            raise

    def call(self, op: str, *args):
        self.process.stdin.write(json.dumps({"op": op, "args": args}).encode() + b"\n")
        self.process.stdin.flush()
        line = _read_line(self.process.stdout, TIMEOUT)
        if not line.endswith(b"\n"):
            raise AssertionError(f"node gave no answer to {op}{args} (exit code {self.process.poll()})")
        reply = json.loads(line)
        if "error" in reply:
            raise AssertionError(f"node {op}{args}: {reply['error']}")
        return reply["result"]

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(TIMEOUT)


def _socket_in(netns: str) -> socket.socket:
    namespace = NetNamespace(netns)
    try:
        sock = namespace.socket()
    finally:
        namespace.close()
    sock.settimeout(TIMEOUT)
    return sock


def _get(netns: str, host: str, port: int, path: str = "/who") -> str:
    """GET over a connection made from network namespace `netns` (no proxy settings apply)."""
    sock = _socket_in(netns)
    sock.connect((host, port))
    connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    connection.sock = sock
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        assert response.status == 200, f"GET http://{host}:{port}{path} from {netns}: {response.status}"
        return response.read().decode()
    finally:
        connection.close()


def _wait_listening(netns: str, address: tuple[str, int], process: subprocess.Popen) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise AssertionError(f"server {process.args} exited with {process.returncode}")
        with contextlib.suppress(OSError), _socket_in(netns) as sock:
            sock.connect(address)
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {address} in {netns} after 15 s")


def _gone(pid: int) -> bool:
    """Exited: no /proc entry, or a zombie (its namespaces are released at exit) waiting for its new parent."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(TIMEOUT)


@dataclass
class Cluster:
    node: Node
    a: dict
    b: dict


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """A node with sandboxes a and b, each running `python -m http.server` on 0.0.0.0:8080 serving /who = its name."""
    with contextlib.ExitStack() as stack:
        node = Node()
        stack.callback(node.stop)
        sandboxes = {}
        for key in ("a", "b"):
            sandbox = sandboxes[key] = node.call("create", key)
            root = tmp_path_factory.mktemp(f"www-{key}")
            (root / "who").write_text(key)
            everywhere = "0.0.0.0"  # noqa: S104 (all addresses of the sandbox: lo and eth0)
            serve = [sys.executable, "-m", "http.server", "--bind", everywhere, "--directory", str(root), "8080"]
            server = subprocess.Popen(  # setpriv: killed with this process, however it ends
                [TOOLS["setpriv"], "--pdeathsig", "KILL", TOOLS["nsenter"], f"--net={sandbox['netns_path']}", *serve],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            stack.callback(_stop, server)
            _wait_listening(sandbox["netns_path"], (sandbox["ip"], 8080), server)
        yield Cluster(node, sandboxes["a"], sandboxes["b"])


# ---------------------------------------------------------------- pods, services, forwarders


@needs_namespaces
def test_sandbox_has_eth0_and_default_route(cluster):
    def ip(*args):
        argv = [TOOLS["nsenter"], f"--net={cluster.a['netns_path']}", TOOLS["ip"], "-o", *args]
        return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=TIMEOUT).stdout

    links = [line.split(":")[1].strip().split("@")[0] for line in ip("link").splitlines()]
    assert links == ["lo", "eth0"]
    assert f"inet {cluster.a['ip']}/16" in ip("-4", "addr", "show", "eth0")
    assert ip("route", "show", "default").split()[:3] == ["default", "via", cluster.node.gateway]
    assert cluster.a["veth"] in cluster.node.call("links")


@needs_namespaces
def test_pods_reach_each_other_by_ip(cluster):
    assert _get(cluster.b["netns_path"], cluster.a["ip"], 8080) == "a"
    assert _get(cluster.a["netns_path"], cluster.b["ip"], 8080) == "b"


@needs_namespaces
def test_service_ip_round_robin_through_the_proxy(cluster):
    a, b = (cluster.a["ip"], 8080), (cluster.b["ip"], 8080)
    cluster.node.call("service", SERVICE_IP, {80: [a, b]})
    try:
        assert [_get(cluster.b["netns_path"], SERVICE_IP, 80) for _ in range(4)] == ["a", "b", "a", "b"]
        cluster.node.call("service", SERVICE_IP, {80: [b], 81: [a]})
        assert {_get(cluster.a["netns_path"], SERVICE_IP, 80) for _ in range(3)} == {"b"}
        assert _get(cluster.a["netns_path"], SERVICE_IP, 81) == "a"
    finally:
        cluster.node.call("remove_service", SERVICE_IP)


@needs_namespaces
def test_service_without_endpoints_refuses_at_once(cluster):
    ip = "10.96.0.11"
    cluster.node.call("service", ip, {80: []})
    try:
        with pytest.raises(ConnectionRefusedError), _socket_in(cluster.b["netns_path"]) as sock:
            sock.connect((ip, 80))
        cluster.node.call("service", ip, {80: [(cluster.a["ip"], 8080)]})
        assert _get(cluster.b["netns_path"], ip, 80) == "a"
        cluster.node.call("service", ip, {80: []})  # the pod went away
        with pytest.raises(ConnectionRefusedError), _socket_in(cluster.b["netns_path"]) as sock:
            sock.connect((ip, 80))
        # An endpoint that refuses: the client is reset instead of left hanging.
        cluster.node.call("service", ip, {80: [(cluster.a["ip"], 9)]})
        with _socket_in(cluster.b["netns_path"]) as sock, pytest.raises(ConnectionResetError):
            sock.connect((ip, 80))  # the reset may come before connect() returns
            sock.recv(1)
    finally:
        cluster.node.call("remove_service", ip)


@needs_namespaces
def test_host_forwarder_reaches_a_pod(cluster):
    with Forwarder(HERE, ("127.0.0.1", 0), cluster.node.netns, (cluster.a["ip"], 8080)) as forwarder:
        assert _get(HERE, "127.0.0.1", forwarder.port) == "a"


@needs_namespaces
def test_node_forwards_host_loopback_to_a_pod(cluster):
    """kubectl port-forward as the node does it: listening in the host namespace, connecting from its own."""
    host_ns = f"/proc/{os.getpid()}/ns/net"
    port = cluster.node.call("forward", host_ns, ["127.0.0.1", 0], HERE, [cluster.a["ip"], 8080])
    assert _get(HERE, "127.0.0.1", port) == "a"


@needs_namespaces
def test_forward_process_reaches_a_service_and_stops_on_sigterm(cluster):
    cluster.node.call("service", SERVICE_IP, {80: [(cluster.b["ip"], 8080)]})
    argv = [sys.executable, "-m", "eksflow_dev.cluster.node.forward"]
    argv += ["--listen", "/proc/self/ns/net:127.0.0.1:0", "--connect", f"{cluster.node.netns}:{SERVICE_IP}:80"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = _read_line(process.stdout, TIMEOUT).decode()
        assert line.startswith("listening /proc/self/ns/net:127.0.0.1:"), (line, process.poll())
        assert _get(HERE, "127.0.0.1", int(line.rsplit(":", 1)[1])) == "b"
        process.send_signal(signal.SIGTERM)
        assert process.wait(TIMEOUT) == 0, process.stderr.read()
    finally:
        _stop(process)
        cluster.node.call("remove_service", SERVICE_IP)


class _Text(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "4")
        self.end_headers()
        self.wfile.write(b"host")

    def log_message(self, *args):
        pass


@needs_namespaces
def test_cluster_forwarder_lets_a_pod_reach_host_loopback(cluster):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Text)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host_ns = f"/proc/{os.getpid()}/ns/net"
        listen = [cluster.node.gateway, 0]
        port = cluster.node.call("forward", HERE, listen, host_ns, ["127.0.0.1", server.server_port])
        assert _get(cluster.b["netns_path"], cluster.node.gateway, port, "/") == "host"
    finally:
        server.shutdown()
        server.server_close()


@needs_namespaces
def test_service_names_resolve_in_a_sandbox_from_a_hosts_file(cluster, tmp_path):
    cluster.node.call("service", SERVICE_IP, {80: [(cluster.a["ip"], 8080)]})
    services = [("web", "default", SERVICE_IP), ("db", "other", "10.96.0.12"), ("headless", "default", "None")]
    hosts, resolv = tmp_path / "hosts", tmp_path / "resolv.conf"
    write_in_place(hosts, hosts_file("default", services, "pod-b", cluster.b["ip"]))
    write_in_place(resolv, resolv_conf("default"))
    later = hosts_file("default", [*services, ("late", "default", "10.96.0.13")], "pod-b", cluster.b["ip"])
    inode = hosts.stat().st_ino
    script = textwrap.dedent("""
        import http.client, json, socket, sys
        from pathlib import Path
        from eksflow_dev.cluster.node.network import write_in_place

        def resolve(name):
            try:
                return socket.getaddrinfo(name, 80, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
            except socket.gaierror:
                return None

        names = ["web", "web.default", "web.default.svc.cluster.local", "db", "db.other", "db.other.svc",
                 "headless", "pod-b", "localhost", "late"]
        result = {name: resolve(name) for name in names}
        connection = http.client.HTTPConnection("web", 80, timeout=30)
        connection.request("GET", "/who")
        result["body"] = connection.getresponse().read().decode()
        write_in_place(Path(sys.argv[1]), sys.argv[2])  # seen through the bind mount at once
        result["late after rewrite"] = resolve("late")
        print(json.dumps(result))
    """)
    mount = '"$0" --bind "$1" /etc/hosts && "$0" --bind "$2" /etc/resolv.conf && exec "$3" -c "$4" "$1" "$5"'
    argv = [TOOLS["nsenter"], f"--net={cluster.b['netns_path']}", TOOLS["unshare"], "--mount", "--", "/bin/sh"]
    argv += ["-c", mount, TOOLS["mount"], str(hosts), str(resolv), sys.executable, script, later]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    finally:
        cluster.node.call("remove_service", SERVICE_IP)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "web": SERVICE_IP,
        "web.default": SERVICE_IP,
        "web.default.svc.cluster.local": SERVICE_IP,
        "db": None,  # another namespace's Service needs its namespace in the name
        "db.other": "10.96.0.12",
        "db.other.svc": "10.96.0.12",
        "headless": None,
        "pod-b": cluster.b["ip"],
        "localhost": "127.0.0.1",
        "late": None,
        "body": "a",
        "late after rewrite": "10.96.0.13",
    }
    assert hosts.stat().st_ino == inode
    assert Path("/etc/hosts").read_text() != later  # the bind mount stayed in the sandbox's mount namespace


@needs_namespaces
def test_deleting_a_sandbox_leaves_no_veth_and_no_holder(cluster):
    sandbox = cluster.node.call("create", "c")
    assert sandbox["veth"] in cluster.node.call("links")
    assert not _gone(sandbox["pid"])
    cluster.node.call("delete", "c")
    assert sandbox["veth"] not in cluster.node.call("links")
    assert _gone(sandbox["pid"])
    following = cluster.node.call("create", "d")
    try:
        assert following["ip"] != sandbox["ip"], "a just released IP must not be handed out again at once"
    finally:
        cluster.node.call("delete", "d")


@needs_namespaces
def test_sandboxes_end_with_a_killed_node():
    node = Node()
    try:
        holders = [node.call("create", key)["pid"] for key in ("x", "y")]
        os.kill(node.pid, signal.SIGKILL)
        node.process.wait(TIMEOUT)
        for _ in range(300):
            if all(_gone(pid) for pid in holders):
                break
            time.sleep(0.05)
        assert all(_gone(pid) for pid in holders), f"holders {holders} outlived their node"
    finally:
        node.stop()
        for pid in holders:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


@needs_namespaces
def test_setup_refuses_a_namespace_that_has_interfaces():
    code = "from eksflow_dev.cluster.node.network import PodNetwork; PodNetwork().setup()"
    script = '"$0" link add stray type bridge && exec "$1" -c "$2"'
    argv = [TOOLS["unshare"], "--net", "--", "/bin/sh", "-c", script, TOOLS["ip"], sys.executable, code]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert result.returncode != 0
    assert "refusing to set up the pod network" in result.stderr and "'stray'" in result.stderr


def test_pod_network_refuses_work_before_setup():
    network = PodNetwork()
    with pytest.raises(RuntimeError, match=r"setup\(\) has not run"):
        network.create_sandbox("x")
    with pytest.raises(RuntimeError, match=r"setup\(\) has not run"):
        network.set_service("10.96.0.1", {80: []})
    with pytest.raises(ValueError, match="outside the service CIDR"):
        network.set_service("10.97.0.1", {80: []})
    network.close()


# ---------------------------------------------------------------- relay semantics (one namespace, no root needed)


@contextlib.contextmanager
def _tcp_server(handle) -> Iterator[int]:
    """A loopback server running `handle(conn)` per connection in a thread; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(TIMEOUT)


def _echo(conn: socket.socket) -> None:
    with conn, contextlib.suppress(OSError):  # a reset from the other side ends it too
        while data := conn.recv(65536):
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)


def _digest_after_eof(conn: socket.socket) -> None:
    """Reads to EOF, then answers the length and sha256 of what came: only works if the half-close came through."""
    with conn:
        digest, size = hashlib.sha256(), 0
        while data := conn.recv(65536):
            digest.update(data)
            size += len(data)
        conn.sendall(f"{size} {digest.hexdigest()}".encode())


def _recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while data := sock.recv(65536):
        chunks.append(data)
    return b"".join(chunks)


def test_half_close_passes_through():
    payload = os.urandom(3 * 1024 * 1024)
    with (
        _tcp_server(_digest_after_eof) as port,
        Forwarder(HERE, ("127.0.0.1", 0), HERE, ("127.0.0.1", port)) as forwarder,
        socket.create_connection(("127.0.0.1", forwarder.port), timeout=TIMEOUT) as sock,
    ):
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        answer = _recv_all(sock)
    assert answer.decode() == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}"


def test_many_concurrent_connections_echo_intact():
    def one(index: int) -> bool:
        payload = os.urandom(256 * 1024 + index)
        with socket.create_connection(("127.0.0.1", fwd.port), timeout=TIMEOUT) as sock:
            # Send and receive at once: the echo is bigger than the socket buffers, so the relay must not stall.
            sender = threading.Thread(target=lambda: (sock.sendall(payload), sock.shutdown(socket.SHUT_WR)))
            sender.start()
            echoed = _recv_all(sock)
            sender.join(TIMEOUT)
        return echoed == payload

    with (
        _tcp_server(_echo) as port,
        Forwarder(HERE, ("127.0.0.1", 0), HERE, ("127.0.0.1", port)) as fwd,
        concurrent.futures.ThreadPoolExecutor(40) as pool,
    ):
        assert all(pool.map(one, range(40)))


def test_close_ends_live_connections_and_threads():
    baseline = threading.active_count()
    with _tcp_server(_echo) as port:
        forwarder = Forwarder(HERE, ("127.0.0.1", 0), HERE, ("127.0.0.1", port))
        idle = socket.create_connection(("127.0.0.1", forwarder.port), timeout=TIMEOUT)
        idle.sendall(b"ping")
        assert idle.recv(4) == b"ping"
        forwarder.close()
        with idle, contextlib.suppress(ConnectionResetError):
            assert idle.recv(1) == b""
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", forwarder.port), timeout=TIMEOUT)
    for _ in range(200):
        if threading.active_count() <= baseline:
            break
        time.sleep(0.05)
    assert threading.active_count() <= baseline, [thread.name for thread in threading.enumerate()]


def test_unreachable_target_resets_the_client():
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        closed_port = placeholder.getsockname()[1]
    with (
        Forwarder(HERE, ("127.0.0.1", 0), HERE, ("127.0.0.1", closed_port)) as forwarder,
        socket.socket() as sock,
        pytest.raises(ConnectionResetError),
    ):
        sock.settimeout(TIMEOUT)
        sock.connect(("127.0.0.1", forwarder.port))  # the reset may come before connect() returns
        sock.recv(1)


def test_forward_arguments_and_namespaces_are_checked(capsys):
    with pytest.raises(SystemExit):
        forward_main(["--listen", "127.0.0.1:80", "--connect", f"{HERE}:127.0.0.1:80"])
    assert "expected NS:IP:PORT" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not a network namespace"):
        Forwarder("/proc/self/ns/uts", ("127.0.0.1", 0), HERE, ("127.0.0.1", 1))
    with pytest.raises(ValueError, match="cannot open network namespace"):
        Forwarder("/proc/0/ns/net", ("127.0.0.1", 0), HERE, ("127.0.0.1", 1))


# ---------------------------------------------------------------- the DNS files


def test_hosts_file_names_services_by_namespace():
    text = hosts_file(
        "airflow",
        [("postgres", "db", "10.96.0.20"), ("api", "airflow", "10.96.0.21"), ("sync", "airflow", "None")],
        "worker-1",
        "10.244.0.7",
    )
    lines = text.splitlines()
    assert "127.0.0.1\tlocalhost" in lines
    assert "10.244.0.7\tworker-1" in lines
    assert "10.96.0.21\tapi api.airflow api.airflow.svc api.airflow.svc.cluster.local" in lines
    assert "10.96.0.20\tpostgres.db postgres.db.svc postgres.db.svc.cluster.local" in lines
    assert "sync" not in text
    with pytest.raises(ValueError, match="db/postgres"):
        hosts_file("airflow", [("postgres", "db", "nope")])


def test_resolv_conf_searches_the_pod_namespace_first():
    lines = resolv_conf("airflow").splitlines()
    assert "search airflow.svc.cluster.local svc.cluster.local cluster.local" in lines
    assert "nameserver 127.0.0.1" in lines
    assert any(line.startswith("options ndots:5") for line in lines)


def test_write_in_place_keeps_the_inode(tmp_path):
    path = tmp_path / "hosts"
    write_in_place(path, "long line\n" * 10)
    inode = path.stat().st_ino
    write_in_place(path, "short\n")
    assert path.read_text() == "short\n"
    write_in_place(path, "longer again\n" * 3)
    assert path.read_text() == "longer again\n" * 3
    assert path.stat().st_ino == inode
    (tmp_path / "link").symlink_to(path)
    with pytest.raises(OSError, match="symlink"):
        write_in_place(tmp_path / "link", "x\n")


if __name__ == "__main__" and sys.argv[1:] == ["node"]:
    _node_main()

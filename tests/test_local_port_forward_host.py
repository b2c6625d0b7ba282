"""The port-forward that serves the Airflow UI/API of `make up` on 127.0.0.1 answers only to loopback Host names
(issue 12 row 17: DNS rebinding). Run the way `make up` runs it (`python -m eksflow_dev.cluster.node.forward
--http-host-check`, as LocalCluster.port_forward starts it) in front of a small HTTP server on 127.0.0.1 that
records what reaches it. No namespaces needed: both ends are this process's network namespace."""

from __future__ import annotations

import contextlib
import http.server
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest

from eksflow_dev.cluster.cluster import forward_argv
from eksflow_dev.cluster.node.host_check import MAX_HEAD

HERE = "/proc/self/ns/net"
TIMEOUT = 30.0


class _Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, bytes]] = []

    def _answer(self, body: bytes = b"") -> None:
        type(self).seen.append((self.command, self.headers["Host"], body))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) + 3))
        self.end_headers()
        self.wfile.write(b"ok " + body)

    def do_GET(self):
        self._answer()

    def do_POST(self):
        self._answer(self.rfile.read(int(self.headers["Content-Length"])))

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _server() -> Iterator[int]:
    _Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def forward() -> Iterator[int]:
    """The port-forward process in front of the recording server: yields its port."""
    with _server() as upstream:
        argv = forward_argv(f"{HERE}:127.0.0.1:0", f"{HERE}:127.0.0.1:{upstream}", http_host_check=True)
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = process.stdout.readline()
            assert line.startswith(f"listening {HERE}:127.0.0.1:"), (line, process.poll(), process.stderr.read())
            yield int(line.rsplit(":", 1)[1])
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(TIMEOUT)


def _exchange(port: int, request: bytes) -> bytes:
    """Sends `request`, half-closes, returns everything answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def _get(port: int, host: str) -> bytes:
    return _exchange(port, f"GET /api/v2/dags HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "LocalHost"])
def test_a_request_naming_the_forward_by_a_loopback_name_is_relayed(forward, name):
    _Recorder.seen.clear()
    answer = _get(forward, f"{name}:{forward}")
    assert answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n")[0] and answer.endswith(b"ok "), answer
    assert _Recorder.seen == [("GET", f"{name}:{forward}", b"")]


@pytest.mark.parametrize(
    "host",
    ["evil.example:{port}", "evil.example", "127.0.0.1", "localhost", "127.0.0.1:1", "127.0.0.2:{port}", ""],
)
def test_any_other_host_gets_a_one_line_421_and_never_reaches_the_server(forward, host):
    """A page on evil.example, resolved to 127.0.0.1 by DNS rebinding, sends `Host: evil.example:<port>`."""
    _Recorder.seen.clear()
    host = host.format(port=forward)
    answer = _get(forward, host)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 421 Misdirected Request", answer
    reason = body.decode()
    assert reason.count("\n") == 1 and f"127.0.0.1:{forward} or localhost:{forward}" in reason, reason
    assert f"Host {host!r} refused" in reason
    assert _Recorder.seen == []


def test_a_request_without_exactly_one_host_is_refused(forward):
    _Recorder.seen.clear()
    no_host = _exchange(forward, b"GET / HTTP/1.0\r\n\r\n")
    two = _exchange(forward, f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{forward}\r\nHost: evil.example\r\n\r\n".encode())
    for answer in (no_host, two):
        assert answer.startswith(b"HTTP/1.1 421 "), answer
        assert b"exactly one Host header" in answer
    assert _Recorder.seen == []


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", b"400"),  # not HTTP (a TLS hello)
        (b"GET http://evil.example/api/v2/dags HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n", b"400"),  # absolute form
        (b"GET / HTTP/1.1\r\nHost: evil.example\r\n Host: 127.0.0.1:{port}\r\n\r\n", b"400"),  # folded header
        (b"GET / HTTP/1.1\r\nX: " + b"a" * (MAX_HEAD + 10) + b"\r\n\r\n", b"431"),
    ],
    ids=["not-http", "absolute-form", "folded-header", "oversized-head"],
)
def test_what_is_not_a_plain_http_request_is_refused(forward, request_bytes, status):
    _Recorder.seen.clear()
    answer = _exchange(forward, request_bytes.replace(b"{port}", str(forward).encode()))
    assert answer.split(b" ")[1] == status, answer[:200]
    assert _Recorder.seen == []


def test_a_body_and_the_requests_after_an_accepted_first_one_are_relayed_intact(forward):
    """The checked bytes go upstream unchanged, then the relay is plain TCP (keep-alive, bodies of any size)."""
    _Recorder.seen.clear()
    body = b'{"is_paused": false}' * 5000
    first = f"POST /a HTTP/1.1\r\nHost: localhost:{forward}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    second = f"GET /b HTTP/1.1\r\nHost: localhost:{forward}\r\nConnection: close\r\n\r\n".encode()
    answer = _exchange(forward, first + second)
    assert answer.count(b" 200 OK") == 2, answer[:300]
    assert _Recorder.seen == [("POST", f"localhost:{forward}", body), ("GET", f"localhost:{forward}", b"")]


def test_without_the_check_the_forward_is_a_plain_tcp_relay():
    """The other forwarders (the cluster's gateway to PostgreSQL, the emulator, the DAG repository) carry no
    check: they are not HTTP, or are reached by in-cluster names."""
    with _server() as upstream:
        argv = forward_argv(f"{HERE}:127.0.0.1:0", f"{HERE}:127.0.0.1:{upstream}", http_host_check=False)
        assert "--http-host-check" not in argv
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        try:
            port = int(process.stdout.readline().rsplit(":", 1)[1])
            assert b" 200 " in _get(port, "evil.example").split(b"\r\n")[0]
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(TIMEOUT)


def test_the_check_needs_a_listen_address_it_can_name(capsys):
    from eksflow_dev.cluster.node.forward import main

    assert main(["--listen", f"{HERE}:0.0.0.0:0", "--connect", f"{HERE}:127.0.0.1:1", "--http-host-check"]) == 1
    assert "--http-host-check needs a loopback listen address" in capsys.readouterr().err

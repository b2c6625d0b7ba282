"""The Host check of a port-forward that serves HTTP on the host's loopback (the Airflow UI/API of `make up`).

A web page can reach 127.0.0.1:<port> by DNS rebinding: evil.example first resolves to the attacker, then to
127.0.0.1, and the page's requests to http://evil.example:<port>/ are same-origin for the browser. They still say
`Host: evil.example:<port>`, so the forwarder relays a connection only when its first request names the port-forward
by a loopback name (127.0.0.1:<port> or localhost:<port>); anything else gets a one-line 421 and never reaches the
cluster. The first request decides for the connection: a browser never carries requests for two host names on one
HTTP/1.1 connection (its connection pools are keyed by host), and a program on this machine needs no rebinding to
send any Host it likes (the login is what stops it).
"""

from __future__ import annotations

import socket

MAX_HEAD = 64 * 1024  # request line + headers; Airflow's cookies are far smaller
_DRAIN_BYTES, _DRAIN_SECONDS = 1024 * 1024, 5.0


def allowed_hosts(listen_ip: str, port: int) -> frozenset[str]:
    """The Host values a forwarder listening on listen_ip:port answers to (lower case)."""
    names = {f"{listen_ip}:{port}"}
    if listen_ip == "127.0.0.1":
        names.add(f"localhost:{port}")
    return frozenset(names)


def _response(status: str, reason: str) -> bytes:
    body = reason.encode("utf-8", "replace") + b"\n"
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


def refusal(head: bytes, allowed: frozenset[str]) -> bytes | None:
    """The HTTP response that refuses a request with this head (request line and headers, up to the blank line),
    or None when its Host is one of `allowed`."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return _response("400 Bad Request", "this port-forward relays HTTP/1.x only")
    target = parts[1]
    if not (target.startswith(b"/") or target == b"*"):
        return _response("400 Bad Request", "this port-forward takes origin-form request targets only (/path)")
    hosts = []
    for line in lines[1:]:
        if not line:
            break
        if line[:1] in (b" ", b"\t") or b":" not in line:
            return _response("400 Bad Request", "malformed header line")
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"host":
            hosts.append(value.strip().decode("latin-1").lower())
    expected = " or ".join(sorted(allowed))
    if len(hosts) != 1:
        return _response("421 Misdirected Request", f"exactly one Host header is needed: {expected}")
    if hosts[0] not in allowed:
        return _response(
            "421 Misdirected Request",
            f"Host {hosts[0]!r} refused: this port-forward serves {expected} only (DNS rebinding guard)",
        )
    return None


def read_head(client: socket.socket) -> tuple[bytes, bytes]:
    """Reads from `client` until the end of the first request's headers: (head, everything read). head is b"" when
    the client closed first, or longer than MAX_HEAD when it sent no blank line within that."""
    data = b""
    while True:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            return data[:end], data
        if len(data) > MAX_HEAD:
            return data, data
        chunk = client.recv(MAX_HEAD)
        if not chunk:
            return b"", data
        data += chunk


def gate(client: socket.socket, allowed: frozenset[str]) -> tuple[bytes | None, str]:
    """What to relay upstream first (the bytes read so far), or None when the connection is refused (the refusal
    is sent here); and a line for the log."""
    head, data = read_head(client)
    if not head:
        return None, "closed before a request"
    if len(head) > MAX_HEAD:
        answer = _response("431 Request Header Fields Too Large", f"request headers over {MAX_HEAD} bytes")
    else:
        answer = refusal(head, allowed)
    if answer is None:
        return data, ""
    client.sendall(answer)
    _drain(client)
    return None, answer.split(b"\r\n", 1)[0].decode() + ": " + answer.rsplit(b"\r\n\r\n", 1)[1].decode().strip()


def _drain(client: socket.socket) -> None:
    """End our side and read what the client still sends until it closes (bounded): closing a socket with unread
    input sends a reset, which can destroy the answer before the client reads it."""
    try:
        client.shutdown(socket.SHUT_WR)
        client.settimeout(_DRAIN_SECONDS)
        left = _DRAIN_BYTES
        while left > 0 and (chunk := client.recv(65536)):
            left -= len(chunk)
    except OSError:
        pass

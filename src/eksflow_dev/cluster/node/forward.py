"""TCP relays of the node: cross-namespace forwarders and the userspace Service proxy.

A socket keeps the network namespace it was created in, and setns() on a network namespace moves only the calling
thread. So only socket() runs in a short-lived thread that entered the target namespace; bind, connect, accept and
all I/O then work from any thread. Each relayed connection uses two threads (one per direction), each moving at most
64 KiB at a time: a slow reader holds its writer back (bounded buffers), and the end of one direction is passed on as
shutdown(SHUT_WR) (half-close) while the other keeps going.

Standalone: python -m eksflow_dev.cluster.node.forward --listen NS:IP:PORT --connect NS:IP:PORT [--listen ... --connect
...] [--http-host-check], NS a namespace file such as /proc/<pid>/ns/net or /proc/self/ns/net; prints
`listening NS:IP:PORT` (the real port) per pair, then runs until SIGTERM or SIGINT. With --http-host-check every
listener relays only HTTP connections whose first request names it by a loopback name (host_check.py).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import fcntl
import logging
import os
import signal
import socket
import struct
import sys
import threading
from collections.abc import Callable, Mapping, Sequence

from eksflow_dev.cluster.node import host_check

CLONE_NEWNET = 0x40000000
_NS_GET_NSTYPE = 0xB703  # ioctl on a namespace file: its CLONE_NEW* type
_CHUNK = 64 * 1024
_BACKLOG = 128
_CONNECT_TIMEOUT = 5.0
_CLOSE_WAIT = 5.0

_libc = ctypes.CDLL(None, use_errno=True)
_log = logging.getLogger(__name__)

Address = tuple[str, int]
# Reads the start of a client's connection: the bytes to relay upstream first, or None (refused; it answered).
Gate = Callable[[socket.socket], "bytes | None"]


class NetNamespace:
    """An open handle on a network namespace file: the namespace stays usable while the handle is open, even after the
    process that named it (/proc/<pid>/ns/net) exits."""

    def __init__(self, path: str):
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as error:
            raise ValueError(
                f"cannot open network namespace {path!r}: {error.strerror}; give /proc/<pid>/ns/net of a live process"
            ) from error
        try:
            kind = fcntl.ioctl(self._fd, _NS_GET_NSTYPE)
        except OSError:
            kind = None
        if kind != CLONE_NEWNET:
            os.close(self._fd)
            raise ValueError(f"{path!r} is not a network namespace file; give /proc/<pid>/ns/net")
        self.path = path
        stat = os.fstat(self._fd)
        self._id = (stat.st_dev, stat.st_ino)

    def is_current(self) -> bool:
        """Whether the calling thread is in this namespace already."""
        stat = os.stat("/proc/thread-self/ns/net")
        return (stat.st_dev, stat.st_ino) == self._id

    def socket(self, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> socket.socket:
        """A new socket that lives in this namespace."""
        if self.is_current():
            return socket.socket(family, kind)
        result: list[socket.socket | BaseException] = []

        def create() -> None:  # runs in a throwaway thread, so its setns() changes nothing else
            try:
                if _libc.setns(self._fd, CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, f"setns into {self.path}: {os.strerror(code)} (needs root)")
                result.append(socket.socket(family, kind))
            except BaseException as error:
                result.append(error)

        thread = threading.Thread(target=create, name=f"socket-in-{self.path}")
        thread.start()
        thread.join()
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _reset(sock: socket.socket) -> None:
    """Close so that the peer gets a RST (connection reset) rather than an orderly end."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Connection:
    """One relayed connection: client <-> upstream, one thread per direction."""

    def __init__(self, client: socket.socket, relays: _Relays):
        self.client = client
        self.upstream: socket.socket | None = None
        self._relays = relays
        self._lock = threading.Lock()
        self._running = 2
        self.aborted = False

    def start(self, upstream: socket.socket) -> None:
        with self._lock:
            self.upstream = upstream
            aborted = self.aborted
        if aborted:
            self._finish(2)
            return
        threading.Thread(target=self._pump, args=(upstream, self.client), name="relay-back", daemon=True).start()
        self._pump(self.client, upstream)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(_CHUNK):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            self.abort()
        self._finish(1)

    def abort(self) -> None:
        """Stop both directions now (blocked recv/send calls return); the peers get a reset."""
        with self._lock:  # held while shutting down, so that _finish cannot close (and the fd be reused) meanwhile
            self.aborted = True
            if self._running > 0:
                for sock in (self.client, self.upstream):
                    if sock is not None:
                        with contextlib.suppress(OSError):
                            sock.shutdown(socket.SHUT_RDWR)

    def give_up(self) -> None:
        """No upstream: reset the client."""
        with self._lock:
            self.aborted = True
        self._finish(2)

    def close_refused(self) -> None:
        """Refused by the gate, which answered: an orderly close, so that the answer is read, not reset away."""
        self._finish(2)

    def _finish(self, directions: int) -> None:
        with self._lock:
            self._running -= directions
            if self._running > 0:
                return
        for sock in (self.client, self.upstream):
            if sock is not None:
                _reset(sock) if self.aborted else sock.close()
        self._relays.discard(self)


def _connect_first(targets: list[Address], ns: NetNamespace | None) -> socket.socket | None:
    for target in targets:
        upstream = ns.socket() if ns is not None else socket.socket()
        upstream.settimeout(_CONNECT_TIMEOUT)
        try:
            upstream.connect(target)
        except OSError as error:
            upstream.close()
            _log.debug("relay: %s:%s: %s", *target, error)
            continue
        upstream.settimeout(None)
        return upstream
    _log.debug("relay: no target answered of %s", targets)
    return None


class _Relays:
    """The live connections of one owner (a Forwarder, a ServiceProxy), so that closing it ends them all."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._live: set[_Connection] = set()
        self.closed = False

    def serve(
        self,
        client: socket.socket,
        targets: Callable[[], Sequence[Address]],
        ns: NetNamespace | None,
        gate: Gate | None = None,
    ) -> None:
        """Connect to the first target that answers (from `ns`, else from this thread's namespace) and relay; with
        none left, reset the client. With a `gate`, it reads the start of the connection first and may refuse it
        (closed after its answer, no upstream connection made)."""
        connection = _Connection(client, self)
        with self._lock:
            if self.closed:
                _reset(client)
                return
            self._live.add(connection)
        first = b""
        if gate is not None:
            try:
                first = gate(client)
            except OSError:
                first = None
            if first is None:
                connection.close_refused()
                return
        try:
            upstream = _connect_first(list(targets()), ns)
        except Exception:
            _log.exception("relay: cannot make the upstream socket")
            upstream = None
        if upstream is not None and first:
            try:
                upstream.sendall(first)
            except OSError:
                upstream.close()
                upstream = None
        if upstream is None:
            connection.give_up()
        else:
            connection.start(upstream)

    def discard(self, connection: _Connection) -> None:
        with self._lock:
            self._live.discard(connection)
            self._lock.notify_all()

    def close(self) -> None:
        with self._lock:
            self.closed = True
            live = list(self._live)
        for connection in live:
            connection.abort()
        with self._lock:
            self._lock.wait_for(lambda: not self._live, timeout=_CLOSE_WAIT)


class _Listener:
    """Accepts on a listening socket and hands each connection to `relays` in a thread of its own."""

    def __init__(
        self,
        sock: socket.socket,
        targets: Callable[[], Sequence[Address]],
        ns: NetNamespace | None,
        relays: _Relays,
        gate: Gate | None = None,
    ):
        self._sock = sock
        self._targets = targets
        self._ns = ns
        self._relays = relays
        self._gate = gate
        self._stopped = False
        self.address: Address = sock.getsockname()[:2]
        self._thread = threading.Thread(target=self._accept, name=f"accept-{self.address}", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
                client.settimeout(None)  # blocking, whatever socket.setdefaulttimeout() says
            except OSError as error:
                if self._stopped or error.errno in (errno.EBADF, errno.EINVAL):
                    return
                # ECONNABORTED and the like concern one connection; EMFILE waits for descriptors to be freed.
                threading.Event().wait(0.05)
                continue
            thread = threading.Thread(
                target=self._relays.serve,
                args=(client, self._targets, self._ns, self._gate),
                name="relay",
                daemon=True,
            )
            thread.start()

    def stop(self) -> None:
        """Stop accepting (new connections are refused); connections already relayed go on."""
        self._stopped = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._thread.join(_CLOSE_WAIT)
        self._sock.close()


def _listening_socket(sock: socket.socket, address: Address, hint: str) -> socket.socket:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise OSError(error.errno, f"cannot listen on {address[0]}:{address[1]}: {error.strerror}; {hint}") from error
    sock.listen(_BACKLOG)
    return sock


class Forwarder:
    """Listens in network namespace `listen_ns` on `listen` and relays each connection to `connect`, reached from
    network namespace `connect_ns` (e.g. host 127.0.0.1:0 -> a pod IP in the cluster namespace, like kubectl
    port-forward; or the cluster gateway -> a host service on 127.0.0.1). Namespaces are paths
    (/proc/<pid>/ns/net, /proc/self/ns/net), opened once here and held until close(). `http_host_check`: relay
    only HTTP connections whose first request names this listener by a loopback name (host_check.py); it needs
    a loopback listen address."""

    def __init__(
        self, listen_ns: str, listen: Address, connect_ns: str, connect: Address, *, http_host_check: bool = False
    ):
        if http_host_check and not listen[0].startswith("127."):
            raise ValueError(
                f"--http-host-check needs a loopback listen address (127.x.x.x), not {listen[0]}: the check admits "
                "the names a browser on this machine uses for it"
            )
        self._listen_ns = NetNamespace(listen_ns)
        try:
            self._connect_ns = NetNamespace(connect_ns)
        except ValueError:
            self._listen_ns.close()
            raise
        self.connect: Address = (connect[0], int(connect[1]))
        self._relays = _Relays()
        try:
            sock = _listening_socket(
                self._listen_ns.socket(),
                (listen[0], int(listen[1])),
                f"in {listen_ns} the address must exist there and the port be free (0 picks a free one)",
            )
        except BaseException:
            self._listen_ns.close()
            self._connect_ns.close()
            raise
        self.listen: Address = sock.getsockname()[:2]
        self.port: int = self.listen[1]
        gate = self._host_gate(host_check.allowed_hosts(*self.listen)) if http_host_check else None
        self._listener = _Listener(sock, lambda: [self.connect], self._connect_ns, self._relays, gate)

    @staticmethod
    def _host_gate(allowed: frozenset[str]) -> Gate:
        def gate(client: socket.socket) -> bytes | None:
            first, refused = host_check.gate(client, allowed)
            if refused:
                print(f"forward: refused {refused}", file=sys.stderr, flush=True)
            return first

        return gate

    def close(self) -> None:
        """Stop listening and end every relayed connection."""
        self._listener.stop()
        self._relays.close()
        self._listen_ns.close()
        self._connect_ns.close()

    def __enter__(self) -> Forwarder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _ServicePort:
    def __init__(self) -> None:
        self.endpoints: list[Address] = []
        self.listener: _Listener | None = None
        self._next = 0
        self._lock = threading.Lock()

    def targets(self) -> list[Address]:
        """Every endpoint once, starting at the next one in round-robin order (later ones are tried when a connect
        fails)."""
        endpoints = self.endpoints
        if not endpoints:
            return []
        with self._lock:
            start = self._next % len(endpoints)
            self._next += 1
        return endpoints[start:] + endpoints[:start]


class ServiceProxy:
    """The userspace Service proxy: listens on <service IP>:<port> and relays each connection to one of the port's
    current endpoints (<pod IP>:<targetPort>), round robin. A port with no endpoint has no listener, so connections are
    refused at once (as kube-proxy's REJECT rule does). Everything happens in the namespace of the calling thread (the
    node's cluster namespace), where the Service IPs must already be local addresses (PodNetwork.set_service does
    both). Updating endpoints leaves established connections alone; close() ends them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ports: dict[Address, _ServicePort] = {}
        self._relays = _Relays()

    def set_ports(self, ip: str, ports: Mapping[int, Sequence[Address]]) -> None:
        """Make `ports` (service port -> endpoints) the Service's whole port list."""
        with self._lock:
            if self._relays.closed:
                raise RuntimeError("ServiceProxy is closed")
            for key in [key for key in self._ports if key[0] == ip and key[1] not in ports]:
                self._drop(key)
            for port, endpoints in ports.items():
                entry = self._ports.setdefault((ip, int(port)), _ServicePort())
                entry.endpoints = [(str(host), int(target)) for host, target in endpoints]
                if entry.endpoints and entry.listener is None:
                    sock = _listening_socket(
                        socket.socket(),
                        (ip, int(port)),
                        "the Service IP must be a local address of this namespace first (PodNetwork.set_service)",
                    )
                    entry.listener = _Listener(sock, entry.targets, None, self._relays)
                elif not entry.endpoints and entry.listener is not None:
                    entry.listener.stop()
                    entry.listener = None

    def remove(self, ip: str) -> None:
        """Stop proxying every port of the Service at `ip`."""
        with self._lock:
            for key in [key for key in self._ports if key[0] == ip]:
                self._drop(key)

    def _drop(self, key: Address) -> None:
        entry = self._ports.pop(key)
        if entry.listener is not None:
            entry.listener.stop()

    def close(self) -> None:
        with self._lock:
            for key in list(self._ports):
                self._drop(key)
        self._relays.close()


def _endpoint(text: str) -> tuple[str, Address]:
    ns, sep, rest = text.partition(":")
    ip, sep2, port = rest.rpartition(":")
    if not (sep and sep2 and ns and ip and port.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r}: expected NS:IP:PORT, e.g. /proc/self/ns/net:127.0.0.1:8080")
    return ns, (ip, int(port))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m eksflow_dev.cluster.node.forward",
        description="Relay TCP connections from a listening address in one network namespace to an address reached "
        "from another; runs until SIGTERM/SIGINT.",
    )
    parser.add_argument("--listen", action="append", type=_endpoint, required=True, metavar="NS:IP:PORT")
    parser.add_argument("--connect", action="append", type=_endpoint, required=True, metavar="NS:IP:PORT")
    parser.add_argument(
        "--http-host-check",
        action="store_true",
        help="relay only HTTP connections whose first request's Host is the listener's 127.0.0.1:PORT or "
        "localhost:PORT (421 otherwise): a loopback port a browser could reach by DNS rebinding",
    )
    args = parser.parse_args(argv)
    if len(args.listen) != len(args.connect):
        parser.error("give one --connect per --listen, in the same order")
    # Blocked before any thread starts, so every thread inherits the mask and sigwait() below receives them; restored
    # on return (a caller in the same process — a test — would otherwise start every later child with them blocked).
    unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    forwarders: list[Forwarder] = []
    try:
        for (listen_ns, listen), (connect_ns, connect) in zip(args.listen, args.connect, strict=True):
            forwarder = Forwarder(listen_ns, listen, connect_ns, connect, http_host_check=args.http_host_check)
            forwarders.append(forwarder)
            print(f"listening {listen_ns}:{forwarder.listen[0]}:{forwarder.port}", flush=True)
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
    except (OSError, ValueError) as error:
        print(f"forward: {error}", file=sys.stderr)
        return 1
    finally:
        for forwarder in forwarders:
            forwarder.close()
        signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The pod network of the node, and the files pods resolve names with.

The node process runs in a network namespace of its own, the cluster namespace (started with `unshare --net`; the
host's namespace is never touched). In it: the bridge cni0 holding the gateway address, one veth per pod sandbox
(its other end is eth0 in the sandbox's namespace, held open by a small holder process), and the Service IPs as /32
addresses on svc0, so pods reach them through their default route and the userspace ServiceProxy (forward.py) answers.

Names: no DNS server. Each pod gets an /etc/hosts listing the Services (glibc reads it before DNS: nsswitch
`hosts: files dns`) and a resolv.conf whose nameserver answers nothing (see resolv_conf).
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import os
import select
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from eksflow_dev.cluster.node.forward import Address, ServiceProxy

POD_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"
CLUSTER_DOMAIN = "cluster.local"
BRIDGE = "cni0"
# A bridge without ports stands in for a dummy interface: not every kernel has the dummy driver, and the bridge one is
# needed anyway.
SERVICES_LINK = "svc0"
_TIMEOUT = 30.0


@dataclass(frozen=True)
class Sandbox:
    """A pod's network namespace: enter it with `nsenter --net=<netns_path>` (or setns on that file)."""

    key: str
    ip: str
    pid: int  # the holder process, alive as long as the sandbox
    netns_path: str  # /proc/<pid>/ns/net
    veth: str  # the bridge end of the pod's eth0, in the cluster namespace


def _tool(name: str, package: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if found is None:
        raise RuntimeError(f"`{name}` not found on PATH nor in /usr/sbin, /sbin: install {package}")
    return found


def _current_netns() -> tuple[int, int]:
    info = os.stat("/proc/thread-self/ns/net")
    return info.st_dev, info.st_ino


def _read_line(stream, timeout: float) -> bytes:
    """The first line of a child's output (or all of it, up to EOF), waiting at most `timeout`."""
    data = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([stream], [], [], remaining)[0]:
            break
        chunk = os.read(stream.fileno(), 4096)
        if not chunk:
            break
        data += chunk
    return data


class PodNetwork:
    """Pod sandboxes, their IPs and the Service IPs of one node. Every method runs in the calling thread's network
    namespace, which must be the cluster namespace; thread-safe."""

    def __init__(self, pod_cidr: str = POD_CIDR, service_cidr: str = SERVICE_CIDR):
        self.pod_network = ipaddress.IPv4Network(pod_cidr)
        self.service_network = ipaddress.IPv4Network(service_cidr)
        if self.pod_network.overlaps(self.service_network):
            raise ValueError(f"pod CIDR {pod_cidr} overlaps service CIDR {service_cidr}: pick disjoint ranges")
        if self.pod_network.num_addresses < 8:
            raise ValueError(f"pod CIDR {pod_cidr} is too small: use /29 or larger")
        self.gateway = str(self.pod_network.network_address + 1)
        self.proxy = ServiceProxy()
        self._ip = _tool("ip", "iproute2")
        self._nsenter = _tool("nsenter", "util-linux")
        self._unshare = _tool("unshare", "util-linux")
        self._lock = threading.Lock()
        self._sandboxes: dict[str, tuple[Sandbox, subprocess.Popen] | None] = {}  # None: being created
        self._used: set[int] = set()  # offsets in the pod CIDR
        self._next = 2  # .0 is the network, .1 the gateway
        self._service_ips: set[str] = set()
        self._netns: tuple[int, int] | None = None  # where setup() ran

    def setup(self) -> None:
        """Create the bridge, the gateway address and svc0; once, in the node's fresh network namespace."""
        others = sorted(name for _, name in socket.if_nameindex() if name != "lo")
        if others:
            raise RuntimeError(
                f"refusing to set up the pod network in a network namespace that already has interfaces {others}: "
                "call setup() once, from the node running in its own fresh namespace (`unshare --net ...`)"
            )
        # A fixed MAC: a bridge otherwise takes its lowest port's MAC, so it would change as pods come and go while
        # the pods' ARP caches still hold the gateway's old one.
        mac = "02:00:" + ":".join(f"{byte:02x}" for byte in ipaddress.IPv4Address(self.gateway).packed)
        self._run_ip(
            "link set lo up\n"
            f"link add name {BRIDGE} address {mac} type bridge forward_delay 0\n"
            f"addr add {self.gateway}/{self.pod_network.prefixlen} dev {BRIDGE}\n"
            f"link set {BRIDGE} up\n"
            f"link add name {SERVICES_LINK} type bridge\n"
            f"link set {SERVICES_LINK} up\n"
        )
        self._netns = _current_netns()

    def create_sandbox(self, key: str) -> Sandbox:
        """A new network namespace with eth0 on the bridge, the next free IP, a default route via the gateway."""
        self._check_namespace()
        with self._lock:
            if key in self._sandboxes:
                raise ValueError(f"sandbox {key!r} exists already: delete it first")
            offset = self._allocate()
            self._sandboxes[key] = None
        ip = str(self.pod_network.network_address + offset)
        veth = f"veth{offset:x}"
        holder = None
        try:
            holder = self._start_holder()
            netns_path = f"/proc/{holder.pid}/ns/net"
            self._run_ip(
                f"link add name {veth} type veth peer name eth0 netns {holder.pid}\n"
                f"link set {veth} master {BRIDGE} up\n"
            )
            self._run_ip(
                "link set lo up\n"
                f"addr add {ip}/{self.pod_network.prefixlen} dev eth0\n"
                "link set eth0 up\n"
                f"route add default via {self.gateway}\n",
                netns=netns_path,
            )
        except BaseException:
            if holder is not None:
                self._remove_veth(veth, check=False)
                self._stop_holder(holder)
            with self._lock:
                del self._sandboxes[key]
                self._used.discard(offset)
            raise
        sandbox = Sandbox(key, ip, holder.pid, netns_path, veth)
        with self._lock:
            self._sandboxes[key] = (sandbox, holder)
        return sandbox

    def delete_sandbox(self, sandbox: Sandbox) -> None:
        """Remove the veth pair, stop the holder and free the IP; a no-op for an unknown sandbox. Kill the pod's
        processes first: any left in the namespace keep it (without eth0) alive."""
        with self._lock:
            entry = self._sandboxes.get(sandbox.key)
            if entry is None:
                return
            del self._sandboxes[sandbox.key]
        sandbox, holder = entry
        try:
            # Deleting one end removes the pair now; left to the namespace's end, it would go asynchronously.
            self._remove_veth(sandbox.veth, check=True)
        finally:
            self._stop_holder(holder)
            with self._lock:
                self._used.discard(int(ipaddress.IPv4Address(sandbox.ip)) - int(self.pod_network.network_address))

    def sandboxes(self) -> list[Sandbox]:
        with self._lock:
            return [entry[0] for entry in self._sandboxes.values() if entry is not None]

    def add_service_ip(self, ip: str) -> None:
        if ipaddress.IPv4Address(ip) not in self.service_network:
            raise ValueError(f"Service IP {ip} is outside the service CIDR {self.service_network}")
        self._check_namespace()
        with self._lock:
            if ip not in self._service_ips:
                self._run_ip(f"addr add {ip}/32 dev {SERVICES_LINK}\n")
                self._service_ips.add(ip)

    def remove_service_ip(self, ip: str) -> None:
        with self._lock:
            if ip in self._service_ips:
                self._run_ip(f"addr del {ip}/32 dev {SERVICES_LINK}\n")
                self._service_ips.discard(ip)

    def set_service(self, ip: str, ports: Mapping[int, Sequence[Address]]) -> None:
        """Make `ip` local and proxy its ports (service port -> [(pod IP, target port)]); call again on every
        endpoint change (an empty list refuses that port's connections)."""
        self.add_service_ip(ip)
        self.proxy.set_ports(ip, ports)

    def remove_service(self, ip: str) -> None:
        self.proxy.remove(ip)
        self.remove_service_ip(ip)

    def close(self) -> None:
        """Stop the Service proxy and delete every sandbox (the bridge and svc0 go with the namespace)."""
        self.proxy.close()
        for sandbox in self.sandboxes():
            self.delete_sandbox(sandbox)

    def __enter__(self) -> PodNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_namespace(self) -> None:
        """Guards the host's network from a node that forgot setup() or calls from a thread elsewhere."""
        if self._netns is None:
            raise RuntimeError("PodNetwork.setup() has not run: call it once in the cluster network namespace first")
        if _current_netns() != self._netns:
            raise RuntimeError("called from another network namespace than setup() ran in: call from the node's own")

    def _allocate(self) -> int:
        """The next free offset after the last one handed out (not the lowest free): an IP just released is not
        reused at once, while stale endpoints or ARP entries may still point at it."""
        last = self.pod_network.num_addresses - 2  # the last one is the broadcast address
        for _ in range(last):
            offset = self._next
            self._next = offset + 1 if offset < last else 2
            if offset not in self._used:
                self._used.add(offset)
                return offset
        raise RuntimeError(f"pod CIDR {self.pod_network} is full ({len(self._used)} sandboxes): delete sandboxes")

    def _start_holder(self) -> subprocess.Popen:
        # The holder's stdin is a pipe only this process writes to: when the node ends, however it dies, `cat` sees
        # EOF and exits, and the namespace goes with it. "ready" is printed after unshare() took effect, before
        # anything is moved into the namespace.
        holder = subprocess.Popen(
            [self._unshare, "--net", "--", "/bin/sh", "-c", "echo ready; exec cat >/dev/null 2>&1"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        output = _read_line(holder.stdout, _TIMEOUT)
        holder.stdout.close()
        if output != b"ready\n":
            self._stop_holder(holder)
            raise RuntimeError(
                f"the sandbox holder `unshare --net` did not start: {output.decode(errors='replace').strip()!r} "
                "(creating network namespaces needs root)"
            )
        return holder

    @staticmethod
    def _stop_holder(holder: subprocess.Popen) -> None:
        holder.kill()
        holder.stdin.close()
        holder.wait(_TIMEOUT)

    def _remove_veth(self, veth: str, check: bool) -> None:
        try:
            self._run_ip(f"link del {veth}\n")
        except RuntimeError:
            # Gone already if the sandbox's namespace ended (holder killed from outside): nothing left to do then.
            if check and veth in {name for _, name in socket.if_nameindex()}:
                raise

    def _run_ip(self, commands: str, netns: str | None = None) -> None:
        if netns is None and self._netns is not None:
            self._check_namespace()
        argv = [self._ip, "-batch", "-"]
        if netns is not None:
            argv = [self._nsenter, f"--net={netns}", *argv]
        result = subprocess.run(argv, input=commands, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
        if result.returncode != 0:
            hint = "" if os.geteuid() == 0 else " (network namespaces need root)"
            raise RuntimeError(f"{' '.join(argv)} failed{hint}: {result.stderr.strip()}; commands:\n{commands}")


def hosts_file(
    namespace: str,
    services: Sequence[tuple[str, str, str]],
    pod_name: str | None = None,
    pod_ip: str | None = None,
    cluster_domain: str = CLUSTER_DOMAIN,
) -> str:
    """/etc/hosts for a pod of `namespace`: every Service (name, namespace, cluster IP) under its qualified names, the
    short name too for the pod's own namespace (lookups in /etc/hosts do not walk resolv.conf's search list), plus
    localhost and the pod's hostname. Services without a cluster IP (headless: "None" or "") are left out."""
    if (pod_name is None) != (pod_ip is None):
        raise ValueError("give both pod_name and pod_ip, or neither")
    lines = [
        "# Kubernetes-managed hosts file (eksflow local cluster node); rewritten in place as Services change.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "fe00::0\tip6-mcastprefix",
        "fe00::1\tip6-allnodes",
        "fe00::2\tip6-allrouters",
    ]
    if pod_ip is not None:
        lines.append(f"{ipaddress.ip_address(pod_ip)}\t{pod_name}")
    for name, service_namespace, cluster_ip in sorted(services, key=lambda s: (s[1] != namespace, s[1], s[0])):
        if cluster_ip in ("", "None"):
            continue
        try:
            ip = ipaddress.ip_address(cluster_ip)
        except ValueError as error:
            raise ValueError(f"Service {service_namespace}/{name}: cluster IP {cluster_ip!r} is not an IP") from error
        qualified = f"{name}.{service_namespace}"
        names = [qualified, f"{qualified}.svc", f"{qualified}.svc.{cluster_domain}"]
        if service_namespace == namespace:
            names.insert(0, name)
        lines.append(f"{ip}\t{' '.join(names)}")
    return "\n".join(lines) + "\n"


def resolv_conf(namespace: str, cluster_domain: str = CLUSTER_DOMAIN) -> str:
    """resolv.conf for a pod of `namespace`. The nameserver is 127.0.0.1 in the pod's own namespace, where nothing
    listens on UDP 53: the kernel answers each query with ICMP port unreachable, which it never rate-limits on
    loopback, so a name missing from /etc/hosts fails at once (ECONNREFUSED) instead of after resolver timeouts.
    (The gateway would answer the same, but ICMP from another host is rate-limited per peer: some lookups would
    then wait out the timeout.) timeout:1 attempts:1 bound the wait should anything listen there after all."""
    return (
        "# eksflow local cluster node: Services resolve from /etc/hosts; no DNS server answers here.\n"
        f"search {namespace}.svc.{cluster_domain} svc.{cluster_domain} {cluster_domain}\n"
        "nameserver 127.0.0.1\n"
        "options ndots:5 timeout:1 attempts:1\n"
    )


def write_in_place(path: Path, text: str) -> None:
    """Replace the content of `path` keeping its inode, as it is bind-mounted into running pods (a rename would leave
    them on the old file). Writers are serialized with flock. A shorter text is first written padded with newlines
    up to the old size and then truncated, so a reader sees the old file, or the new one with trailing blank lines
    (ignored in hosts and resolv.conf), never an empty file; only a read racing the single write itself can mix them,
    which no same-inode update avoids."""
    data = text.encode()
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as error:
        reason = "it is a symlink" if error.errno == errno.ELOOP else error.strerror
        raise OSError(error.errno, f"cannot open {path} for an in-place write: {reason}") from error
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{path} is not a regular file: write_in_place rewrites the node's own files")
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size == len(data) and os.pread(fd, size, 0) == data:
            return
        padded = data + b"\n" * max(0, size - len(data))
        written = 0
        while written < len(padded):
            written += os.pwrite(fd, padded[written:], written)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)

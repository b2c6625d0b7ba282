"""The node process: `python -m eksflow_dev.cluster.node --state-dir D --api-port P [--name N]`.

It starts in the host's network namespace, keeps a handle on it, then moves into a network namespace of its
own (the cluster network: bridge, pod sandboxes, Service IPs) before it starts any thread. The API server
on the host's 127.0.0.1 is reached through a forwarder on the gateway, as pods reach it."""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import threading
from pathlib import Path

from eksflow_dev.cluster.client import Client
from eksflow_dev.cluster.layout import Layout
from eksflow_dev.cluster.node.forward import Forwarder
from eksflow_dev.cluster.node.kubelet import Kubelet
from eksflow_dev.cluster.node.network import PodNetwork

CLONE_NEWNET = 0x40000000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eksflow-local-node")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--api-port", type=int, required=True)
    parser.add_argument("--name", default="eksflow-local")
    parser.add_argument("--cgroup-parent", default="")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    layout = Layout(Path(args.state_dir))
    host_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
    if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET) != 0:
        raise SystemExit(f"unshare(CLONE_NEWNET) failed: {os.strerror(ctypes.get_errno())} (the node needs root)")
    network = PodNetwork()
    network.setup()
    host_ns_path = f"/proc/{os.getpid()}/fd/{host_ns}"
    api_forward = Forwarder(
        "/proc/self/ns/net", (network.gateway, args.api_port), host_ns_path, ("127.0.0.1", args.api_port)
    )
    client = Client(
        network.gateway,
        args.api_port,
        layout.pki_dir / "ca.crt",
        (layout.pki_dir / "admin.token").read_text().strip(),
        "kubelet/v1.34.0 (eksflow-local)",
    )
    kubelet = Kubelet(client, layout, args.name, network, host_ns_path, args.cgroup_parent or f"eksflow-{os.getpid()}")
    kubelet.adopt_host_forward(args.api_port, api_forward)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=kubelet.run, name="kubelet", daemon=True).start()
    logging.info(
        "node %s up: pods on %s, API via %s:%d", args.name, network.pod_network, network.gateway, args.api_port
    )
    stop.wait()
    logging.info("stopping: pods get their grace period")
    kubelet.stop()
    network.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

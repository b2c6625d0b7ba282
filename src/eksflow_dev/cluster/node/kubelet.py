"""The kubelet of the local node: registers the Node, runs a PodWorker per pod bound to it, keeps Service
IPs, the userspace proxy and the pods' hosts files in step with Services and Endpoints, and forwards
Endpoints that name the node's gateway to host processes on 127.0.0.1 (the emulator, PostgreSQL, the DAG
repository, the API server)."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from datetime import UTC, datetime

from eksflow_dev.cluster.client import Client, ClientError
from eksflow_dev.cluster.layout import Layout
from eksflow_dev.cluster.node import network as net
from eksflow_dev.cluster.node.forward import Forwarder
from eksflow_dev.cluster.node.pods import PodWorker

log = logging.getLogger("eksflow.cluster.node")
NODE_LABELS = {
    "kubernetes.io/os": "linux",
    "kubernetes.io/arch": "amd64",
    "topology.kubernetes.io/zone": "local-a",
    "topology.kubernetes.io/region": "local",
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Kubelet:
    def __init__(
        self, client: Client, layout: Layout, node_name: str, network: net.PodNetwork, host_ns: str, cgroup_parent: str
    ):
        self.client, self.layout, self.node_name = client, layout, node_name
        self.network, self.host_ns, self.cgroup_parent = network, host_ns, cgroup_parent
        self.host_ip = network.gateway
        self.workers: dict[str, PodWorker] = {}
        self._lock = threading.Lock()
        self._services: list[dict] = []
        self._service_config: dict[str, dict] = {}
        # Endpoints that name the gateway are host processes on 127.0.0.1 (only the cluster admin can make them)
        self._host_forwards: dict[int, Forwarder] = {}
        self._adopted: set[int] = set()
        self._stop = threading.Event()

    # ------------------------------------------------------------------ API helpers
    def lookup(self, namespace: str):
        def find(kind: str, name: str) -> dict | None:
            plural = {"ConfigMap": "configmaps", "Secret": "secrets"}[kind]
            return self.client.find(f"/api/v1/namespaces/{namespace}/{plural}/{name}")

        return find

    def token_for(self, pod: dict):
        meta = pod["metadata"]

        def issue(account: str, audience: str | None, seconds: int) -> str:
            body = {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {
                    "audiences": [audience] if audience else [],
                    "expirationSeconds": seconds,
                    "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": meta["name"], "uid": meta["uid"]},
                },
            }
            answer = self.client.create(f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{account}/token", body)
            return answer["status"]["token"]

        return issue

    def services(self) -> list[dict]:
        return list(self._services)

    def event(self, pod: dict, kind: str, reason: str, message: str) -> None:
        meta = pod["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:12]}", "namespace": meta["namespace"]},
            "involvedObject": {
                "kind": "Pod",
                "apiVersion": "v1",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "count": 1,
            "firstTimestamp": _now(),
            "lastTimestamp": _now(),
            "source": {"component": "kubelet", "host": self.node_name},
        }
        with contextlib.suppress(ClientError, OSError):
            self.client.create(f"/api/v1/namespaces/{meta['namespace']}/events", body)

    def patch_status(self, worker: PodWorker, status: dict) -> bool:
        try:
            self.client.patch(f"/api/v1/namespaces/{worker.namespace}/pods/{worker.name}/status", {"status": status})
            return True
        except ClientError as error:
            if error.code == 404:
                worker.removed()
            return False
        except OSError:
            return False

    def finish_deletion(self, worker: PodWorker) -> None:
        with contextlib.suppress(ClientError, OSError):
            self.client.delete(f"/api/v1/namespaces/{worker.namespace}/pods/{worker.name}", gracePeriodSeconds="0")

    def forget(self, worker: PodWorker) -> None:
        with self._lock:
            if self.workers.get(worker.uid) is worker:
                del self.workers[worker.uid]

    def write_dns(self, worker: PodWorker) -> None:
        worker.dir.mkdir(parents=True, exist_ok=True)
        entries = [
            (s["metadata"]["name"], s["metadata"]["namespace"], s["spec"]["clusterIP"])
            for s in self._services
            if s["spec"].get("clusterIP") not in (None, "", "None")
        ]
        net.write_in_place(worker.dir / "hosts", net.hosts_file(worker.namespace, entries, worker.name, worker.pod_ip))
        net.write_in_place(worker.dir / "resolv.conf", net.resolv_conf(worker.namespace))

    def adopt_host_forward(self, port: int, forward: Forwarder) -> None:
        """A gateway port already forwarded to the host (the API server's, made before the kubelet's client)."""
        self._host_forwards[port] = forward
        self._adopted.add(port)

    # ------------------------------------------------------------------ node
    def register(self) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.node_name, "labels": {**NODE_LABELS, "kubernetes.io/hostname": self.node_name}},
            "spec": {"podCIDR": net.POD_CIDR},
        }
        if self.client.find(f"/api/v1/nodes/{self.node_name}") is None:
            self.client.create("/api/v1/nodes", body)
        cpus, memory = os.cpu_count() or 1, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        capacity = {"cpu": str(cpus), "memory": f"{memory // 1024}Ki", "pods": "110"}
        status = {
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": [
                {"type": "InternalIP", "address": self.host_ip},
                {"type": "Hostname", "address": self.node_name},
            ],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": _now(),
                    "lastTransitionTime": _now(),
                }
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.34.0-eksflow-local",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "containerRuntimeVersion": "eksflow-local://1",
            },
        }
        self.client.patch(f"/api/v1/nodes/{self.node_name}/status", {"status": status})

    def run(self) -> None:
        self.register()
        threading.Thread(target=self._services_loop, name="services", daemon=True).start()
        self._sync_services()
        while not self._stop.is_set():
            try:
                self._pods_loop()
            except (ClientError, OSError) as error:
                log.warning("pod watch ended (%s); listing again", error)
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.deleting.set()
        for worker in workers:
            worker.thread.join(timeout=60)
        for forward in self._host_forwards.values():
            forward.close()

    # ------------------------------------------------------------------ pods
    def _pods_loop(self) -> None:
        selector = {"fieldSelector": f"spec.nodeName={self.node_name}"}
        listing = self.client.get("/api/v1/pods", **selector)
        for pod in listing["items"]:
            self._pod_event("ADDED", pod)
        for event in self.client.watch("/api/v1/pods", listing["metadata"]["resourceVersion"], 300, **selector):
            if self._stop.is_set():
                return
            if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                self._pod_event(event["type"], event["object"])

    def _pod_event(self, kind: str, pod: dict) -> None:
        meta = pod["metadata"]
        with self._lock:
            worker = self.workers.get(meta["uid"])
            if kind == "DELETED":
                if worker is not None:
                    worker.removed()
                return
            if worker is not None:
                worker.update(pod)
                return
            finished = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
            if meta.get("deletionTimestamp") and (finished or not (pod.get("status") or {}).get("podIP")):
                threading.Thread(target=self._delete_now, args=(meta["namespace"], meta["name"]), daemon=True).start()
                return
            if finished:
                return
            worker = PodWorker(self, pod)
            if meta.get("deletionTimestamp"):
                worker.deleting.set()
            self.workers[meta["uid"]] = worker
        worker.start()

    def _delete_now(self, namespace: str, name: str) -> None:
        with contextlib.suppress(ClientError, OSError):
            self.client.delete(f"/api/v1/namespaces/{namespace}/pods/{name}", gracePeriodSeconds="0")

    # ------------------------------------------------------------------ services
    def _services_loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self._sync_services()
            except (ClientError, OSError) as error:
                log.warning("service sync failed: %s", error)

    def _sync_services(self) -> None:
        services = self.client.get("/api/v1/services")["items"]
        endpoints = {
            (e["metadata"]["namespace"], e["metadata"]["name"]): e
            for e in self.client.get("/api/v1/endpoints")["items"]
        }
        wanted: dict[str, dict[int, list[tuple[str, int]]]] = {}
        gateway_ports: set[int] = set()
        for service in services:
            ip = service["spec"].get("clusterIP")
            if ip in (None, "", "None"):
                continue
            found = endpoints.get((service["metadata"]["namespace"], service["metadata"]["name"])) or {}
            ports: dict[int, list[tuple[str, int]]] = {}
            for port in service["spec"].get("ports") or []:
                backends = []
                for subset in found.get("subsets") or []:
                    numbers = [
                        p["port"]
                        for p in subset.get("ports") or []
                        if p.get("name", "") == port.get("name", "") or len(subset.get("ports")) == 1
                    ]
                    for address in subset.get("addresses") or []:
                        for number in numbers[:1]:
                            backends.append((address["ip"], number))
                            if address["ip"] == self.host_ip:
                                gateway_ports.add(number)
                ports[port["port"]] = backends
            wanted[ip] = ports
        for port in set(self._host_forwards) - gateway_ports - self._adopted:  # no Endpoints name it any more
            self._host_forwards.pop(port).close()
        for port in gateway_ports - set(self._host_forwards):
            self._host_forwards[port] = Forwarder(
                "/proc/self/ns/net", (self.host_ip, port), self.host_ns, ("127.0.0.1", port)
            )
        for ip in set(self._service_config) - set(wanted):
            self.network.remove_service(ip)
        for ip, ports in wanted.items():
            if self._service_config.get(ip) != ports:
                self.network.set_service(ip, ports)
        self._service_config = wanted
        names = sorted(
            (s["metadata"]["namespace"], s["metadata"]["name"], s["spec"].get("clusterIP")) for s in services
        )
        if names != sorted(
            (s["metadata"]["namespace"], s["metadata"]["name"], s["spec"].get("clusterIP")) for s in self._services
        ):
            self._services = services
            with self._lock:
                workers = list(self.workers.values())
            for worker in workers:
                if worker.pod_ip:
                    self.write_dns(worker)
        else:
            self._services = services

"""Where the local cluster keeps its files (one state directory), shared by the API server and the node."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def pki_dir(self) -> Path:
        return self.root / "pki"

    @property
    def access_entries(self) -> Path:
        """EKS access entries (api/access_entries.py): tokens of IAM principals, their groups and access policies."""
        return self.pki_dir / "access-entries.json"

    @property
    def audit_log(self) -> Path:
        return self.root / "audit.jsonl"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def state_file(self) -> Path:
        return self.root / "cluster.json"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def node_dir(self) -> Path:
        return self.root / "node"

    def pod_dir(self, uid: str) -> Path:
        return self.node_dir / "pods" / uid

    def container_logs(self, uid: str, container: str) -> Path:
        return self.pod_dir(uid) / "logs" / container

    def container_log(self, uid: str, container: str, restart: int) -> Path:
        return self.container_logs(uid, container) / f"{restart}.log"

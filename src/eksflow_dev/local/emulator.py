"""The patched emulator as a process on a free loopback port: for the test suites and `eksflow check`."""

from __future__ import annotations

import contextlib
import os
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from eksflow_dev.emulator.seed import SeedResult, emulator_client, seed
from eksflow_dev.local import processes
from eksflow_dev.local.offline import REGION


@dataclass
class Emulator:
    url: str
    pid: int
    seeded: SeedResult

    def client(self, service: str):
        return emulator_client(self.url, service, REGION)

    def reset(self, *, reseed: bool = True) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")  # noqa: S310
        urllib.request.urlopen(request, timeout=30).close()  # noqa: S310
        self.seeded = seed(self.url, REGION) if reseed else SeedResult()


@contextlib.contextmanager
def running_emulator(
    log_dir: Path, extra_env: dict[str, str] | None = None, *, seeded: bool = True
) -> Iterator[Emulator]:
    """The patched emulator on a free loopback port (seeded unless told not to), stopped by PID on exit."""
    port = processes.free_port()
    env = {**os.environ, **(extra_env or {})}
    managed = processes.start(
        "emulator", [sys.executable, "-m", "eksflow_dev.emulator", "--port", str(port)], env, log_dir
    )
    url = f"http://127.0.0.1:{port}"
    try:
        processes.wait_http(f"{url}/moto-api/data.json", 30, process=managed)
        yield Emulator(url=url, pid=managed.process.pid, seeded=seed(url, REGION) if seeded else SeedResult())
    finally:
        processes.stop_pid(managed.process.pid)
        managed.process.wait(timeout=10)

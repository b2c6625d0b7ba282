"""Run the real helm on the chart; find it where `make tools` puts it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "helm" / "eksflow"


def helm_binary() -> str:
    for candidate in (os.environ.get("EKSFLOW_HELM"), shutil.which("helm"), str(REPO / ".tools" / "bin" / "helm")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("helm is not installed: run `make tools` (or `make test`, which installs it)")


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([helm_binary(), *args], capture_output=True, text=True, check=False, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
    return result


def render(*value_files: Path, sets: tuple[str, ...] = (), namespace: str = "eksflow") -> list[dict]:
    args = ["template", "eksflow", str(CHART), "--namespace", namespace]
    for path in value_files:
        args += ["-f", str(path)]
    for item in sets:
        args += ["--set", item]
    return [doc for doc in yaml.safe_load_all(helm(*args).stdout) if doc]

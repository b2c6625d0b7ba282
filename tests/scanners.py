"""Run the scanners (checkov, hadolint, check-jsonschema, shellcheck) from the `make tools` venv, or PATH."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.tools import find_tool

REPO = Path(__file__).resolve().parents[1]
SKIP_COMMENT = re.compile(r"checkov:skip=(?P<check>[A-Z0-9_]+)(?P<rest>.*)")


def scan_tool(name: str) -> str:
    """Pinned scanners from the tool venv first (EKSFLOW_SCAN_BIN, .tools/scan/bin), then PATH."""
    configured = os.environ.get("EKSFLOW_SCAN_BIN")
    return find_tool(
        name,
        Path(configured) / name if configured else None,
        REPO / ".tools" / "scan" / "bin" / name,
        shutil.which(name),
    )


def scan(*args: str) -> dict:
    """checkov's JSON report for one framework (offline: --skip-download, no platform calls)."""
    command = [scan_tool("checkov"), *args, "--skip-download", "--output", "json"]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, env=env, cwd=REPO)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise AssertionError(
            f"checkov did not report JSON (exit {result.returncode}):\n{result.stderr[-3000:]}"
        ) from None
    return report[0] if isinstance(report, list) else report


def failures(report: dict) -> list[str]:
    return [
        f"{c['check_id']} {c['check_name']} — {c['resource']} ({c['file_path']}:{c['file_line_range'][0]})"
        for c in report.get("results", {}).get("failed_checks", [])
    ]


def skips_without_reason(paths: list[Path]) -> list[str]:
    """Inline `checkov:skip=ID: reason` comments whose reason is missing or too short to explain anything."""
    bad = []
    for path in paths:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = SKIP_COMMENT.search(line)
            if match and len(match["rest"].lstrip(": ").strip()) < 20:
                bad.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    return bad

"""Find a command-line tool the tests run (helm, kubectl, terraform, scanners), or skip saying how to get it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAKE_TOOLS = "run `make tools` (or `make test`, which installs it)"


def find_tool(name: str, *candidates: str | Path | None, hint: str = MAKE_TOOLS) -> str:
    """The first candidate path that is an executable file, absolute (`make test` passes `.tools/bin/helm`; a test
    may link it or run it from another folder); CI turns the skip into a failure."""
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(Path(candidate).absolute())
    pytest.skip(f"{name} is not installed: {hint}")

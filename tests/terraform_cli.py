"""The real terraform for the tests (eksflow_dev.terraform_cli), skipped with the reason when it is missing."""

from __future__ import annotations

from pathlib import Path

from eksflow_dev import terraform_cli
from eksflow_dev.terraform_cli import cli_env, provider_mirror
from tests.tools import find_tool

__all__ = ["cli_env", "provider_mirror", "terraform", "terraform_binary"]


def terraform_binary() -> str:
    return find_tool("terraform", terraform_cli.find_terraform(), hint=terraform_cli.INSTALL_HINT)


def terraform(*args: str, cwd: Path, env: dict[str, str], check: bool = True, timeout: float = 600):
    try:
        return terraform_cli.run(terraform_binary(), *args, cwd=cwd, env=env, check=check, timeout=timeout)
    except RuntimeError as failed:
        raise AssertionError(str(failed)) from None

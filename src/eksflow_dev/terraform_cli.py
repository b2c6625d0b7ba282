"""Run the real terraform offline-first: from the machine's provider mirror when it has one, with a shared plugin
cache and no real AWS credentials in the environment."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

MIRROR_CANDIDATES = ("/opt/tf-plugins", "/usr/share/terraform/plugins", str(Path.home() / ".terraform.d" / "plugins"))
INSTALL_HINT = "install Terraform >= 1.6 (https://developer.hashicorp.com/terraform/install)"


def find_terraform() -> str | None:
    found = shutil.which("terraform")
    return found if found and os.access(found, os.X_OK) else None


def provider_mirror() -> str | None:
    for candidate in (os.environ.get("EKSFLOW_TF_MIRROR"), *MIRROR_CANDIDATES):
        if candidate and (Path(candidate) / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            return candidate
    return None


def cli_env(tmp: Path) -> dict[str, str]:
    """Environment for terraform: a CLI config using the filesystem mirror if there is one (offline),
    a shared plugin cache, and the emulator's dummy keys instead of any real AWS credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_"))}
    cache = tmp / "plugin-cache"
    cache.mkdir(parents=True, exist_ok=True)
    config = tmp / "terraformrc"
    mirror = provider_mirror()
    body = f'plugin_cache_dir = "{cache}"\n'
    if mirror:
        body += (
            "provider_installation {\n"
            f'  filesystem_mirror {{\n    path    = "{mirror}"\n'
            '    include = ["registry.terraform.io/hashicorp/*"]\n  }\n'
            '  direct {\n    exclude = ["registry.terraform.io/hashicorp/*"]\n  }\n}\n'
        )
    config.write_text(body)
    env.update({"TF_CLI_CONFIG_FILE": str(config), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"})
    env.update(
        {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true"}
    )
    return env


def run(binary: str, *args: str, cwd: Path, env: dict[str, str], check: bool = True, timeout: float = 600):
    result = subprocess.run(
        [binary, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"terraform {' '.join(args)} in {cwd} failed:\n{result.stdout[-3000:]}\n{result.stderr}")
    return result

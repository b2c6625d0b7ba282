"""The local node's images (eksflow_dev.cluster.node.image) held against what they stand for: the repo's Dockerfile
for the platform image, the real git-sync image's users for git-sync."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eksflow_dev.cluster.node import image as images

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)
SRC = REPO / "src"


def dockerfile_facts() -> dict[str, str]:
    """The final stage's base image tag (Airflow and Python versions) and its USER."""
    text = (REPO / "Dockerfile").read_text()
    bases = re.findall(r"^FROM\s+apache/airflow:(\S+?)(?:\s+AS\s+\S+)?\s*$", text, re.MULTILINE | re.IGNORECASE)
    assert bases, "Dockerfile: no FROM apache/airflow:<tag> line"
    tag = bases[-1]
    match = re.fullmatch(r"(\d+\.\d+\.\d+)-python(\d+\.\d+)", tag)
    assert match, f"Dockerfile: base tag {tag!r} is not <airflow version>-python<major.minor>"
    users = re.findall(r"^USER\s+(\S+)\s*$", text, re.MULTILINE)
    assert users, "Dockerfile: no USER"
    return {"airflow": match.group(1), "python": match.group(2), "user": users[-1]}


@pytest.fixture(scope="module")
def platform() -> images.ImageSpec:
    if not Path(images.DUMB_INIT).is_file():
        pytest.skip(
            f"MISSING {images.DUMB_INIT}: the platform image runs the host's dumb-init (apt-get install dumb-init)"
        )
    if sys.prefix == sys.base_prefix:
        pytest.skip("MISSING venv: run the tests with the project's .venv/bin/pytest")
    return images.platform_image("eksflow:local", VENV, SRC)


def passwd_entries(spec: images.ImageSpec) -> dict[int, list[str]]:
    return {int(fields[2]): fields for fields in (line.split(":") for line in spec.passwd)}


def test_platform_image_matches_dockerfile(platform):
    facts = dockerfile_facts()
    assert platform.env["AIRFLOW_VERSION"] == facts["airflow"], "the venv's Airflow is not the Dockerfile's base tag's"
    assert platform.user == int(facts["user"]) == images.AIRFLOW_UID
    assert platform.group == 0

    # Python: same major; a different minor (the venv's 3.11 vs the image's 3.12) is a documented difference.
    venv_python = platform.env["AIRFLOW_PYTHON_VERSION"]
    assert venv_python.split(".")[0] == facts["python"].split(".")[0]
    if ".".join(venv_python.split(".")[:2]) != facts["python"]:
        assert any(note.startswith(f"python {'.'.join(venv_python.split('.')[:2])} ") for note in platform.notes)


def test_platform_image_is_laid_out_like_the_official_image(platform):
    airflow = passwd_entries(platform)[50000]
    assert airflow[0] == "airflow" and airflow[3] == "0"
    assert airflow[5:] == ["/home/airflow", "/bin/bash"]
    assert "root:x:0:airflow" in platform.group_lines
    assert platform.entrypoint == ["/usr/bin/dumb-init", "--", "/entrypoint"] and platform.cmd == []
    assert platform.workdir == platform.env["AIRFLOW_HOME"] == "/opt/airflow"
    path = platform.env["PATH"].split(":")
    assert path.index("/home/airflow/.local/bin") < path.index("/usr/bin")
    assert (str(VENV), "/home/airflow/.local") in platform.host_paths
    assert (str(VENV), str(VENV)) in platform.host_paths  # the venv's scripts have absolute shebangs
    assert ("/opt/airflow", 50000, 0, 0o775) in platform.dirs
    assert platform.env["DUMB_INIT_SETSID"] == "1"
    assert platform.files["/entrypoint"][1] == 0o755


def test_entrypoint_is_valid_bash(platform):
    result = subprocess.run(["bash", "-n"], input=platform.files["/entrypoint"][0], text=True, capture_output=True)
    assert result.returncode == 0, result.stderr
    shellcheck = shutil.which("shellcheck")
    if shellcheck:
        path = images.NODE_DIR / "platform_entrypoint.sh"
        result = subprocess.run([shellcheck, "-S", "warning", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout


def test_gitsync_image_has_the_real_images_users():
    spec = images.gitsync_image(f"{images.GITSYNC_REPOSITORY}:v4.4.2", VENV, SRC)
    users = passwd_entries(spec)
    assert 50000 not in users
    assert users[65533][:4] == ["git-sync", "x", "65533", "65533"]
    assert users[0][0] == "root" and users[65534][0] == "nobody"
    assert "git-sync:x:65533:git-sync" in spec.group_lines
    assert (spec.user, spec.group, spec.workdir, spec.env["HOME"]) == (65533, 65533, "/tmp", "/tmp")
    assert spec.entrypoint == ["/git-sync"]
    assert "-m eksflow_dev.cluster.gitsync" in spec.files["/git-sync"][0]


def test_resolve_knows_only_the_nodes_images(platform):
    assert images.resolve("eksflow:local").ref == "eksflow:local"
    assert images.resolve("docker.io/library/eksflow:local").ref == "eksflow:local"
    assert images.resolve("registry.k8s.io/git-sync/git-sync:v4.4.2").user == 65533
    assert images.resolve("eksflow") is None  # :latest
    assert images.resolve("registry.k8s.io/git-sync/git-sync:v3.6.0") is None
    assert images.resolve("nginx:1.27") is None

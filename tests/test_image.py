"""The Airflow image's Dockerfile, checked without Docker: it installs exactly the pins the tests run with,
bakes in neither DAGs nor pod templates, runs as the pod templates' non-root user, and passes hadolint and
checkov's Dockerfile checks, as do the kind path's images built on it. (Building needs a Docker engine: the image
workflow and the kind-e2e job do that.)"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from tests.scanners import failures, scan, scan_tool, skips_without_reason

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = (REPO / "Dockerfile").read_text()
INSTRUCTIONS = re.findall(r"^(FROM|COPY|RUN|USER|LABEL|ARG)\s+((?:[^\n]*\\\n)*[^\n]*)", DOCKERFILE, re.MULTILINE)


@functools.cache
def _lock() -> dict[str, list[tuple[str, Marker | None]]]:
    pins: dict[str, list[tuple[str, Marker | None]]] = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            pins.setdefault(requirement.name.lower(), []).append((spec.version, requirement.marker))
    return pins


def _pinned(name: str, environment: dict | None = None) -> str | None:
    for version, marker in _lock()[name]:
        if marker is None or marker.evaluate(environment or {}):
            return version
    return None


def test_base_image_is_the_locked_airflow_on_a_supported_python():
    images = [args.split()[0] for kind, args in INSTRUCTIONS if kind == "FROM"]
    assert len(images) == 2, "build stage + final stage"
    python_312 = {"python_version": "3.12", "python_full_version": "3.12.0"}
    for image in images:
        match = re.fullmatch(r"apache/airflow:(?P<airflow>[0-9.]+)-python(?P<python>3\.\d+)", image)
        assert match, f"{image}: base must be the official apache/airflow:<version>-python<x.y> image"
        assert match["airflow"] == _pinned("apache-airflow", python_312), "base image Airflow != requirements.lock"
        requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
        assert SpecifierSet(requires).contains(match["python"] + ".0")


def test_image_and_venv_install_the_same_lock():
    """The image resolves every dependency under `-c requirements.lock`; `make venv` syncs the same file;
    and the venv running this test holds exactly those versions (so tests and image cannot drift)."""
    run = " ".join(args for kind, args in INSTRUCTIONS if kind == "RUN" and "pip install" in args)
    assert "-c /tmp/requirements.lock" in run and "eksflow-" in run
    assert any(kind == "COPY" and args.startswith("requirements.lock ") for kind, args in INSTRUCTIONS)
    assert re.search(
        r"uv pip sync .*--python \$\(BIN\)/python requirements\.lock$", (REPO / "Makefile").read_text(), re.M
    )
    drift = []
    for name, entries in _lock().items():
        for version, marker in entries:
            if marker is not None and not marker.evaluate():
                continue
            try:
                installed = metadata.version(name)
            except metadata.PackageNotFoundError:
                drift.append(f"{name}=={version} not installed")
                continue
            if installed != version:
                drift.append(f"{name}: venv {installed}, lock {version}")
    assert not drift, "the venv differs from requirements.lock (run `make venv`): " + "; ".join(drift)


def test_neither_dags_nor_pod_templates_are_baked_in():
    copies = " ".join(args for kind, args in INSTRUCTIONS if kind == "COPY")
    assert "dags" not in copies and "pod_templates" not in copies
    allowed = {
        line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines() if line.startswith("!")
    }
    assert allowed == {"pyproject.toml", "README.md", "requirements.lock", "src"}
    assert "*" in (REPO / ".dockerignore").read_text().splitlines()


def test_runs_as_the_pod_templates_non_root_user_with_oci_labels():
    users = [args.strip() for kind, args in INSTRUCTIONS if kind == "USER"]
    pod = yaml.safe_load((REPO / "pod_templates" / "base.yaml").read_text())
    assert users[-1] == str(pod["spec"]["securityContext"]["runAsUser"]) != "0"
    labels = " ".join(args for kind, args in INSTRUCTIONS if kind == "LABEL")
    for key in ("source", "revision", "version"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_emulator_image_runs_the_emulator_from_what_it_copies(tmp_path):
    """kind/emulator.Dockerfile: the eksflow image (src/eksflow, the locked dependencies) plus moto and the files
    it COPYs from src/eksflow_dev onto its PYTHONPATH. Laid out the same here — the venv's site-packages without
    its .pth files (the editable install would add the whole src/), a copy of src/eksflow, the copied files
    alone — every module of the package imports, the patches apply, and the ENTRYPOINT's module starts."""
    text = (REPO / "kind" / "emulator.Dockerfile").read_text()
    entry = re.search(r'^ENTRYPOINT \["python", "-m", "(?P<module>[\w.]+)"\]$', text, re.M)["module"]
    pythonpath = re.search(r"^ENV PYTHONPATH=(\S+)$", text, re.M)[1]
    copies = re.findall(r"^COPY (src/\S+) (/\S+)$", text, re.M)
    assert copies, "the emulator is not in the eksflow image: the Dockerfile must copy it"
    root = tmp_path / "image"
    no_bytecode = shutil.ignore_patterns("__pycache__")  # .dockerignore leaves it out
    for source, target in copies:
        (root / target.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        if (REPO / source).is_dir():
            shutil.copytree(REPO / source, root / target.lstrip("/"), ignore=no_bytecode)
        else:
            shutil.copy2(REPO / source, root / target.lstrip("/"))
    # the eksflow wheel of the base image
    shutil.copytree(REPO / "src" / "eksflow", tmp_path / "site" / "eksflow", ignore=no_bytecode)
    package = entry.split(".")[0]
    paths = [str(root / pythonpath.lstrip("/")), str(tmp_path / "site"), sysconfig.get_path("purelib")]
    code = (
        f"import sys, pkgutil, importlib, runpy; sys.path[:0] = {paths!r}\n"
        f"top = importlib.import_module({package!r})\n"
        f"assert all(path.startswith({str(root)!r}) for path in top.__path__), top.__path__\n"
        f"for info in pkgutil.walk_packages(top.__path__, {package + '.'!r}):\n"
        "    if not info.name.endswith('__main__'): importlib.import_module(info.name)\n"
        "importlib.import_module('eksflow_dev.emulator.server').apply_patches({})\n"
        f"sys.argv = ['python', '--help']; runpy.run_module({entry!r}, run_name='__main__', alter_sys=True)\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--port" in result.stdout and "--host" in result.stdout


# The eksflow image and the kind path's images built on it (emulator, DAG repository copy).
DOCKERFILES = [REPO / "Dockerfile", *sorted((REPO / "kind").glob("*.Dockerfile"))]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_is_clean(dockerfile):
    result = subprocess.run(
        [scan_tool("hadolint"), "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_dockerfile_checks_pass():
    files = [arg for dockerfile in DOCKERFILES for arg in ("--file", str(dockerfile))]
    report = scan(*files, "--framework", "dockerfile")  # one checkov start for all: it costs seconds each
    checked = {Path(check["file_path"]).name for check in report["results"]["passed_checks"]}
    assert checked == {dockerfile.name for dockerfile in DOCKERFILES}
    assert not failures(report)
    assert not skips_without_reason(DOCKERFILES)

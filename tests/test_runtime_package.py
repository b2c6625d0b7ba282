"""The runtime package (src/eksflow, all the platform image installs) stays apart from the developer tooling
(src/eksflow_dev): it imports eksflow_dev only inside the developer commands of eksflow/cli.py, never moto or
pytest, and holds none of the tooling's modules; where eksflow_dev is missing, as in the image, those commands
exit 2 saying to run them from a checkout, while `eksflow roles` works."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUNTIME = REPO / "src" / "eksflow"
DEV = REPO / "src" / "eksflow_dev"
TEST_ONLY = ("moto", "pytest", "_pytest")


def _imported_modules(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module]
    if (  # importlib.import_module("...") / __import__("...") with a literal name
        isinstance(node, ast.Call)
        and (getattr(node.func, "attr", None) == "import_module" or getattr(node.func, "id", None) == "__import__")
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return [node.args[0].value]
    return []


def _imports_with_scope(tree: ast.Module) -> list[tuple[str, int, bool]]:
    """(module, line, inside a function) for every import of the file."""
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for module in _imported_modules(node):
            found.append((module, node.lineno, in_function))
        inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return found


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def test_runtime_package_imports_developer_tooling_only_inside_cli_commands():
    bad = []
    for path in sorted(RUNTIME.rglob("*.py")):
        name = path.relative_to(RUNTIME.parent).as_posix()
        for module, line, in_function in _imports_with_scope(ast.parse(path.read_text(), filename=str(path))):
            where = f"{name}:{line}: {module}"
            if _top(module) in TEST_ONLY:
                bad.append(f"{where} (test-only dependency, not in the image)")
            elif _top(module) == "eksflow_dev" and not (name == "eksflow/cli.py" and in_function):
                bad.append(f"{where} (eksflow_dev outside a command function of eksflow/cli.py)")
    assert not bad, "the runtime package reaches for developer tooling:\n" + "\n".join(bad)


def test_the_check_sees_what_it_must_refuse():
    tree = ast.parse(
        "import moto\nfrom eksflow_dev.deploy import run\n"
        "def command():\n    from eksflow_dev.kind import facts\n    importlib.import_module('eksflow_dev.bench')\n"
    )
    assert _imports_with_scope(tree) == [
        ("moto", 1, False),
        ("eksflow_dev.deploy", 2, False),
        ("eksflow_dev.kind", 4, True),
        ("eksflow_dev.bench", 5, True),
    ]


def test_runtime_package_holds_none_of_the_developer_modules():
    tooling = {path.stem for path in DEV.iterdir() if path.name not in {"__init__.py", "__pycache__"}}
    assert {"emulator", "local", "cluster", "bench", "bench_aws", "deploy", "kind"} <= tooling
    present = sorted(
        path.relative_to(RUNTIME).as_posix()
        for path in RUNTIME.rglob("*")
        if "__pycache__" not in path.parts
        and (path.stem in tooling or "emulator" in path.name or path.name.startswith("bench"))
    )
    assert not present, f"developer tooling inside src/eksflow (it belongs in src/eksflow_dev): {present}"


@pytest.fixture(scope="module")
def image_like(tmp_path_factory) -> list[str]:
    """A Python run like the platform image's: the locked dependencies, src/eksflow alone, no eksflow_dev.

    The venv's editable install puts the checkout's src/ (both packages) on sys.path through a .pth file, so the
    interpreter starts with -S (no site, so no .pth files) and -I (no PYTHONPATH, no cwd), and gets exactly a copy
    of src/eksflow plus the venv's site-packages on sys.path."""
    root = tmp_path_factory.mktemp("image-site")
    shutil.copytree(RUNTIME, root / "eksflow", ignore=shutil.ignore_patterns("__pycache__"))
    site_packages = list(dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]))
    prelude = (
        f"import sys; sys.path[:0] = {[str(root), *site_packages]!r}\n"
        "import importlib.util\n"
        "assert importlib.util.find_spec('eksflow_dev') is None, 'eksflow_dev importable'\n"
        f"import eksflow; assert eksflow.__file__.startswith({str(root)!r}), eksflow.__file__\n"
        "from eksflow.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    return [sys.executable, "-I", "-S", "-c", prelude]


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120, check=False)


@pytest.mark.parametrize(
    "argv",
    [
        ["chart-values", "--terraform-output", "outputs.json"],
        ["deploy", "--env", "dev", "--dry-run"],
        ["check", "--no-run"],
        ["plan-summary", "plan.json"],
        ["check-revision", "0" * 40],
        ["image", "verify", "0" * 40],
        ["kind", "facts"],
        ["pipelines", "--api-url", "http://127.0.0.1:9"],
        ["demo"],
        ["up"],
        ["down"],
    ],
    ids=lambda argv: argv[0],
)
def test_developer_commands_without_eksflow_dev_say_to_run_them_from_a_checkout(image_like, argv):
    result = _run([*image_like, *argv])
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr == (
        f"eksflow: error: 'eksflow {argv[0]}' is a developer command: its code (the eksflow_dev package) is not "
        "installed here, as in the platform image, which holds only the runtime package. Run it from a checkout "
        f"of the repository: make venv, then .venv/bin/eksflow {argv[0]}\n"
    )


def test_roles_works_without_eksflow_dev(image_like):
    result = _run([*image_like, "roles", "--format", "json", "--env", "dev"])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)

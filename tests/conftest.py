"""Shared fixtures: the patched AWS emulator over HTTP, a migrated Airflow home, strict skips in CI."""

from __future__ import annotations

import os
import tempfile

# Before anything imports Airflow: keep its home out of ~/airflow and examples out of DagBags.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="eksflow-pytest-airflow-"))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
from collections.abc import Iterator
from pathlib import Path

import pytest

from eksflow_dev.dagcheck.home import AirflowHome, migrated_home
from eksflow_dev.local.emulator import Emulator, running_emulator

REPO = Path(__file__).resolve().parents[1]

# Skips that may stay skips in CI: only the Docker-based kind e2e (tests/test_kind_e2e.py; test_kind.py checks that).
ALLOWED_CI_SKIP_MARK = "allowed_ci_skip"


# Files that share one Terraform-applied dev platform (tests/dev_platform.py): one xdist worker runs them
# together, and first, since the apply is the longest single piece of `make test`.
DEV_PLATFORM_FILES = frozenset({"test_terraform_apply.py", "test_least_privilege.py", "test_deploy_roles.py"})
# The next-longest files (each several minutes of local clusters), handed out right after: a worker that takes
# one of them late (e.g. the dev-platform worker at its end) would make the whole run that much longer.
LONG_FILES = ("test_dags_e2e.py", "test_project.py")


def pytest_configure(config):
    config.addinivalue_line("markers", f"{ALLOWED_CI_SKIP_MARK}: a skip CI accepts (Docker-only suites)")


def _start_rank(item) -> int:
    name = item.path.name
    if name in DEV_PLATFORM_FILES:
        return 0
    return 1 + LONG_FILES.index(name) if name in LONG_FILES else 1 + len(LONG_FILES)


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    missing = sorted(name for name in (*DEV_PLATFORM_FILES, *LONG_FILES) if not (here / name).is_file())
    if missing:
        raise pytest.UsageError(f"tests/conftest.py schedules files that do not exist: {missing}; update the lists")
    items.sort(key=_start_rank)  # stable: keeps the order otherwise


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class DevPlatformScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return "dev-platform" if Path(scope).name in DEV_PLATFORM_FILES else scope

    config.option.loadscopereorder = False  # xdist would hand out files by test count, not in the order above
    return DevPlatformScheduling(config, log)


def pytest_terminal_summary(terminalreporter):
    """Tables that tests report with record_property("table: <title>", text) (e.g. the least-privilege
    probes), printed after the run; user properties reach the controller under xdist too."""
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        for name, text in getattr(report, "user_properties", []):
            if name.startswith("table: "):
                terminalreporter.write_sep("-", name.removeprefix("table: "))
                terminalreporter.write_line(text)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    strict = os.environ.get("EKSFLOW_STRICT_SKIPS") == "1"
    if report.skipped and strict and item.get_closest_marker(ALLOWED_CI_SKIP_MARK) is None:
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which counts as a failure: {report.longrepr}"


@pytest.fixture(autouse=True)
def _signal_mask_unchanged():
    """A test that leaves signals blocked in this process fails: every process it starts later inherits the mask (a
    triggerer started with SIGTERM blocked never stops: tests/test_queue_table_bridge.py hung in CI that way)."""
    import signal

    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    yield
    after = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    assert after == before, f"the test left signals {sorted(s.name for s in after - before)} blocked in this process"


@pytest.fixture(scope="session")
def emulator(tmp_path_factory) -> Iterator[Emulator]:
    with running_emulator(tmp_path_factory.mktemp("emulator")) as running:
        yield running


@pytest.fixture(scope="session")
def dev_platform(tmp_path_factory):
    """terraform/envs/dev applied to its own emulator, destroyed at the end (tests/dev_platform.py)."""
    from tests.dev_platform import applied_dev_platform

    yield from applied_dev_platform(tmp_path_factory.mktemp("envs-dev-apply"))


@pytest.fixture(scope="module")
def ecr_emulator(tmp_path_factory) -> Iterator[Emulator]:
    """An emulator of the module's own, unseeded (the image-release tests use only ECR; a new repository per test is
    cheaper than a reset)."""
    with running_emulator(tmp_path_factory.mktemp("ecr-emulator"), seeded=False) as running:
        yield running


@pytest.fixture()
def ecr(ecr_emulator):
    """An ECR client with the platform's Airflow repository (immutable tags), deleted after the test."""
    from eksflow.platform import ecr_repository_name
    from tests.support.ecr import create_repository

    client = ecr_emulator.client("ecr")
    create_repository(client)
    yield client
    client.delete_repository(repositoryName=ecr_repository_name(), force=True)


@pytest.fixture()
def fresh_emulator(emulator: Emulator) -> Emulator:
    """The session emulator, reset to the seed state."""
    emulator.reset()
    return emulator


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory) -> AirflowHome:
    """A migrated SQLite Airflow home for `airflow dags test` of dags/ with the chart's airflow.cfg (no emulator
    settings yet; eksflow_dev.dagcheck.home)."""
    return migrated_home(tmp_path_factory.mktemp("airflow"), REPO / "dags")


# The suites marked `cluster` share one installation of the chart on the local cluster (`make test` runs them in
# one process after the others); the fault suite's DAGs are delivered by git-sync with the reference DAGs.
CLUSTER_TEST_DAGS = tuple(sorted((REPO / "tests" / "cluster_dags").glob("*.py")))


@pytest.fixture(scope="session")
def local_platform(tmp_path_factory):
    """The chart on the local cluster (tests/support/cluster.py) with IAM enforced under the roles Terraform's
    module makes, serving the reference DAGs and tests/cluster_dags/."""
    from tests.support.cluster import platform_on_cluster
    from tests.terraform_cli import terraform_binary

    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.fail(
            "the suites marked `cluster` share one local cluster and run in one process: run them without -n "
            '(pytest -m cluster), the others with -n (pytest -n 3 -m "not cluster")'
        )
    terraform_binary()  # IAM enforced: the roles come from terraform/modules/irsa (skips, naming how to get it)
    with platform_on_cluster(tmp_path_factory.mktemp("local-cluster"), CLUSTER_TEST_DAGS, iam=True) as stack:
        yield stack


@pytest.fixture(scope="session")
def reference_pipelines(local_platform):
    """The three reference pipelines run once on the shared platform, in the demo's order (DemoResult)."""
    from eksflow_dev.local.demo import run_pipelines

    return run_pipelines(local_platform, timeout=600, progress=lambda _: None)


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server on a free loopback port (the local cluster's own), stopped at the end."""
    from eksflow_dev.cluster import postgres as server

    problem = server.missing()
    if problem:
        pytest.skip(problem)
    running = server.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def airflow_db_template(postgres, tmp_path_factory) -> str:
    """An Airflow metadata DB migrated once on the session's PostgreSQL, copied per stack
    (tests/support/airflow_stack.py: airflow_stack)."""
    from tests.support.airflow_stack import migrated_template

    return migrated_template(postgres, tmp_path_factory.mktemp("airflow-db-template"))

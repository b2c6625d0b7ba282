"""DAG integrity, for every DAG file in dags/ with no test edit: it imports with the network closed, follows the
platform's rules and every AWS operator runs under the role that owns its service — the checks `eksflow check`
(`make check-dags`) runs (src/eksflow_dev/dagcheck). The tests naming reference DAGs are about their behaviour."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from eksflow.checks.role_fit import check_dag, describe
from eksflow.roles import ROLES
from eksflow_dev.dagcheck.check import parse_offline
from tests.support.worker_pods import reference_dagbag

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
DAG_FILES = sorted(DAGS.glob("*.py"))
REFERENCE_DAGS = {"batch_data_pipeline", "ml_pipeline", "aws_housekeeping"}


@pytest.fixture(scope="module")
def dagbag():
    return reference_dagbag()


@pytest.fixture(scope="module")
def offline():
    """dags/ parsed once with the network closed, each DAG's rules and role fit checked (eksflow check's parse)."""
    return parse_offline([DAGS])


def test_dags_import_with_the_network_closed(offline):
    assert offline["import_errors"] == {}
    assert offline["connect_attempts"] == []
    assert set(offline["dag_ids"]) >= REFERENCE_DAGS


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=[f.name for f in DAG_FILES])
def test_every_dag_file_defines_dags_that_follow_the_rules_and_fit_their_roles(offline, dag_file):
    dag_ids = [dag_id for dag_id, file in offline["files"].items() if Path(file).name == dag_file.name]
    assert dag_ids, f"{dag_file.name} defines no DAG (or failed to import: {offline['import_errors']})"
    assert {dag_id: offline["problems"][dag_id] for dag_id in dag_ids} == {dag_id: [] for dag_id in dag_ids}


def test_the_cluster_suites_own_dags_import_with_the_network_closed():
    """tests/cluster_dags/ reach the local cluster by git-sync; an import error there would stop the cluster
    suite only after the cluster started."""
    report = parse_offline([REPO / "tests" / "cluster_dags"])
    assert report["import_errors"] == {}
    assert report["connect_attempts"] == []
    assert report["dag_ids"]


BAD_PARSE = """\
import boto3
from airflow.sdk import DAG

boto3.client("s3", region_name="eu-west-1").list_buckets()
with DAG("bad_parse", schedule=None):
    pass
"""

SWALLOWS_IT = """\
import boto3
from airflow.sdk import DAG, Variable

try:
    boto3.client("s3", region_name="eu-west-1").list_buckets()
except Exception:
    pass
threshold = Variable.get("score_threshold", default="0.5")
with DAG("swallows_it", schedule=None):
    pass
"""

BAD_RULES = """\
from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.sdk import DAG

from eksflow.kit import default_args, role_kwargs

with DAG("bad_rules", schedule=None, tags=["eksflow"], doc_md="x" * 120, catchup=False, max_active_runs=1,
         default_args=default_args(owner="data-eng", retries=0)):
    EcsRunTaskOperator(task_id="run", cluster="c", task_definition="t", overrides={}, **role_kwargs("ec2-ops"))
"""


def test_a_new_dag_file_is_checked_with_no_test_edit_and_each_problem_is_named(tmp_path):
    """`eksflow check` on a folder with a new DAG file that calls AWS at parse time, one that does so but swallows
    the error (and reads a Variable with a default), and one with a wrong-role operator and retries=0: each problem
    named, exit 1 (the same checks the parametrized tests above run)."""
    (tmp_path / "bad_parse.py").write_text(BAD_PARSE)
    (tmp_path / "bad_rules.py").write_text(BAD_RULES)
    (tmp_path / "swallows_it.py").write_text(SWALLOWS_IT)
    result = subprocess.run(
        [sys.executable, "-m", "eksflow.cli", "check", "--no-run", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    problems = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("PROBLEM ")]
    assert problems == [
        f"PROBLEM {tmp_path / 'bad_parse.py'}:4 reaches s3.eu-west-1.amazonaws.com:443 while the DAG file is "
        "parsed: the network is closed then (the dag-processor parses every file every few minutes); call AWS and "
        "read Variables inside a task",
        f"PROBLEM {tmp_path / 'swallows_it.py'}:5 reaches s3.eu-west-1.amazonaws.com:443 while the DAG file is "
        "parsed: the network is closed then (the dag-processor parses every file every few minutes); call AWS and "
        "read Variables inside a task",
        "PROBLEM bad_rules.run: retries=0; the platform needs at least 2 (eksflow.kit's default_args and helpers "
        "give 3)",
        "PROBLEM bad_rules.run: calls ['ecs'] but runs as 'ec2-ops'; use role ecs-runner",
    ]


def test_no_import_errors_and_all_reference_dags(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) >= REFERENCE_DAGS


def test_role_fit_covers_every_aws_service_in_the_reference_dags(dagbag):
    used = {}
    for dag in (dagbag.dags[dag_id] for dag_id in REFERENCE_DAGS):
        for task in dag.tasks:
            info = describe(dag.dag_id, task)
            for service in info.services:
                used.setdefault(service, set()).add(info.role)
    assert used == {
        "ecs": {"ecs-runner"},
        "sagemaker": {"sagemaker-runner", "ec2-ops"},
        "sagemaker-runtime": {"sagemaker-runner"},
        "ecr": {"sagemaker-runner"},  # the released images of the train and serve jobs (released_image)
        "s3": {"sagemaker-runner", "ec2-ops"},
        "ec2": {"ec2-ops"},
        "cloudwatch": {"ec2-ops"},
    }


def test_role_fit_reports_an_operator_under_the_wrong_role():
    from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
    from airflow.sdk import DAG

    from eksflow.kit import role_kwargs

    with DAG("misfit", schedule=None) as dag:
        EcsRunTaskOperator(task_id="run", cluster="c", task_definition="t", overrides={}, **role_kwargs("ec2-ops"))
        EcsRunTaskOperator(task_id="bare", cluster="c", task_definition="t", overrides={})
    assert check_dag(dag) == [
        "misfit.run: calls ['ecs'] but runs as 'ec2-ops'; use role ecs-runner",
        "misfit.bare: no platform role (executor_config pod_template_file None is not a role's template); "
        "build the task with eksflow.kit",
    ]


def test_mapped_ecs_task_keeps_its_role(dagbag):
    task = dagbag.dags["batch_data_pipeline"].get_task("transform_partition")
    info = describe("batch_data_pipeline", task)
    assert (info.role, info.conn_id, info.pod_template_file) == (
        "ecs-runner",
        ROLES["ecs-runner"].conn_id,
        ROLES["ecs-runner"].pod_template_path,
    )


def test_each_platform_rule_names_the_dag_or_task_and_the_fix():
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG, Param

    from eksflow.checks.rules import check_rules

    with DAG("loose", schedule=None, catchup=True, max_active_runs=3, params={"day": Param(type="string")}) as dag:
        EmptyOperator(task_id="noop", owner="airflow", retries=1)
    assert check_rules(dag) == [
        "loose: tags [] lack 'eksflow'; add tags=['eksflow', ...]",
        "loose: doc_md is missing or shorter than 100 characters; say what the DAG does, its inputs and outputs and "
        "whom to call (the on-call reads it in the UI)",
        "loose: catchup=True; set catchup=False (backfill explicitly with `airflow backfill`)",
        "loose: max_active_runs=3; set max_active_runs=1 (runs must not overlap)",
        "loose: param 'day' has no default; give it one (scheduled and dry runs use defaults)",
        "loose.noop: no owner; use default_args=default_args(owner='<team>')",
        "loose.noop: retries=1; the platform needs at least 2 (eksflow.kit's default_args and helpers give 3)",
    ]

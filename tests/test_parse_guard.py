"""The network is closed while DAG files are parsed, by the platform itself (eksflow.parse_guard, installed by the
``airflow.policy`` entry point eksflow.policy): Airflow's real dag-processor records a parse-time AWS call, or a
Variable read (which its parsing child sends to the parent over a Unix socket), as the file's import error naming
the file, line and what it reached — what `make up` and EKS show in the UI — while the other DAG file of the
folder parses, and code outside a DAG file's import keeps the network."""

from __future__ import annotations

import json
import socket

from eksflow import parse_guard
from eksflow_dev.dagcheck.home import migrated_home

PARSE_TIME_CALL = """\
import boto3
from airflow.sdk import DAG

buckets = boto3.client("s3", region_name="eu-west-1").list_buckets()
with DAG("calls_aws_at_parse_time", schedule=None):
    pass
"""
READS_A_VARIABLE = """\
from airflow.sdk import DAG, Variable

threshold = Variable.get("score_threshold", default="0.5")
with DAG("reads_a_variable_at_parse_time", schedule=None):
    pass
"""
FINE = """\
from airflow.sdk import DAG

with DAG("fine", schedule=None):
    pass
"""


def test_the_dag_processor_records_a_parse_time_aws_call_as_an_import_error_naming_file_line_and_host(tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "calls_aws.py").write_text(PARSE_TIME_CALL)
    (dags / "fine.py").write_text(FINE)
    (dags / "reads_a_variable.py").write_text(READS_A_VARIABLE)
    home = migrated_home(tmp_path / "airflow", dags)
    processed = home.run("dag-processor", "--num-runs", "1", timeout=300)
    assert processed.returncode == 0, processed.stderr[-3000:]
    listed = _json(home.run("dags", "list", "--output", "json"))
    assert [dag["dag_id"] for dag in listed] == ["fine"]
    errors = _json(home.run("dags", "list-import-errors", "--output", "json"), exit_code=1)  # 1: errors listed
    by_file = {error["filepath"].rsplit("/", 1)[-1]: error["error"] for error in errors}
    assert sorted(by_file) == ["calls_aws.py", "reads_a_variable.py"]
    assert (
        f"{dags / 'calls_aws.py'}:4 reaches s3.eu-west-1.amazonaws.com:443 while the DAG file is parsed: the network "
        "is closed then" in by_file["calls_aws.py"]
    )
    assert (
        f"{dags / 'reads_a_variable.py'}:3 reaches Variable 'score_threshold' while the DAG file is parsed"
        in by_file["reads_a_variable.py"]
    )


def _json(result, exit_code=0):
    """The JSON line of an `airflow … --output json` command (warnings may precede it on stdout)."""
    assert result.returncode == exit_code, result.stderr[-2000:]
    return json.loads(next(line for line in reversed(result.stdout.splitlines()) if line.startswith("[")))


def test_outside_a_dag_files_import_the_network_stays_open():
    parse_guard.install()
    assert socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=5):
            pass

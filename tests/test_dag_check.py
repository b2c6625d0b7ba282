"""`eksflow check` (`make check-dags`, src/eksflow_dev/dagcheck): the dry-run opt-out and the run order; its
parse, rules and role fit are exercised by tests/test_dag_integrity.py, its dry runs by tests/test_dags_e2e.py."""

from __future__ import annotations

import pytest

from eksflow_dev.dagcheck.check import opt_out_reason, run_order


def test_a_dag_file_opts_out_of_the_dry_run_only_with_a_reason(tmp_path):
    dag = tmp_path / "dag.py"
    dag.write_text('DRY_RUN_OPT_OUT = "reads the partner SFTP server, which no emulator provides"\n')
    assert opt_out_reason(dag) == "reads the partner SFTP server, which no emulator provides"
    dag.write_text("x = 1\n")
    assert opt_out_reason(dag) is None
    for bad in ('DRY_RUN_OPT_OUT = "slow"\n', "DRY_RUN_OPT_OUT = True\n"):
        dag.write_text(bad)
        with pytest.raises(ValueError, match="DRY_RUN_OPT_OUT must be a string saying why the DAG cannot run"):
            opt_out_reason(dag)


def test_a_dag_scheduled_on_an_asset_runs_after_the_dags_that_produce_it():
    assets = {
        "report": {"consumes": ["s3://b/scored"], "produces": []},
        "score": {"consumes": ["s3://b/curated"], "produces": ["s3://b/scored"]},
        "ingest": {"consumes": [], "produces": ["s3://b/curated"]},
        "other": {"consumes": [], "produces": []},
    }
    assert run_order(["report"], assets) == ["ingest", "score", "report"]
    assert run_order(["score", "other"], assets) == ["other", "ingest", "score"]


def test_dags_that_feed_each_other_run_once_each():
    assets = {"a": {"consumes": ["x"], "produces": ["y"]}, "b": {"consumes": ["y"], "produces": ["x"]}}
    assert sorted(run_order(["a"], assets)) == ["a", "b"]

"""The whole local stack on a real PostgreSQL metadata DB (production uses RDS PostgreSQL): the three
pipelines chained as in `make demo`, a re-run of the training task that must not start a second job,
and a clean stop of every process by PID."""

from __future__ import annotations

import os

import pytest

from eksflow.local.demo import ML_DAG, run_pipelines, summary_table
from eksflow.local.seed import emulator_client
from eksflow.local.stack import LocalStack, StackOptions, wait_for_run

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_pipelines_on_postgres_and_training_rerun_reattaches(postgres, tmp_path):
    stack = LocalStack(StackOptions(state_dir=tmp_path / "stack", database_url=postgres.url))
    try:
        stack.start(progress=lambda _: None)
        result = run_pipelines(stack, progress=lambda _: None)
        assert result.ok, summary_table(result)
        assert all(ti["state"] in {"success"} for tis in result.task_instances.values() for ti in tis), summary_table(
            result
        )

        # Bad DAG params are refused at trigger time, naming the param.
        for conf, field in (({"partitions": 0}, "partitions"), ({"day": "28.11.2026"}, "day")):
            with pytest.raises(RuntimeError, match=rf"HTTP 400: .*{field}"):
                stack.api.trigger("batch_data_pipeline", conf)

        sagemaker = emulator_client(stack.emulator_url, "sagemaker")
        jobs_before = sagemaker.list_training_jobs()["TrainingJobSummaries"]
        assert len(jobs_before) == 1
        ml_run = result.runs[ML_DAG]["dag_run_id"]
        stack.api.request(
            "POST",
            f"/dags/{ML_DAG}/clearTaskInstances",
            {
                "dry_run": False,
                "task_ids": ["train"],
                "dag_run_id": ml_run,
                "only_failed": False,
                "reset_dag_runs": True,
            },
        )
        rerun = wait_for_run(stack, ML_DAG, ml_run, timeout=300, progress=lambda _: None)
        assert rerun["state"] == "success"
        train = next(ti for ti in stack.api.task_instances(ML_DAG, ml_run) if ti["task_id"] == "train")
        assert train["try_number"] == 2
        assert sagemaker.list_training_jobs()["TrainingJobSummaries"] == jobs_before
    finally:
        pids = [m.process.pid for m in stack.processes]
        stack.stop()
    assert pids and not any(_alive(pid) for pid in pids)
    assert not (tmp_path / "stack" / "stack.json").exists()

"""DAG runs made in an Airflow home's metadata DB the way Airflow makes them, for `airflow tasks test <dag> <task>
<run_id>` to run their tasks with the run's context from the execution API, as in a deployment: the shared part of
tests/support/asset_runs.py (a run an Asset event triggered) and tests/support/manual_runs.py (a manual run)."""

from __future__ import annotations

import subprocess
import sys

from eksflow_dev.dagcheck.home import AirflowHome


def made_in_home(home: AirflowHome, extra_env: dict[str, str], module: str, *args: str, serialize: bool = True) -> str:
    """The last line ``python -m <module> <args>`` prints, run with the home's environment once the DAGs are
    serialized (``serialize=False``: they are already): what a module of this package's ``main`` made."""
    if serialize:
        serialized = home.run("dags", "reserialize", extra_env=extra_env, timeout=300)
        if serialized.returncode != 0:
            raise RuntimeError(f"airflow dags reserialize failed:\n{serialized.stderr[-3000:]}")
    command = [sys.executable, "-m", module, *args]
    made = subprocess.run(
        command, env={**home.env, **extra_env}, capture_output=True, text=True, timeout=300, check=False
    )
    if made.returncode != 0:
        raise RuntimeError(f"python -m {module} failed:\n{made.stderr[-3000:]}")
    return made.stdout.strip().splitlines()[-1]


def new_dag_run(session, dag_id: str, *, run_type, triggered_by, state):
    """A run of the serialized ``dag_id`` created as Airflow creates one (no logical date, run after now), of
    ``run_type`` (airflow.utils.types.DagRunType), ``triggered_by`` (DagRunTriggeredByType), in ``state``."""
    from airflow.models.dagrun import DagRun
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils import timezone

    dag = SerializedDagModel.get_dag(dag_id, session=session)
    if dag is None:
        raise RuntimeError(f"no serialized DAG {dag_id!r} in the DB: run `airflow dags reserialize` first")
    now = timezone.utcnow()
    return dag.create_dagrun(
        run_id=DagRun.generate_run_id(run_type=run_type, logical_date=None, run_after=now),
        logical_date=None,
        data_interval=None,
        run_after=now,
        run_type=run_type,
        triggered_by=triggered_by,
        state=state,
        session=session,
    )

"""A manual DAG run made in an Airflow home's metadata DB the way Airflow makes one: queued as a trigger queues it
(the REST API's or `airflow dags trigger`), then started as the scheduler starts it (state running, ``start_date``
now: airflow/jobs/scheduler_job_runner.py ``_start_queued_dagruns``). Its tasks then run with `airflow tasks test
<dag> <task> <run_id>`, whose context carries the run from the execution API, as in a deployment.

Run as ``python -m tests.support.manual_runs <dag_id>`` with the home's environment (the DAG serialized first:
``airflow dags reserialize``); prints the run id and its start (ISO 8601).
"""

from __future__ import annotations

import datetime as dt
import sys

from eksflow_dev.dagcheck.home import AirflowHome
from tests.support.dag_runs import made_in_home, new_dag_run


def started_manual_run(
    home: AirflowHome, dag_id: str, extra_env: dict[str, str], *, serialize: bool = True
) -> tuple[str, dt.datetime]:
    """The run id and start of a new manual run of ``dag_id``, started (``serialize=False``: the DAG is already)."""
    made = made_in_home(home, extra_env, "tests.support.manual_runs", dag_id, serialize=serialize)
    run_id, started = made.split()
    return run_id, dt.datetime.fromisoformat(started)


def main(dag_id: str) -> str:
    from airflow.utils import timezone
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    with create_session() as session:
        run = new_dag_run(
            session,
            dag_id,
            run_type=DagRunType.MANUAL,
            triggered_by=DagRunTriggeredByType.REST_API,
            state=DagRunState.QUEUED,
        )
        run.state = DagRunState.RUNNING  # the scheduler's _update_state
        run.start_date = timezone.utcnow()
        return f"{run.run_id} {run.start_date.isoformat()}"


if __name__ == "__main__":
    print(main(*sys.argv[1:]))

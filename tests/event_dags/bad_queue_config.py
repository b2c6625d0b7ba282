"""A DAG whose queue table is misconfigured: the dag-processor must record the file's import error naming the
argument (tests/test_queue_table_bridge.py)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from eksflow.events.queue_table import QueueTable
from eksflow.events.queue_table_trigger import queue_table_asset

ROWS = queue_table_asset(QueueTable(conn_id="legacy_db", table="etl_queue; DELETE FROM etl_queue"), name="bad_rows")

with DAG(dag_id="bad_queue_config", schedule=[ROWS], start_date=datetime(2026, 1, 1), catchup=False):
    pass

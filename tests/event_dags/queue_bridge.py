"""The legacy chain of tests/test_queue_table_bridge.py, bridged: rows an old producer marks ready in `etl_queue` →
one Asset event each (QueueTableTrigger) → this DAG claims them, processes each (recording it in `processing_log`,
which has no unique key: a row processed twice shows twice) and writes them back to `curated_queue` for the old
consumers. Connection `legacy_db` and the knobs come from the test's environment."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from eksflow.events.queue_table import QueueTable
from eksflow.events.queue_table_tasks import LegacyTable, claim_rows_task, write_back_task
from eksflow.events.queue_table_trigger import queue_table_asset
from eksflow.kit import default_args, role_task

QUEUE = QueueTable(
    conn_id="legacy_db",
    table="etl_queue",
    payload_columns=("day", "part", "payload"),
    json_columns=("payload",),
    batch_size=int(os.environ.get("TEST_QUEUE_BATCH_SIZE", "5")),
    poll_interval=float(os.environ.get("TEST_QUEUE_POLL_SECONDS", "0.2")),
    claim=os.environ.get("TEST_QUEUE_CLAIM", "skip_locked"),
)
CURATED = LegacyTable(conn_id="legacy_db", table="curated_queue", columns=("day", "part"))
ROWS = queue_table_asset(QUEUE, name="etl_queue_rows")

with DAG(
    dag_id="queue_bridge",
    schedule=[ROWS],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(owner="data-eng", on_failure_callback=None, retries=2, retry_delay=1),
    tags=["eksflow", "test"],
    doc_md="Bridges etl_queue rows to curated_queue through an Asset (tests/test_queue_table_bridge.py).",
) as dag:

    @role_task()
    def process(rows: list[dict]) -> list[dict]:
        import contextlib

        import psycopg2
        from airflow.sdk import get_current_context
        from airflow.sdk.bases.hook import BaseHook

        run_id = get_current_context()["dag_run"].run_id
        conn = BaseHook.get_connection("legacy_db")
        with (
            contextlib.closing(
                psycopg2.connect(host=conn.host, port=conn.port, user=conn.login, dbname=conn.schema)
            ) as connection,
            connection,
            connection.cursor() as cursor,
        ):
            for row in rows:
                cursor.execute("INSERT INTO processing_log (row_id, run_id) VALUES (%s, %s)", (row["row_id"], run_id))
        return rows

    write_back_task(CURATED, process(claim_rows_task(QUEUE)))

"""A legacy queue-table chain bridged, executed: rows an old producer marks ready in PostgreSQL → Airflow's real
triggerer (QueueTableTrigger on a shared stream in ack mode) → one Asset event per row → Airflow's real scheduler
(LocalExecutor, with the api-server's task execution API) runs the DAG scheduled on the Asset
(tests/event_dags/queue_bridge.py): it claims the rows, processes each (recorded in `processing_log`, no unique key:
a row processed twice shows twice) and writes them back to the legacy table the old consumers read.

Then the triggerer is stopped mid-stream, gracefully (SIGTERM to its process tree, as Kubernetes stops a pod) and
hard (SIGKILL), and a new one started: no row is lost, none processed or written back twice, and every event beyond
a row's first says it is a redelivery. Airflow 3.3.2 does not flush its persistence confirmations on shutdown
(eksflow.events.queue_table_trigger), so a SIGTERM may redeliver the events of its last second: the test reports how
many it saw rather than pretending there are none. A malformed row is set aside, a misconfigured table refused."""

from __future__ import annotations

import json
import shutil
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.airflow_stack import AirflowStack, airflow_stack, connect, create_database, wait_for

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BATCH_SIZE = 5  # rows in flight at most (tests/event_dags/queue_bridge.py reads it)


@dataclass
class Bridge:
    stack: AirflowStack
    legacy: object  # psycopg2 connection (autocommit) to the legacy database
    report: dict[str, str] = field(default_factory=dict)

    def sql(self, statement: str, params=()) -> list[tuple]:
        with self.legacy.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def add_rows(self, count: int, start: int) -> list[int]:
        return [
            self.sql(
                "INSERT INTO etl_queue (day, part, payload) VALUES ('2026-11-28', %s, %s) RETURNING id",
                (part, json.dumps({"part": part})),
            )[0][0]
            for part in range(start, start + count)
        ]

    def events(self) -> list[dict]:
        rows = self.stack.query(
            "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.name = 'etl_queue_rows' "
            "ORDER BY e.id"
        )
        return [extra["payload"] for (extra,) in rows]

    def events_by_row(self, ids: list[int]) -> dict[int, list[dict]]:
        found: dict[int, list[dict]] = {row_id: [] for row_id in ids}
        for payload in self.events():
            if payload["row_id"] in found:
                found[payload["row_id"]].append(payload)
        return found

    def done(self, ids: list[int]) -> bool:
        consumed = self.sql("SELECT count(*) FROM etl_queue WHERE id = ANY(%s) AND status = 'consumed'", (ids,))
        written = self.sql("SELECT count(DISTINCT source_id) FROM curated_queue WHERE source_id = ANY(%s)", (ids,))
        return consumed[0][0] == len(ids) and written[0][0] == len(ids)

    def statuses(self, ids: list[int]) -> Counter:
        return Counter(dict(self.sql("SELECT status, count(*) FROM etl_queue WHERE id = ANY(%s) GROUP BY 1", (ids,))))

    def assert_each_row_processed_and_written_back_once(self, ids: list[int]) -> None:
        processed = Counter(dict(self.sql("SELECT row_id, count(*) FROM processing_log GROUP BY 1")))
        assert {row_id: processed[row_id] for row_id in ids} == dict.fromkeys(ids, 1)
        written = self.sql(
            "SELECT source_id, count(*), min(part), min(status) FROM curated_queue WHERE source_id = ANY(%s) "
            "GROUP BY 1",
            (ids,),
        )
        parts = dict(self.sql("SELECT id, part FROM etl_queue WHERE id = ANY(%s)", (ids,)))
        assert sorted(written) == sorted((row_id, 1, parts[row_id], "ready") for row_id in ids)

    def assert_extra_events_say_redelivery(self, ids: list[int]) -> Counter:
        """Per row at most one first-time event; returns how many events the rows got (0: taken by a run's sweep
        before the new triggerer re-emitted it)."""
        counts = Counter()
        for row_id, events in self.events_by_row(ids).items():
            assert sum(not event["redelivery"] for event in events) <= 1, (row_id, events)
            counts[len(events)] += 1
        return counts


@pytest.fixture(scope="module")
def bridge(tmp_path_factory, postgres, airflow_db_template):
    root = tmp_path_factory.mktemp("queue-bridge")
    dags = root / "dags"
    dags.mkdir()
    for name in ("queue_bridge.py", "bad_queue_config.py"):
        shutil.copy(REPO / "tests" / "event_dags" / name, dags)
    create_database(postgres, "legacy_bridge")
    legacy = connect(postgres, "legacy_bridge")
    with legacy.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE etl_queue (id bigserial PRIMARY KEY, status text NOT NULL DEFAULT 'ready', day date,"
            " part int, payload text, consumed_by text);"
            "CREATE TABLE curated_queue (id bigserial PRIMARY KEY, source_id bigint UNIQUE, day date, part int,"
            " status text);"
            "CREATE TABLE processing_log (row_id bigint, run_id text);"
        )
    env = {
        "AIRFLOW_CONN_LEGACY_DB": f"postgresql://postgres@127.0.0.1:{postgres.port}/legacy_bridge",
        "TEST_QUEUE_BATCH_SIZE": str(BATCH_SIZE),
        "TEST_QUEUE_POLL_SECONDS": "0.2",
    }
    start = time.monotonic()
    with airflow_stack(root, postgres, airflow_db_template, dags, env) as stack:
        for component in ("api-server", "scheduler", "dag-processor"):
            stack.start(component)
        wait_for(lambda: stack.query("SELECT count(*) FROM trigger")[0][0] == 1, 120, "the watcher", stack.tail)
        stack.start("triggerer")
        wait_for(lambda: "Watching queue table etl_queue" in stack.log("triggerer"), 120, "the trigger", stack.tail)
        result = Bridge(stack, legacy)
        result.report["stack up"] = f"{time.monotonic() - start:.1f} s"
        yield result
    legacy.close()


def test_rows_in_become_one_event_each_a_dag_run_writes_them_back_and_a_malformed_row_is_set_aside(bridge):
    started = time.monotonic()
    ids = bridge.add_rows(12, start=0)
    (malformed,) = bridge.sql(
        "INSERT INTO etl_queue (day, part, payload) VALUES ('2026-11-28', 999, '{not json') RETURNING id"
    )[0]
    wait_for(lambda: bridge.done(ids), 180, "12 rows processed and written back", bridge.stack.tail)
    wait_for(lambda: bridge.statuses([malformed]) == Counter(failed=1), 60, "the malformed row set aside")
    bridge.report["12 rows end to end"] = f"{time.monotonic() - started:.1f} s"
    bridge.assert_each_row_processed_and_written_back_once(ids)
    events = bridge.events_by_row([*ids, malformed])
    assert {row_id: len(found) for row_id, found in events.items()} == {**dict.fromkeys(ids, 1), malformed: 0}
    first = events[ids[0]][0]
    assert first == {
        "kind": "eksflow.queue-table-row",
        "source": {"conn_id": "legacy_db", "table": "etl_queue"},
        "row_id": ids[0],
        "row": {"day": "2026-11-28", "part": 0, "payload": {"part": 0}},
        "redelivery": False,
    }
    # Logged when the trigger advances it (a run's sweep may have set it aside a moment before, logging in its task).
    lines = wait_for(
        lambda: [line for line in bridge.stack.log("triggerer").splitlines() if "set aside" in line],
        60,
        "the trigger's line for the malformed row",
    )
    assert len(lines) == 1
    assert (
        f"Queue table etl_queue row {malformed} set aside (status 'failed'): column 'payload' is not valid JSON"
        in (lines[0])
    )
    assert bridge.stack.query("SELECT count(*) FROM task_instance WHERE try_number > 1 OR state = 'failed'") == [(0,)]


def _restart_mid_stream(bridge: Bridge, sig: signal.Signals, start: int) -> tuple[list[int], set[int], dict]:
    """40 rows; the triggerer stopped with ``sig`` once ≥ 10 have events, a new one started. The scheduler is down
    meanwhile, so no run's sweep takes a row before the new triggerer re-emits it: the events show what the trigger
    alone does across the restart. Returns the rows, those still claimed when the triggerer was gone, and facts."""
    stack = bridge.stack
    stack.ensure("triggerer", "scheduler")
    wait_for(lambda: not stack.query("SELECT 1 FROM dag_run WHERE state IN ('queued', 'running')"), 120, "idle runs")
    # Idle, so nothing is lost by killing it (its LocalExecutor's graceful stop can take minutes).
    stack.signal("scheduler", signal.SIGKILL)
    ids = bridge.add_rows(40, start=start)
    wait_for(
        lambda: sum(bool(found) for found in bridge.events_by_row(ids).values()) >= 10,
        120,
        "the first events of the stream",
        stack.tail,
    )
    stopped = time.monotonic()
    code = stack.signal("triggerer", sig)
    at_stop = dict(bridge.sql("SELECT id, status FROM etl_queue WHERE id = ANY(%s)", (ids,)))
    claimed = {row_id for row_id, status in at_stop.items() if status == "claimed"}
    facts = {"exit code": code, "statuses after the stop": dict(Counter(at_stop.values()))}
    assert Counter(at_stop.values())["ready"] > 0, f"the stop came after the stream ({facts}): not mid-stream"
    stack.start("triggerer")
    wait_for(lambda: bridge.statuses(ids) == Counter(emitted=40), 180, "every row emitted", stack.tail)
    facts["stop → all 40 emitted"] = f"{time.monotonic() - stopped:.1f} s"
    stack.start("scheduler")
    wait_for(lambda: bridge.done(ids), 180, "40 rows processed and written back", stack.tail)
    facts["stop → all 40 written back"] = f"{time.monotonic() - stopped:.1f} s"
    return ids, claimed, facts


def _assert_redelivered_exactly_what_was_in_flight(bridge: Bridge, ids: list[int], claimed: set[int]) -> int:
    """Rows claimed when the triggerer was gone were emitted again, flagged; every other row has exactly one event.
    Returns how many rows got a second event (their first was persisted but never confirmed to the trigger)."""
    duplicated = 0
    for row_id, events in bridge.events_by_row(ids).items():
        flags = [event["redelivery"] for event in events]
        if row_id in claimed:
            assert flags in ([True], [False, True]), (row_id, events)
            duplicated += len(flags) == 2
        else:
            assert flags == [False], (row_id, events)
    return duplicated


def test_a_triggerer_stopped_gracefully_mid_stream_loses_no_row_and_processes_none_twice(bridge, record_property):
    ids, claimed, facts = _restart_mid_stream(bridge, signal.SIGTERM, start=100)
    assert facts["exit code"] == 0
    assert "Exiting gracefully upon receiving signal 15" in bridge.stack.log("triggerer")
    bridge.assert_each_row_processed_and_written_back_once(ids)
    facts["rows re-emitted"] = len(claimed)
    facts["rows with a second event"] = _assert_redelivered_exactly_what_was_in_flight(bridge, ids, claimed)
    assert len(claimed) <= BATCH_SIZE
    bridge.report["SIGTERM"] = json.dumps(facts)
    record_property("table: queue-table bridge", "\n".join(f"{k}: {v}" for k, v in bridge.report.items()))


def test_a_triggerer_killed_mid_stream_loses_no_row_processes_none_twice_and_flags_its_redeliveries(
    bridge, record_property
):
    ids, claimed, facts = _restart_mid_stream(bridge, signal.SIGKILL, start=200)
    assert facts["exit code"] == -signal.SIGKILL
    bridge.assert_each_row_processed_and_written_back_once(ids)
    facts["rows re-emitted"] = len(claimed)
    facts["rows with a second event"] = _assert_redelivered_exactly_what_was_in_flight(bridge, ids, claimed)
    assert len(claimed) <= BATCH_SIZE  # at most the rows in flight
    assert bridge.stack.query("SELECT count(*) FROM task_instance WHERE try_number > 1 OR state = 'failed'") == [(0,)]
    bridge.report["SIGKILL"] = json.dumps(facts)
    record_property("table: queue-table bridge", "\n".join(f"{k}: {v}" for k, v in bridge.report.items()))


def test_a_misconfigured_queue_table_is_the_dag_files_import_error_naming_the_argument(bridge):
    errors = wait_for(lambda: bridge.stack.query("SELECT filename, stacktrace FROM import_error"), 60, "import error")
    (stacktrace,) = [trace for name, trace in errors if name.endswith("bad_queue_config.py")]
    assert "QueueTable(): argument 'table' is not a plain SQL identifier: 'etl_queue; DELETE FROM etl_queue'" in (
        stacktrace
    )
    assert len(bridge.stack.query("SELECT dag_id FROM dag WHERE dag_id = 'queue_bridge'")) == 1

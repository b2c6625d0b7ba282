"""The queue-table bridge's statements against a real PostgreSQL (no Airflow processes: test_queue_table_bridge.py runs
them in the triggerer and a DAG): concurrent claimers take every ready row exactly once in both claim modes (the
same harness catches a naive claim taking rows twice), the producer re-emits what was claimed and never confirmed,
keeps at most batch_size rows in flight and advances rows by how Airflow resolved their events; the claim task takes
each row once across duplicate events and retries, and the write-back is idempotent."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import uuid

import asyncpg
import pytest
from airflow.triggers.shared_stream import AdvanceItem, AdvanceOutcome, SharedStreamManager

from eksflow.events.queue_table import QueueTable
from eksflow.events.queue_table_tasks import LegacyTable, claim_rows, write_back
from eksflow.events.queue_table_trigger import QueueTableProducer, QueueTableTrigger
from tests.support.airflow_stack import connect, create_database

CLEAN = AdvanceOutcome(acked=1, failed=0)
REJECTED = AdvanceOutcome(acked=0, failed=0, rejected=1)
TIMED_OUT = AdvanceOutcome(acked=0, failed=1)


@pytest.fixture()
def legacy(postgres, monkeypatch):
    """A database of its own with the queue table and a legacy table; ``legacy.sql(...)`` runs a statement."""
    name = f"legacy_{uuid.uuid4().hex[:8]}"
    create_database(postgres, name)
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_DB", f"postgresql://postgres@127.0.0.1:{postgres.port}/{name}")
    connection = connect(postgres, name)
    cursor = connection.cursor()
    cursor.execute(
        "CREATE TABLE etl_queue (id bigserial PRIMARY KEY, status text NOT NULL DEFAULT 'ready', day date, part int,"
        " payload text, consumed_by text);"
        "CREATE TABLE curated_queue (id bigserial PRIMARY KEY, source_id bigint UNIQUE, day date, part int,"
        " status text);"
    )

    class Legacy:
        dsn = f"postgresql://postgres@127.0.0.1:{postgres.port}/{name}"

        @staticmethod
        def sql(statement: str, params=()) -> list[tuple]:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

        @staticmethod
        def add(count: int, payload=None) -> list[int]:
            return [
                Legacy.sql(
                    "INSERT INTO etl_queue (day, part, payload) VALUES ('2026-11-28', %s, %s) RETURNING id",
                    (part, json.dumps({"part": part}) if payload is None else payload),
                )[0][0]
                for part in range(count)
            ]

        @staticmethod
        def statuses() -> dict[int, str]:
            return dict(Legacy.sql("SELECT id, status FROM etl_queue"))

    yield Legacy
    connection.close()


def table(**changes) -> QueueTable:
    settings = {
        "conn_id": "legacy_db",
        "table": "etl_queue",
        "payload_columns": ("day", "part", "payload"),
        "json_columns": ("payload",),
        "batch_size": 7,
        "poll_interval": 0.05,
    }
    return QueueTable(**{**settings, **changes})


async def _naive_claim(connection, batch: int) -> list:
    """The classic race (look, then update what was seen): the control showing the harness below catches a claim
    that takes a row twice."""
    ids = [r["id"] for r in await connection.fetch("SELECT id FROM etl_queue WHERE status = 'ready' LIMIT $1", batch)]
    return await connection.fetch("UPDATE etl_queue SET status = 'claimed' WHERE id = ANY($1) RETURNING id", ids)


async def _claim_concurrently(dsn: str, claim, claimers: int, batch: int) -> list[int]:
    connections = [await asyncpg.connect(dsn) for _ in range(claimers)]

    async def claimer(connection) -> list[int]:
        taken = []
        while True:
            rows = await claim(connection, batch)
            taken += [row["id"] for row in rows]
            if not rows and not await connection.fetchval("SELECT count(*) FROM etl_queue WHERE status = 'ready'"):
                return taken

    try:
        results = await asyncio.gather(*(claimer(connection) for connection in connections))
    finally:
        for connection in connections:
            await connection.close()
    return [row_id for taken in results for row_id in taken]


@pytest.mark.parametrize("mode", ["skip_locked", "for_update"])
def test_concurrent_claimers_take_every_ready_row_exactly_once(legacy, mode):
    ids = legacy.add(400)
    sql = table(claim=mode).claim_sql()

    async def claim(connection, batch):
        return await connection.fetch(sql, "ready", batch, "claimed")

    taken = asyncio.run(_claim_concurrently(legacy.dsn, claim, claimers=6, batch=9))
    assert sorted(taken) == ids  # each once: no row lost, none taken twice
    assert set(legacy.statuses().values()) == {"claimed"}


def test_the_harness_catches_a_claim_that_takes_rows_twice(legacy):
    ids = legacy.add(400)
    taken = asyncio.run(_claim_concurrently(legacy.dsn, _naive_claim, claimers=6, batch=9))
    assert set(taken) == set(ids)
    assert len(taken) > len(ids), "the naive claim should have taken some row twice under this concurrency"


# ---- the producer (what the triggerer drives) ----------------------------------------------------------------------


async def _drain(stream, count: int) -> list:
    return [(await anext(stream))[0] for _ in range(count)]


def test_the_producer_re_emits_unconfirmed_claims_first_then_claims_new_rows(legacy):
    first, second, third = legacy.add(3)
    legacy.sql("UPDATE etl_queue SET status = 'claimed' WHERE id = %s", (second,))  # claimed by a triggerer now gone

    async def scenario():
        producer = QueueTableProducer(table())
        stream = producer.open_stream()
        try:
            deliveries = await _drain(stream, 3)
        finally:
            await stream.aclose()
            await producer.aclose()
        return deliveries

    deliveries = asyncio.run(scenario())
    assert [(d.row_id, d.redelivery) for d in deliveries] == [(second, True), (first, False), (third, False)]
    assert deliveries[1].payload == {"day": "2026-11-28", "part": 0, "payload": {"part": 0}}
    assert set(legacy.statuses().values()) == {"claimed"}


def test_the_producer_keeps_at_most_batch_size_rows_in_flight_until_airflow_confirms_them(legacy):
    legacy.add(5)

    async def scenario():
        producer = QueueTableProducer(table(batch_size=2))
        stream = producer.open_stream()
        try:
            first = await _drain(stream, 2)
            blocked = asyncio.ensure_future(anext(stream))
            await asyncio.wait({blocked}, timeout=1.0)  # several poll intervals: it must still be waiting
            waited = not blocked.done()
            in_db = dict(legacy.statuses())
            await producer.advance([AdvanceItem(first[0], CLEAN)])
            third = (await asyncio.wait_for(blocked, 10))[0]
        finally:
            await stream.aclose()
            await producer.aclose()
        return first, waited, in_db, third

    first, waited, in_db, third = asyncio.run(scenario())
    assert waited
    assert sorted(in_db.values()) == ["claimed", "claimed", "ready", "ready", "ready"]
    assert third.row_id == first[1].row_id + 1


def test_two_thousand_claimed_rows_are_recovered_a_page_at_a_time_without_overflowing_airflows_queue(legacy):
    legacy.sql(
        "INSERT INTO etl_queue (status, day, part, payload) "
        "SELECT 'claimed', '2026-11-28', n, '{}' FROM generate_series(1, 2000) AS n"
    )
    queue = table(batch_size=500)

    async def scenario():
        manager = SharedStreamManager()  # Airflow's, with its default subscriber queue (1024 events)
        trigger = QueueTableTrigger(**queue.as_kwargs())
        key = trigger.shared_stream_key()
        events = []

        async def consume():
            async for event in trigger.filter_shared_stream(manager.subscribe(trigger_id=1, trigger=trigger, key=key)):
                events.append(event.payload)
                manager.confirm_persisted([manager.bind_pending_event(trigger_id=1, key=key)])
                if len(events) == 2000:
                    return

        try:
            await asyncio.wait_for(consume(), 120)
        finally:
            await manager.unsubscribe(1, key)
        return events

    events = asyncio.run(scenario())
    assert len({event["row_id"] for event in events}) == 2000
    assert all(event["redelivery"] for event in events)


def test_advance_marks_confirmed_rows_emitted_rejected_ones_failed_and_leaves_unconfirmed_ones_claimed(legacy, caplog):
    good, bad, slow, consumed = legacy.add(4)
    legacy.sql("UPDATE etl_queue SET payload = 'not json' WHERE id = %s", (bad,))

    async def scenario():
        producer = QueueTableProducer(table())
        stream = producer.open_stream()
        try:
            deliveries = {d.row_id: d for d in await _drain(stream, 4)}
            legacy.sql("UPDATE etl_queue SET status = 'consumed' WHERE id = %s", (consumed,))  # a run took it
            items = [
                AdvanceItem(deliveries[good], CLEAN),
                AdvanceItem(deliveries[bad], REJECTED),
                AdvanceItem(deliveries[slow], TIMED_OUT),
                AdvanceItem(deliveries[consumed], CLEAN),
            ]
            with caplog.at_level(logging.INFO, logger="eksflow.events.queue_table_trigger"):
                await producer.advance(items)
        finally:
            await stream.aclose()
            await producer.aclose()
        return deliveries

    deliveries = asyncio.run(scenario())
    assert deliveries[bad].problem.column == "payload"
    assert legacy.statuses() == {good: "emitted", bad: "failed", slow: "claimed", consumed: "consumed"}
    set_aside = [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()]
    assert set_aside == [
        f"Queue table etl_queue row {bad} set aside (status 'failed'): column 'payload' is not valid JSON "
        "(Expecting value: line 1 column 1 (char 0))"
    ]


NESTED = "[" * 5000 + "]" * 5000  # json.loads raises RecursionError on it


@pytest.mark.parametrize("column_type", ["text", "jsonb"])
def test_a_row_nested_too_deeply_to_decode_is_set_aside_and_the_producer_goes_on(legacy, column_type):
    legacy.sql(f"ALTER TABLE etl_queue ALTER COLUMN payload TYPE {column_type} USING payload::{column_type}")
    good, nested, after = legacy.add(3)
    legacy.sql("UPDATE etl_queue SET payload = %s WHERE id = %s", (NESTED, nested))

    async def scenario():
        producer = QueueTableProducer(table())
        stream = producer.open_stream()
        try:
            deliveries = {d.row_id: d for d in await _drain(stream, 3)}
            await producer.advance([AdvanceItem(deliveries[nested], REJECTED)])
        finally:
            await stream.aclose()
            await producer.aclose()
        return deliveries

    deliveries = asyncio.run(scenario())
    assert str(deliveries[nested].problem) == "column 'payload' is JSON nested too deeply to decode"
    assert deliveries[after].payload == {"day": "2026-11-28", "part": 2, "payload": {"part": 2}}
    assert legacy.statuses() == {good: "claimed", nested: "failed", after: "claimed"}


@pytest.mark.parametrize("column_type", ["text", "jsonb"])
def test_the_sweep_sets_aside_a_row_nested_too_deeply_and_takes_the_good_ones(legacy, column_type):
    legacy.sql(f"ALTER TABLE etl_queue ALTER COLUMN payload TYPE {column_type} USING payload::{column_type}")
    good, nested, after = legacy.add(3)
    legacy.sql("UPDATE etl_queue SET status = 'emitted'")
    legacy.sql("UPDATE etl_queue SET payload = %s WHERE id = %s", (NESTED, nested))
    rows = claim_rows(table(), [], "dag/run-1")
    assert [row["row_id"] for row in rows] == [good, after]
    assert legacy.statuses() == {good: "consumed", nested: "failed", after: "consumed"}


def test_the_trigger_verifies_the_server_against_the_connections_sslrootcert(legacy, monkeypatch, tmp_path):
    # No TLS server here: the CA file named in the connection's extra must be the one asyncpg loads (verify-full).
    ca = tmp_path / "rds-global-bundle.pem"
    ca.write_text("not a certificate\n")  # loading it fails: proof it is the file asyncpg reads, not ~/.postgresql
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_DB", f"{legacy.dsn}?sslmode=verify-full&sslrootcert={ca}")
    with pytest.raises(ssl.SSLError, match="NO_CERTIFICATE_OR_CRL_FOUND"):
        asyncio.run(QueueTableProducer(table())._connect())


def test_the_claim_task_passes_the_connections_certificate_settings_to_libpq(legacy, monkeypatch):
    # A mock, unlike the trigger's test: libpq reads sslrootcert only after a TLS server accepted SSL (none here).
    import psycopg2

    from eksflow.events import queue_table_tasks

    seen = {}

    def connect(**kwargs):
        seen.update(kwargs)
        raise LookupError("captured")

    monkeypatch.setattr(psycopg2, "connect", connect)
    monkeypatch.setenv(
        "AIRFLOW_CONN_LEGACY_DB", f"{legacy.dsn}?sslmode=verify-full&sslrootcert=/ca.pem&sslcert=/c.pem&sslkey=/k.pem"
    )
    with pytest.raises(LookupError):
        queue_table_tasks._connect("legacy_db")
    assert {name: seen.get(name) for name in ("sslmode", "sslrootcert", "sslcert", "sslkey")} == {
        "sslmode": "verify-full",
        "sslrootcert": "/ca.pem",
        "sslcert": "/c.pem",
        "sslkey": "/k.pem",
    }


# ---- the DAG's tasks --------------------------------------------------------------------------------------------


def test_a_row_named_by_two_runs_events_is_taken_by_one_and_a_retry_gets_its_runs_rows_again(legacy, caplog):
    one, two, three = legacy.add(3)
    legacy.sql("UPDATE etl_queue SET status = 'emitted'")
    queue = table()
    with caplog.at_level(logging.INFO, logger="eksflow.events.queue_table_tasks"):
        first = claim_rows(queue, [one, two], "dag/run-1", sweep=False)
        duplicate = claim_rows(queue, [two, three], "dag/run-2", sweep=False)  # `two` again: a redelivered event
        retried = claim_rows(queue, [one, two], "dag/run-1", sweep=False)
    assert [row["row_id"] for row in first] == [one, two]
    assert [row["row_id"] for row in duplicate] == [three]
    assert retried == first
    assert first[0]["row"] == {"day": "2026-11-28", "part": 0, "payload": {"part": 0}}
    assert f"Row {two} of etl_queue skipped: consumed by dag/run-1 (taken by another run)" in caplog.text
    assert legacy.sql("SELECT id, consumed_by FROM etl_queue ORDER BY id") == [
        (one, "dag/run-1"),
        (two, "dag/run-1"),
        (three, "dag/run-2"),
    ]


def test_sweeping_takes_every_claimed_or_emitted_row_and_sets_aside_a_malformed_one(legacy):
    emitted, claimed, ready, malformed = legacy.add(4)
    legacy.sql("UPDATE etl_queue SET status = 'emitted' WHERE id = %s", (emitted,))
    legacy.sql("UPDATE etl_queue SET status = 'claimed', payload = '{' WHERE id = %s", (malformed,))
    legacy.sql("UPDATE etl_queue SET status = 'claimed' WHERE id = %s", (claimed,))
    rows = claim_rows(table(), [], "dag/run-1")
    assert [row["row_id"] for row in rows] == [emitted, claimed]
    assert legacy.statuses() == {emitted: "consumed", claimed: "consumed", ready: "ready", malformed: "failed"}


def test_the_sweep_takes_at_most_limit_rows_in_id_order_and_a_retry_stays_within_it(legacy):
    rows = legacy.add(5)
    legacy.sql("UPDATE etl_queue SET status = 'emitted'")
    first = claim_rows(table(), [rows[4]], "dag/run-1", limit=3)  # its own event's row counts towards the limit
    retried = claim_rows(table(), [rows[4]], "dag/run-1", limit=3)
    second = claim_rows(table(), [], "dag/run-2", limit=3)
    assert [row["row_id"] for row in first] == [rows[0], rows[1], rows[4]]
    assert retried == first
    assert [row["row_id"] for row in second] == [rows[2], rows[3]]


def test_a_backlog_of_emitted_rows_is_swept_at_most_500_rows_a_run(legacy):
    legacy.sql(
        "INSERT INTO etl_queue (status, day, part, payload) "
        "SELECT 'emitted', '2026-11-28', n, '{}' FROM generate_series(1, 1200) AS n"
    )
    assert len(claim_rows(table(), [], "dag/run-1")) == 500
    assert sorted(legacy.statuses().values()).count("consumed") == 500


def test_writing_back_twice_writes_each_row_once(legacy):
    curated = LegacyTable(conn_id="legacy_db", table="curated_queue", columns=("day", "part"))
    rows = [
        {"row_id": 41, "row": {"day": "2026-11-28", "part": 1}},
        {"row_id": 42, "row": {"day": "2026-11-28", "part": 2}},
    ]
    assert write_back(curated, rows) == 2
    assert write_back(curated, rows) == 0  # a retry
    assert legacy.sql("SELECT source_id, part, status FROM curated_queue ORDER BY source_id") == [
        (41, 1, "ready"),
        (42, 2, "ready"),
    ]


def test_writing_back_to_a_table_without_a_unique_key_is_refused_saying_how_to_fix_it(legacy):
    legacy.sql("CREATE TABLE loose_queue (source_id bigint, day date, status text)")
    loose = LegacyTable(conn_id="legacy_db", table="loose_queue", columns=("day",))
    with pytest.raises(RuntimeError, match=r"loose_queue.source_id has no unique constraint.*CREATE UNIQUE INDEX"):
        write_back(loose, [{"row_id": 1, "row": {"day": "2026-11-28"}}])
    assert legacy.sql("SELECT count(*) FROM loose_queue") == [(0,)]

"""The queue-table trigger: one Asset event per row an old producer marks ``ready`` (eksflow.events.queue_table).

It runs on a shared stream of its own in ack mode (Airflow 3.3, airflow/triggers/shared_stream.py), which is what
gives it a safe moment to write back to the source: the producer claims rows (``ready`` → ``claimed``, one
statement, exactly once), every claimed row becomes one event, and only in ``advance`` — after Airflow confirmed
the event persisted in its metadata DB — is the row marked ``emitted``. Two databases, no shared transaction, so:

- a claimed row whose event was never confirmed stays ``claimed``; when the trigger starts (after a triggerer
  restart, a crash, or its own failure) it emits every ``claimed`` row again, flagged ``redelivery: true``. No row is
  lost, whatever kills the triggerer.
- Airflow 3.3.2 does not flush persistence confirmations on shutdown: a SIGTERMed triggerer stops its runner loop
  without a last state sync (TriggerRunner.arun), so events persisted in its last sync round (about a second) are
  never confirmed to the producer and their rows are emitted again by the next triggerer — a graceful restart can
  duplicate those few events, flagged ``redelivery``; confirmed ones are advanced before it exits (the stream's
  final drain). A SIGKILL can duplicate every row in flight, at most ``batch_size``, also flagged. The claim task
  (eksflow.events.queue_table_tasks) processes each row once however many events name it.
- a row whose payload no event can carry is rejected by the trigger and marked ``failed`` (one log line naming the
  column); the trigger keeps going.

At most ``batch_size`` rows are in flight: the next claim waits until Airflow confirmed enough of them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections.abc import AsyncIterator, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent
from airflow.triggers.shared_stream import AdvanceItem, SharedStreamProducer, reject_shared_stream_event

from eksflow.events.queue_table import MalformedRow, QueueTable, decode_json, row_event_payload, row_payload

log = logging.getLogger(__name__)

_CONNECT_BACKOFF_MAX = 60.0


@dataclass(eq=False)
class RowDelivery:
    row_id: Any
    payload: dict[str, Any] | None
    problem: MalformedRow | None
    redelivery: bool


class QueueTableTrigger(BaseEventTrigger):
    """Asset events for the rows of a queue table (module docstring); keyword arguments are ``QueueTable``'s,
    validated when the DAG file is parsed."""

    def __init__(self, **kwargs: Any):
        super().__init__()
        self.table = QueueTable(**kwargs)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", self.table.as_kwargs()

    def shared_stream_key(self) -> Hashable:
        # The whole configuration: a trigger with these kwargs is one trigger row however many Assets watch it.
        return ("eksflow-queue-table", json.dumps(self.table.as_kwargs(), sort_keys=True))

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> SharedStreamProducer:
        return QueueTableProducer(QueueTable(**kwargs))

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        async for delivery in shared_stream:
            if delivery.problem is not None:
                reject_shared_stream_event()  # the producer marks it failed and logs why
                continue
            yield TriggerEvent(
                row_event_payload(self.table, delivery.row_id, delivery.payload, redelivery=delivery.redelivery)
            )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        raise RuntimeError("QueueTableTrigger runs only on a shared stream (Airflow >= 3.3's triggerer)")
        yield  # an async generator, as Airflow expects


class QueueTableProducer(SharedStreamProducer):
    def __init__(self, table: QueueTable):
        self.table = table
        self.name = table.table
        self._connection: Any = None
        self._db = asyncio.Lock()  # one connection: the claim loop and the advance pump take turns
        self._in_flight = 0
        self._room = asyncio.Event()

    async def _connect(self) -> Any:
        import asyncpg
        from airflow.sdk.bases.hook import BaseHook

        conn = await BaseHook.aget_connection(self.table.conn_id)
        extra = conn.extra_dejson
        # libpq's certificate settings (verify-full against RDS needs its CA bundle): asyncpg reads them from a DSN.
        certificates = {name: extra[name] for name in ("sslrootcert", "sslcert", "sslkey") if extra.get(name)}
        connection = await asyncpg.connect(
            dsn=f"postgresql://?{urllib.parse.urlencode(certificates)}" if certificates else None,
            host=conn.host or "localhost",
            port=conn.port or 5432,
            user=conn.login or None,
            password=conn.password or None,
            database=conn.schema or None,
            ssl=extra.get("sslmode"),
            server_settings={"application_name": "eksflow-queue-table-trigger"},
        )
        for type_name in ("json", "jsonb"):
            await connection.set_type_codec(type_name, encoder=json.dumps, decoder=decode_json, schema="pg_catalog")
        return connection

    async def _connected(self) -> Any:
        """A connection, retried with backoff while the database is unreachable (the trigger keeps waiting)."""
        delay = 1.0
        while True:
            try:
                return await self._connect()
            except (TimeoutError, OSError) as error:
                log.warning(
                    "Queue table %s: cannot reach its database (%s); retrying in %.0f s", self.name, error, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _CONNECT_BACKOFF_MAX)

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self._db:
            return await self._connection.fetch(sql, *args)

    def _delivery(self, record: Any, *, redelivery: bool) -> RowDelivery:
        values = dict(record.items())
        try:
            return RowDelivery(values[self.table.id_column], row_payload(self.table, values), None, redelivery)
        except MalformedRow as problem:
            return RowDelivery(values[self.table.id_column], None, problem, redelivery)

    async def open_stream(self) -> AsyncIterator[tuple[RowDelivery, RowDelivery]]:
        table = self.table
        self._connection = await self._connected()
        log.info("Watching queue table %s (%s)", self.name, table.conn_id)
        recovered, last_id = 0, None
        while True:  # rows claimed before and never confirmed: a page at a time, never more than batch_size in flight
            self._room.clear()
            room = table.batch_size - self._in_flight
            if room <= 0:
                await self._room.wait()
                continue
            if last_id is None:
                records = await self._fetch(table.claimed_rows_sql(), table.claimed, room)
            else:
                records = await self._fetch(table.claimed_rows_sql(after=True), table.claimed, room, last_id)
            if not records:
                break
            for record in records:
                last_id = record[table.id_column]
                recovered += 1
                self._in_flight += 1
                delivery = self._delivery(record, redelivery=True)
                yield delivery, delivery
        if recovered:
            log.info("Queue table %s: %d row(s) claimed before and never confirmed, re-emitted", self.name, recovered)
        while True:
            self._room.clear()
            room = table.batch_size - self._in_flight
            if room <= 0:
                await self._room.wait()  # advance() makes room
                continue
            records = await self._fetch(table.claim_sql(), table.ready, room, table.claimed)
            if not records:
                await asyncio.sleep(table.poll_interval)
                continue
            for record in sorted(records, key=lambda r: r[table.id_column]):
                self._in_flight += 1
                delivery = self._delivery(record, redelivery=False)
                yield delivery, delivery

    async def advance(self, batch: Sequence[AdvanceItem]) -> None:
        table = self.table
        emitted = [item.broker_payload.row_id for item in batch if item.outcome.is_clean]
        rejected = [item.broker_payload for item in batch if item.outcome.rejected]
        unconfirmed = [
            item.broker_payload.row_id for item in batch if not item.outcome.is_clean and not item.outcome.rejected
        ]
        async with self._db, self._connection.transaction():
            if emitted:
                await self._connection.execute(table.mark_sql(), table.emitted, emitted, table.claimed)
            if rejected:
                failed = [delivery.row_id for delivery in rejected]
                await self._connection.execute(table.mark_sql(), table.failed, failed, table.claimed)
        for delivery in rejected:
            log.error(
                "Queue table %s row %s set aside (status %r): %s",
                self.name,
                delivery.row_id,
                table.failed,
                delivery.problem,
            )
        if unconfirmed:
            log.warning(
                "Queue table %s rows %s: Airflow did not confirm their events; they stay %r and are emitted again "
                "when the trigger starts",
                self.name,
                unconfirmed,
                table.claimed,
            )
        self._in_flight -= len(batch)
        self._room.set()

    async def aclose(self) -> None:
        if self._connection is not None:
            await self._connection.close()


def queue_table_asset(table: QueueTable, name: str):
    """The Asset a queue table's rows update: ``x-eksflow-queue-table://<conn_id>/<table>``, watched by a
    QueueTableTrigger in the triggerer; a DAG scheduled on it runs for its rows (claim them with ``claim_rows_task``).
    The triggerer reaches the database only where the chart's ``networkPolicy.legacyDatabases`` lets it."""
    from airflow.sdk import Asset, AssetWatcher

    return Asset(
        uri=f"x-eksflow-queue-table://{table.conn_id}/{table.table}",
        name=name,
        group="eksflow-queue-tables",
        watchers=[AssetWatcher(name=f"{name}__rows", trigger=QueueTableTrigger(**table.as_kwargs()))],
    )

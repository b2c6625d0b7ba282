"""The DAG side of a bridged queue table: take the rows a run's Asset events name, and write rows back to a legacy
table for the consumers that have not moved yet (docs/migrating-queue-tables.md).

- ``claim_rows``: the rows this run's events name — and, sweeping, every other row the trigger claimed or emitted —
  that no run took before, each taken once (``claimed``/``emitted`` → ``consumed``, the run recorded in
  ``consumed_by_column``, one statement): a duplicate event (a ``redelivery`` after a triggerer restart) finds its
  row taken and its run skips it; a retried claim task gets back exactly the rows its run took.
- ``write_back``: INSERT … ON CONFLICT (key) DO NOTHING on the legacy table, keyed by the source row's id (a unique
  constraint the table must have): a retry, or a second run with the same row, writes nothing twice.

Both run in a task (psycopg2, the worker's Airflow connection), in the platform's default role (``ROLE``): no AWS
access, and the one role whose task pods the chart lets reach the legacy databases (``networkPolicy.legacyDatabases``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eksflow.events.queue_table import (
    EVENT_KIND,
    MalformedRow,
    QueueTable,
    QueueTableError,
    _check_conn_id,
    _check_value,
    _columns,
    decode_json,
    quote_identifier,
    quote_table,
    row_payload,
)
from eksflow.roles import DEFAULT_ROLE

log = logging.getLogger(__name__)
# The chart's NetworkPolicy for networkPolicy.legacyDatabases selects this role's task pods (tested).
ROLE = DEFAULT_ROLE


@dataclass(frozen=True)
class LegacyTable:
    """A table the old consumers still read, written from the new DAG.

    :param conn_id: Airflow connection of its database (``postgres``)
    :param table: ``table`` or ``schema.table``
    :param columns: columns written, each from the row's value of the same name
    :param key_column: holds the source row's id; must have a unique constraint (what makes the write idempotent)
    :param status_column: set to ``ready`` on every row written, as the old producer did ("" = none)
    """

    conn_id: str
    table: str
    columns: tuple[str, ...]
    key_column: str = "source_id"
    status_column: str = "status"
    ready: str = "ready"

    def __post_init__(self) -> None:
        helper = "LegacyTable"
        _check_conn_id(helper, self.conn_id)
        quote_table(helper, "table", self.table)
        quote_identifier(helper, "key_column", self.key_column)
        object.__setattr__(self, "columns", _columns(helper, "columns", self.columns))
        if not self.columns:
            raise QueueTableError(helper, "columns", "is empty", "name the columns the old consumers read")
        if self.status_column:
            quote_identifier(helper, "status_column", self.status_column)
            _check_value(helper, "ready", self.ready)
        bookkeeping = {self.key_column, self.status_column} - {""}
        if clash := sorted(bookkeeping & set(self.columns)):
            raise QueueTableError(helper, "columns", f"includes {clash[0]!r}", "the bridge sets it; leave it out")


def _connect(conn_id: str):
    import psycopg2
    import psycopg2.extras
    from airflow.sdk.bases.hook import BaseHook

    conn = BaseHook.get_connection(conn_id)
    extra = conn.extra_dejson
    connection = psycopg2.connect(
        host=conn.host or "localhost",
        port=conn.port or 5432,
        user=conn.login or None,
        password=conn.password or None,
        dbname=conn.schema or None,
        sslmode=extra.get("sslmode", "prefer"),
        **{name: extra[name] for name in ("sslrootcert", "sslcert", "sslkey") if extra.get(name)},
        application_name="eksflow-queue-table-task",
    )
    # One undecodable json/jsonb value must not fail the fetch of the other rows: row_payload sets it aside.
    psycopg2.extras.register_default_json(connection, loads=decode_json)
    psycopg2.extras.register_default_jsonb(connection, loads=decode_json)
    return connection


def row_ids_from_events(table: QueueTable, triggering_asset_events: Mapping | None) -> list[Any]:
    """The row ids of ``table`` that a run's triggering Asset events name (in order, each once)."""
    ids: dict[Any, None] = {}
    for events in (triggering_asset_events or {}).values():
        for event in events:
            payload = (getattr(event, "extra", None) or {}).get("payload") or {}
            if payload.get("kind") == EVENT_KIND and payload.get("source") == table.source:
                ids.setdefault(payload["row_id"], None)
    return list(ids)


# Airflow maps at most [core] max_map_length (1024) task instances over a list: a run's rows stay well under it.
SWEEP_LIMIT = 500


def _check_limit(limit: Any) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise QueueTableError(
            "claim_rows", "limit", f"must be an integer 1-1000, got {limit!r}", "stay under max_map_length (1024)"
        )


def claim_rows(
    table: QueueTable, row_ids: Iterable[Any], consumer: str, *, sweep: bool = True, limit: int = SWEEP_LIMIT
) -> list[dict[str, Any]]:
    """The rows ``consumer`` (``<dag_id>/<run_id>``) takes, sorted by id, each as ``{"row_id": …, "row": {payload
    columns}}``: those of ``row_ids`` (its triggering events) no run took before — and with ``sweep`` every other row
    the trigger has claimed or emitted too. Airflow 3.3.2 gives a run only the events up to the one that queued it
    (apache/airflow#56050): events that arrive while a run is queued wait for the next event's run, and the last
    ones of a burst would wait for the next row. Sweeping, the first run after a row's claim takes it; its own event's
    run finds it taken. Rows another run took are skipped (logged); a retried claim returns what its run took, and
    may sweep rows claimed since. ``limit``: the sweep stops at this many rows in all (the run's own and those a
    retry took before count; the rest wait for the next run), so a task mapped over them stays under Airflow's
    max_map_length (1024)."""
    _check_limit(limit)
    ids = list(row_ids)
    if not ids and not sweep:
        return []
    quoted_table, ident, status, selected = table.quoted_names()
    taken_by = quote_identifier("QueueTable", "consumed_by_column", table.consumed_by_column)
    which = (
        f" AND ({ident} = ANY(%(ids)s) OR {ident} IN (SELECT {ident} FROM {quoted_table} "  # noqa: S608
        f"WHERE {status} IN (%(claimed)s, %(emitted)s) ORDER BY {ident} LIMIT %(room)s))"
        if sweep
        else f" AND {ident} = ANY(%(ids)s)"
    )
    parameters = {
        "ids": ids,
        "consumer": consumer,
        "consumed": table.consumed,
        "claimed": table.claimed,
        "emitted": table.emitted,
    }
    with contextlib.closing(_connect(table.conn_id)) as connection, connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT {selected} FROM {quoted_table} WHERE {taken_by} = %(consumer)s", parameters)  # noqa: S608
        rows = cursor.fetchall()  # a retry of this run's claim: what it took before
        taken_before = {row[0] for row in rows}
        parameters["room"] = max(0, limit - len(rows) - len([i for i in ids if i not in taken_before]))
        cursor.execute(
            f"UPDATE {quoted_table} SET {status} = %(consumed)s, {taken_by} = %(consumer)s "  # noqa: S608
            f"WHERE {status} IN (%(claimed)s, %(emitted)s){which} RETURNING {selected}",
            parameters,
        )
        rows += cursor.fetchall()
        columns = [table.id_column, *table.payload_columns]
        claimed, malformed = [], []
        for values in (dict(zip(columns, row, strict=True)) for row in rows):
            try:
                claimed.append({"row_id": values[table.id_column], "row": row_payload(table, values)})
            except MalformedRow as problem:  # swept before the trigger set it aside
                log.error(
                    "Row %s of %s set aside (status %r): %s",
                    values[table.id_column],
                    table.table,
                    table.failed,
                    problem,
                )
                malformed.append(values[table.id_column])
        if malformed:
            cursor.execute(
                f"UPDATE {quoted_table} SET {status} = %s, {taken_by} = NULL WHERE {ident} = ANY(%s)",  # noqa: S608
                (table.failed, malformed),
            )
        taken = {row["row_id"] for row in claimed}
        skipped = [row_id for row_id in ids if row_id not in taken]
        if skipped:
            cursor.execute(
                f"SELECT {ident}, {status}, {taken_by} FROM {quoted_table} WHERE {ident} = ANY(%s)",  # noqa: S608
                (skipped,),
            )
            for row_id, row_status, by in cursor.fetchall():
                log.info("Row %s of %s skipped: %s by %s (taken by another run)", row_id, table.table, row_status, by)
    claimed.sort(key=lambda row: row["row_id"])
    log.info("Claimed %d row(s) of %s for %s: %s", len(claimed), table.table, consumer, sorted(taken))
    return claimed


def write_back(legacy: LegacyTable, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write ``rows`` (``{"row_id": …, "row": {…}}``) to the legacy table; returns how many were new."""
    import psycopg2
    from psycopg2.extras import Json, execute_values

    rows = list(rows)
    if not rows:
        return 0
    quoted_table = quote_table("LegacyTable", "table", legacy.table)
    key = quote_identifier("LegacyTable", "key_column", legacy.key_column)
    columns = [key, *(f'"{column}"' for column in legacy.columns)]
    values = []
    for row in rows:
        data = row["row"]
        missing = [column for column in legacy.columns if column not in data]
        if missing:
            raise ValueError(
                f"write_back: row {row['row_id']} has no value for column {missing[0]!r} of {legacy.table}"
            )
        cells = [row["row_id"], *(data[column] for column in legacy.columns)]
        if legacy.status_column:
            cells.append(legacy.ready)
        values.append(tuple(Json(cell) if isinstance(cell, (dict, list)) else cell for cell in cells))
    if legacy.status_column:
        columns.append(quote_identifier("LegacyTable", "status_column", legacy.status_column))
    sql = f"INSERT INTO {quoted_table} ({', '.join(columns)}) VALUES %s ON CONFLICT ({key}) DO NOTHING RETURNING {key}"  # noqa: S608
    try:
        with contextlib.closing(_connect(legacy.conn_id)) as connection, connection, connection.cursor() as cursor:
            written = execute_values(cursor, sql, values, fetch=True)
    except psycopg2.errors.InvalidColumnReference as error:
        raise RuntimeError(
            f"write_back: {legacy.table}.{legacy.key_column} has no unique constraint, so a retry could write a row "
            f"twice; add one: CREATE UNIQUE INDEX ON {legacy.table} ({legacy.key_column}) ({error.pgerror.strip()})"
        ) from None
    log.info("Wrote %d new row(s) to %s (%d already there)", len(written), legacy.table, len(rows) - len(written))
    return len(written)


def _role_task(helper: str, task_id: str, task_kwargs: dict[str, Any]):
    from eksflow.kit.defaults import role_task

    if "role" in task_kwargs:
        raise QueueTableError(
            helper,
            "role",
            f"cannot be set (got {task_kwargs['role']!r})",
            f"leave it out: the task runs in role {ROLE!r}, whose task pods networkPolicy.legacyDatabases lets "
            "reach the legacy database",
        )
    return role_task(ROLE, task_id=task_id, **task_kwargs)


def claim_rows_task(table: QueueTable, *, task_id: str = "claim_rows", limit: int = SWEEP_LIMIT, **task_kwargs: Any):
    """A task (default role) returning the rows this run's events name and no other run took (``claim_rows``), at
    most ``limit`` swept rows in all (default 500; at most 1000, under Airflow's max_map_length).
    Its pod reaches the database where the chart's ``networkPolicy.legacyDatabases`` lets the default role's pods;
    ``role`` cannot be given."""

    @_role_task("claim_rows_task", task_id, task_kwargs)
    def claim(triggering_asset_events=None, dag_run=None) -> list[dict[str, Any]]:
        ids = row_ids_from_events(table, triggering_asset_events)
        return claim_rows(table, ids, f"{dag_run.dag_id}/{dag_run.run_id}", limit=limit)

    _check_limit(limit)
    return claim()


def write_back_task(legacy: LegacyTable, rows: Any, *, task_id: str = "write_back", **task_kwargs: Any):
    """A task (default role) writing ``rows`` (an XComArg of ``claim_rows``-shaped rows) to the legacy table.
    Its pod reaches the database where the chart's ``networkPolicy.legacyDatabases`` lets the default role's pods;
    ``role`` cannot be given."""

    @_role_task("write_back_task", task_id, task_kwargs)
    def write(rows: list[dict[str, Any]]) -> int:
        return write_back(legacy, rows)

    return write(rows)

"""A legacy queue table as the bridge sees it: where its rows are, how a row moves, and the SQL that moves it.

A row's status goes ``ready`` (the old producer's) → ``claimed`` (the trigger took it; exactly once) → ``emitted``
(Airflow confirmed its Asset event persisted) → ``consumed`` (the DAG run that processes it took it), or → ``failed``
(its payload cannot travel in an event: set aside). Every name given here is validated when the DAG file is parsed
(``QueueTableError`` names the argument) and always double-quoted in SQL; status values and limits are bind
parameters. No configuration reaches SQL as text it was not checked to be. PostgreSQL only (asyncpg in the
triggerer, psycopg2 in tasks — the image has both); MySQL has no driver in the image.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from eksflow.kit.errors import KitArgumentError

EVENT_KIND = "eksflow.queue-table-row"
CLAIM_MODES = ("skip_locked", "for_update")
# PostgreSQL's identifiers as the catalog stores them (unquoted DDL folds to lowercase): letters, digits, _ and $,
# not starting with a digit, at most 63 bytes.
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
# Rows in flight become events queued for each subscriber; Airflow's queue holds 1024
# ([triggerer] shared_stream_subscriber_queue_size) and fails the trigger when it overflows.
MAX_BATCH_SIZE = 500
_CONN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")


class QueueTableError(KitArgumentError):
    """A queue-table setting that cannot work, raised while the DAG file is parsed."""


def quote_identifier(helper: str, argument: str, name: Any) -> str:
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise QueueTableError(
            helper,
            argument,
            f"is not a plain SQL identifier: {name!r}",
            "use the name as the catalog stores it: letters, digits, _ or $, not starting with a digit, at most 63 "
            "characters (e.g. 'status')",
        )
    return f'"{name}"'


def quote_table(helper: str, argument: str, name: Any) -> str:
    """``"schema"."table"`` from ``schema.table`` or ``table``."""
    parts = name.split(".") if isinstance(name, str) else [name]
    if len(parts) > 2:
        raise QueueTableError(helper, argument, f"has more than two parts: {name!r}", "use 'table' or 'schema.table'")
    return ".".join(quote_identifier(helper, argument, part) for part in parts)


def _check_conn_id(helper: str, conn_id: Any) -> None:
    if not isinstance(conn_id, str) or not _CONN_ID.fullmatch(conn_id):
        raise QueueTableError(
            helper, "conn_id", f"is not an Airflow connection id: {conn_id!r}", "e.g. 'legacy_queue_db'"
        )


def _check_value(helper: str, argument: str, value: Any) -> None:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise QueueTableError(
            helper, argument, f"must be a status value of 1-64 characters, got {value!r}", "e.g. 'ready'"
        )


def _columns(helper: str, argument: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise QueueTableError(helper, argument, f"must be a list of column names, got {value!r}", "e.g. ['day']")
    for name in value:
        quote_identifier(helper, argument, name)
    if len(set(value)) != len(value):
        raise QueueTableError(helper, argument, f"names a column twice: {list(value)}", "name each column once")
    return tuple(value)


@dataclass(frozen=True)
class QueueTable:
    """A queue table the bridge reads (and the DAG's claim task consumes from).

    :param conn_id: Airflow connection of the database (a ``postgres`` connection)
    :param table: ``table`` or ``schema.table``
    :param id_column: the rows' unique, ordered id (integer or text)
    :param status_column: the column the old producer sets to ``ready``
    :param ready/claimed/emitted/failed/consumed: status values (module docstring)
    :param payload_columns: the columns an event carries (by name)
    :param json_columns: of those, text columns holding JSON: parsed into the event; a row whose JSON does not parse
        is set aside as ``failed``
    :param consumed_by_column: a text column the claim task records the consuming run in (``<dag_id>/<run_id>``):
        what makes a retried claim take the same rows again, and a duplicate event's run take none
    :param batch_size: rows claimed at a time; also the most rows in flight (claimed, not yet confirmed); at most
        500, so they fit Airflow's shared-stream subscriber queue (1024 events)
    :param poll_interval: seconds between looks at an empty table
    :param claim: ``skip_locked`` (``FOR UPDATE SKIP LOCKED``: concurrent claimers pass each other's rows) or
        ``for_update`` (plain ``FOR UPDATE``, where SKIP LOCKED is not available: a concurrent claimer waits for the
        rows, in id order, and then skips those no longer ``ready``)
    """

    conn_id: str
    table: str
    payload_columns: tuple[str, ...] = ()
    id_column: str = "id"
    status_column: str = "status"
    ready: str = "ready"
    claimed: str = "claimed"
    emitted: str = "emitted"
    failed: str = "failed"
    consumed: str = "consumed"
    json_columns: tuple[str, ...] = ()
    consumed_by_column: str = "consumed_by"
    batch_size: int = 100
    poll_interval: float = 5.0
    claim: str = "skip_locked"

    def __post_init__(self) -> None:
        helper = "QueueTable"
        _check_conn_id(helper, self.conn_id)
        quote_table(helper, "table", self.table)
        for argument in ("id_column", "status_column", "consumed_by_column"):
            quote_identifier(helper, argument, getattr(self, argument))
        object.__setattr__(self, "payload_columns", _columns(helper, "payload_columns", self.payload_columns))
        object.__setattr__(self, "json_columns", _columns(helper, "json_columns", self.json_columns))
        bookkeeping = {self.id_column, self.status_column, self.consumed_by_column}
        if len(bookkeeping) != 3:
            raise QueueTableError(
                helper, "status_column", "must differ from id_column and consumed_by_column", "name three columns"
            )
        if clash := sorted(set(self.payload_columns) & {self.status_column, self.consumed_by_column}):
            raise QueueTableError(
                helper, "payload_columns", f"includes bookkeeping column {clash[0]!r}", "list only the data columns"
            )
        if stray := sorted(set(self.json_columns) - set(self.payload_columns)):
            raise QueueTableError(
                helper, "json_columns", f"names {stray[0]!r}, which is not in payload_columns", "add it there too"
            )
        statuses = ("ready", "claimed", "emitted", "failed", "consumed")
        for argument in statuses:
            _check_value(helper, argument, getattr(self, argument))
        if len({getattr(self, argument) for argument in statuses}) != len(statuses):
            raise QueueTableError(
                helper,
                "claimed",
                f"status values must all differ, got {[getattr(self, a) for a in statuses]}",
                "give each state its own value",
            )
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or not self.batch_size >= 1:
            raise QueueTableError(helper, "batch_size", f"must be an integer >= 1, got {self.batch_size!r}", "e.g. 100")
        if self.batch_size > MAX_BATCH_SIZE:
            raise QueueTableError(
                helper,
                "batch_size",
                f"is {self.batch_size}",
                f"use at most {MAX_BATCH_SIZE}: the rows in flight must fit Airflow's shared-stream subscriber queue "
                "([triggerer] shared_stream_subscriber_queue_size, 1024)",
            )
        poll = self.poll_interval
        if isinstance(poll, bool) or not isinstance(poll, (int, float)) or not 0 < poll <= 3600:
            raise QueueTableError(helper, "poll_interval", f"must be 0-3600 seconds, got {poll!r}", "e.g. 5.0")
        if self.claim not in CLAIM_MODES:
            raise QueueTableError(helper, "claim", f"is {self.claim!r}", f"use one of {', '.join(CLAIM_MODES)}")

    def as_kwargs(self) -> dict[str, Any]:
        """JSON-able keyword arguments (what a trigger serializes; ``QueueTable(**kwargs)`` rebuilds it)."""
        kwargs = asdict(self)
        kwargs["payload_columns"] = list(self.payload_columns)
        kwargs["json_columns"] = list(self.json_columns)
        return kwargs

    @property
    def source(self) -> dict[str, str]:
        """Where an event's row comes from (in every event's payload; the claim task matches on it)."""
        return {"conn_id": self.conn_id, "table": self.table}

    # ---- SQL (PostgreSQL, asyncpg's $n parameters) ----------------------------------------------------------------

    def quoted_names(self) -> tuple[str, str, str, str]:
        """Table, id column, status column, and the selected columns (id first), quoted."""
        table = quote_table("QueueTable", "table", self.table)
        ident = quote_identifier("QueueTable", "id_column", self.id_column)
        status = quote_identifier("QueueTable", "status_column", self.status_column)
        selected = ", ".join([ident, *(f'"{column}"' for column in self.payload_columns)])
        return table, ident, status, selected

    def claim_sql(self) -> str:
        """$1 ready, $2 batch size, $3 claimed → the claimed rows (id first, then the payload columns)."""
        table, ident, status, selected = self.quoted_names()
        locking = "FOR UPDATE SKIP LOCKED" if self.claim == "skip_locked" else "FOR UPDATE"
        return (
            f"UPDATE {table} SET {status} = $3 WHERE {ident} IN "  # noqa: S608 - names checked and quoted
            f"(SELECT {ident} FROM {table} WHERE {status} = $1 ORDER BY {ident} LIMIT $2 {locking}) AND {status} = $1 "
            f"RETURNING {selected}"
        )

    def claimed_rows_sql(self, *, after: bool = False) -> str:
        """$1 claimed, $2 limit (, $3 the last id of the page before, with ``after``) → a page of the rows claimed
        earlier and never confirmed (re-emitted when the trigger starts, a page at a time within the in-flight
        limit)."""
        table, ident, status, selected = self.quoted_names()
        keyset = f" AND {ident} > $3" if after else ""
        return f"SELECT {selected} FROM {table} WHERE {status} = $1{keyset} ORDER BY {ident} LIMIT $2"  # noqa: S608

    def mark_sql(self) -> str:
        """$1 new status, $2 ids, $3 claimed: moves only rows still claimed (a consumed row stays consumed)."""
        table, ident, status, _ = self.quoted_names()
        return f"UPDATE {table} SET {status} = $1 WHERE {ident} = ANY($2) AND {status} = $3"  # noqa: S608


class MalformedRow(ValueError):
    """A row whose payload an Asset event cannot carry; names the column."""

    def __init__(self, column: str, problem: str):
        self.column = column
        super().__init__(f"column {column!r} {problem}")


class UndecodableJson:
    """A json/jsonb value the driver could not decode; ``row_payload`` reports it as a MalformedRow."""

    def __init__(self, error: Exception):
        self.error = error


def decode_json(text: str | bytes) -> Any:
    """json.loads for the database drivers' json/jsonb codecs: a value it cannot decode (not JSON, or nested so
    deeply that json.loads raises RecursionError) becomes an UndecodableJson, so one row never fails a whole fetch."""
    try:
        return json.loads(text)
    except Exception as error:  # any decode failure is the row's problem, not the fetch's
        return UndecodableJson(error)


def _decode_problem(error: Exception) -> str:
    if isinstance(error, RecursionError):
        return "is JSON nested too deeply to decode"
    return f"is not valid JSON ({error})"


def row_payload(table: QueueTable, values: dict[str, Any]) -> dict[str, Any]:
    """The JSON-able payload of a row's payload columns (json_columns parsed), or MalformedRow naming the column."""
    payload = {}
    for column in table.payload_columns:
        value = values[column]
        if column in table.json_columns and isinstance(value, (str, bytes)):  # a json/jsonb column arrives parsed
            value = decode_json(value)
        if isinstance(value, UndecodableJson):
            raise MalformedRow(column, _decode_problem(value.error))
        try:
            payload[column] = _jsonable(column, value)
        except RecursionError:
            raise MalformedRow(column, "is nested too deeply for an Asset event") from None
    return payload


def _jsonable(column: str, value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise MalformedRow(column, f"holds {value!r}, which JSON cannot carry")
        return value
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise MalformedRow(column, f"holds {value!r}, which JSON cannot carry")
        return str(value)  # exact: a float would round it
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(column, item) for item in value]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise MalformedRow(column, "holds an object with non-text keys")
        return {key: _jsonable(column, item) for key, item in value.items()}
    raise MalformedRow(column, f"holds {type(value).__name__}, which an Asset event cannot carry")


def row_event_payload(table: QueueTable, row_id: Any, payload: dict[str, Any], *, redelivery: bool) -> dict[str, Any]:
    """An Asset event's payload for one claimed row. ``redelivery``: the row was claimed before a triggerer restart
    and Airflow had not confirmed its event — this may be its second event (the claim task takes it once)."""
    return {
        "kind": EVENT_KIND,
        "source": table.source,
        "row_id": _jsonable(table.id_column, row_id),
        "row": payload,
        "redelivery": redelivery,
    }

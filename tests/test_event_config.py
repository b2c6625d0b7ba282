"""The event triggers' configuration, refused or accepted where the DAG file is parsed: every bad queue-table or
legacy-table setting names its argument and the fix, no name reaches SQL unquoted or unchecked (status values are bind
parameters), row payloads an event cannot carry are named by column; the release watcher's Asset carries a watcher
of the environment's queue, derived from the settings, and the triggerer of the chart's image builds it from its
serialized form without the developer tooling. What the triggers do is executed in test_release_watcher.py,
test_queue_table_sql.py and test_queue_table_bridge.py."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import subprocess
import sys
from pathlib import Path

import pytest

from eksflow.assets import job_release
from eksflow.events import queue_table_tasks
from eksflow.events.queue_table import MalformedRow, QueueTable, QueueTableError, row_event_payload, row_payload
from eksflow.events.queue_table_tasks import LegacyTable
from eksflow.events.queue_table_trigger import QueueTableTrigger, queue_table_asset
from eksflow.events.release_watcher import ReleaseDelivery, ReleaseWatcher, release_event_payload
from eksflow.releases import Release
from eksflow.settings import load_settings
from tests.helm import pod_spec, render

REPO = Path(__file__).resolve().parents[1]
GOOD = {"conn_id": "legacy_db", "table": "public.etl_queue", "payload_columns": ["day", "payload"]}


@pytest.mark.parametrize(
    ("changes", "argument", "fix"),
    [
        ({"table": "etl_queue; DROP TABLE etl_queue"}, "table", "as the catalog stores it"),
        ({"table": 'etl"queue'}, "table", "as the catalog stores it"),
        ({"table": "a.b.c"}, "table", "'schema.table'"),
        ({"id_column": "id--"}, "id_column", "as the catalog stores it"),
        ({"status_column": "1status"}, "status_column", "as the catalog stores it"),
        ({"payload_columns": "day"}, "payload_columns", "e.g. ['day']"),
        ({"payload_columns": ["day", "day"]}, "payload_columns", "name each column once"),
        ({"payload_columns": ["day", "status"]}, "payload_columns", "list only the data columns"),
        ({"json_columns": ["other"]}, "json_columns", "add it there too"),
        ({"consumed_by_column": "status"}, "status_column", "name three columns"),
        ({"ready": ""}, "ready", "e.g. 'ready'"),
        ({"claimed": "ready"}, "claimed", "give each state its own value"),
        ({"batch_size": 0}, "batch_size", "e.g. 100"),
        ({"batch_size": True}, "batch_size", "e.g. 100"),
        ({"batch_size": 501}, "batch_size", "at most 500"),
        ({"poll_interval": 0}, "poll_interval", "e.g. 5.0"),
        ({"claim": "advisory_lock"}, "claim", "skip_locked, for_update"),
        ({"conn_id": "legacy db!"}, "conn_id", "e.g. 'legacy_queue_db'"),
    ],
)
def test_a_bad_queue_table_setting_is_refused_naming_the_argument_and_the_fix(changes, argument, fix):
    with pytest.raises(QueueTableError) as refused:
        QueueTable(**{**GOOD, **changes})
    assert refused.value.argument == argument
    assert str(refused.value).startswith(f"QueueTable(): argument '{argument}' ")
    assert fix in str(refused.value)


def test_the_trigger_refuses_bad_settings_when_the_dag_file_builds_it():
    with pytest.raises(QueueTableError, match="argument 'status_column'"):
        QueueTableTrigger(**{**GOOD, "status_column": "status; --"})


@pytest.mark.parametrize(
    ("changes", "argument"),
    [
        ({"table": "curated queue"}, "table"),
        ({"columns": []}, "columns"),
        ({"columns": ["day", "source_id"]}, "columns"),
        ({"key_column": "source-id"}, "key_column"),
        ({"status_column": "st'atus"}, "status_column"),
        ({"conn_id": ""}, "conn_id"),
    ],
)
def test_a_bad_legacy_table_setting_is_refused_naming_the_argument(changes, argument):
    with pytest.raises(QueueTableError) as refused:
        LegacyTable(**{"conn_id": "legacy_db", "table": "curated_queue", "columns": ["day"], **changes})
    assert refused.value.argument == argument


@pytest.mark.parametrize("helper", ["claim_rows_task", "write_back_task"])
def test_the_claim_and_write_back_tasks_refuse_another_role_naming_the_network_policy(helper):
    from airflow.sdk import DAG

    arguments = {
        "claim_rows_task": (QueueTable(**GOOD),),
        "write_back_task": (LegacyTable(conn_id="legacy_db", table="curated_queue", columns=["day"]), []),
    }[helper]
    with DAG("bridge", schedule=None), pytest.raises(QueueTableError) as refused:
        getattr(queue_table_tasks, helper)(*arguments, role="ecs-runner")
    assert str(refused.value) == (
        f"{helper}(): argument 'role' cannot be set (got 'ecs-runner'); leave it out: the task runs in role "
        "'default', whose task pods networkPolicy.legacyDatabases lets reach the legacy database"
    )


KIT_BUILDS_THE_BRIDGE = """
import sys
from airflow.sdk import DAG
from eksflow import kit
from eksflow.events import queue_table, queue_table_tasks, queue_table_trigger

homes = {"QueueTable": queue_table, "queue_table_asset": queue_table_trigger, "LegacyTable": queue_table_tasks}
homes |= dict.fromkeys(("claim_rows", "claim_rows_task", "write_back", "write_back_task"), queue_table_tasks)
for name, module in homes.items():
    assert getattr(kit, name) is getattr(module, name), name
table = kit.QueueTable(conn_id="legacy_db", table="etl_queue", payload_columns=["day"])
curated = kit.LegacyTable(conn_id="legacy_db", table="curated", columns=["day"])
with DAG("bridge", schedule=[kit.queue_table_asset(table, name="rows")]) as dag:
    kit.write_back_task(curated, kit.claim_rows_task(table))
print(sorted(task.task_id for task in dag.tasks))
print([driver for driver in ("psycopg2", "psycopg", "asyncpg") if driver in sys.modules])
"""


def test_the_kit_exports_the_bridge_helpers_and_a_dag_file_using_them_loads_no_database_driver(tmp_path):
    env = {"AIRFLOW_HOME": str(tmp_path), "PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", KIT_BUILDS_THE_BRIDGE], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    tasks, drivers = result.stdout.splitlines()[-2:]
    assert tasks == "['claim_rows', 'write_back']"
    assert drivers == "[]", "the DAG file loaded a database driver at parse time"


def test_names_are_quoted_and_values_are_bind_parameters_in_every_statement():
    table = QueueTable(**GOOD, ready="READY'); DROP TABLE x; --")
    statements = (table.claim_sql(), table.claimed_rows_sql(), table.mark_sql())
    for sql in statements:
        assert '"public"."etl_queue"' in sql and '"status"' in sql
        assert "READY" not in sql and "DROP" not in sql
    assert table.claim_sql() == (
        'UPDATE "public"."etl_queue" SET "status" = $3 WHERE "id" IN (SELECT "id" FROM "public"."etl_queue" '
        'WHERE "status" = $1 ORDER BY "id" LIMIT $2 FOR UPDATE SKIP LOCKED) AND "status" = $1 '
        'RETURNING "id", "day", "payload"'
    )
    blocking = QueueTable(**GOOD, claim="for_update").claim_sql()
    assert "SKIP LOCKED" not in blocking and "LIMIT $2 FOR UPDATE)" in blocking


def test_the_trigger_serializes_to_what_rebuilds_it_and_shares_a_stream_only_with_the_same_table():
    trigger = QueueTableTrigger(**GOOD)
    classpath, kwargs = trigger.serialize()
    assert classpath == "eksflow.events.queue_table_trigger.QueueTableTrigger"
    json.dumps(kwargs)  # the trigger table stores it
    assert QueueTableTrigger(**kwargs).table == trigger.table
    assert QueueTableTrigger(**kwargs).shared_stream_key() == trigger.shared_stream_key()
    assert QueueTableTrigger(**{**GOOD, "table": "other"}).shared_stream_key() != trigger.shared_stream_key()


def test_the_queue_table_asset_is_watched_by_its_trigger():
    asset = queue_table_asset(QueueTable(**GOOD), name="etl_queue_rows")
    assert asset.uri == "x-eksflow-queue-table://legacy_db/public.etl_queue"
    (watcher,) = asset.watchers
    assert isinstance(watcher.trigger, QueueTableTrigger)


def test_a_row_payload_is_json_and_a_row_no_event_can_carry_is_named_by_column():
    table = QueueTable(**{**GOOD, "payload_columns": ["day", "payload", "amount"], "json_columns": ["payload"]})
    payload = row_payload(
        table, {"day": dt.date(2026, 11, 28), "payload": '{"n": 1}', "amount": decimal.Decimal("1.10")}
    )
    assert payload == {"day": "2026-11-28", "payload": {"n": 1}, "amount": "1.10"}
    assert row_event_payload(table, 7, payload, redelivery=False) == {
        "kind": "eksflow.queue-table-row",
        "source": {"conn_id": "legacy_db", "table": "public.etl_queue"},
        "row_id": 7,
        "row": payload,
        "redelivery": False,
    }
    for values, column, problem in [
        ({"day": None, "payload": "not json", "amount": 1}, "payload", "is not valid JSON"),
        ({"day": b"\x00", "payload": None, "amount": 1}, "day", "holds bytes"),
        ({"day": None, "payload": None, "amount": float("nan")}, "amount", "which JSON cannot carry"),
    ]:
        with pytest.raises(MalformedRow, match=problem) as malformed:
            row_payload(table, values)
        assert malformed.value.column == column


# ---- the release watcher ------------------------------------------------------------------------------------------

SETTINGS_ENV = {"EKSFLOW_ENV": "dev", "EKSFLOW_AWS_REGION": "eu-central-1", "EKSFLOW_AWS_ACCOUNT_ID": "210987654321"}


def test_a_job_release_asset_carries_a_watcher_of_its_environments_release_queue():
    asset = job_release(load_settings(SETTINGS_ENV), "etl-step")
    assert (asset.name, asset.uri) == ("job_release__etl_step", "x-eksflow-release://dev/etl-step")
    (watcher,) = asset.watchers
    assert watcher.trigger.serialize() == (
        "eksflow.events.release_watcher.ReleaseWatcher",
        {
            "job": "etl-step",
            "env": "dev",
            "region": "eu-central-1",
            "account_id": "210987654321",
            "aws_conn_id": None,  # the triggerer's own IRSA identity
            "wait_seconds": 20,
            "retry_seconds": 30,
        },
    )
    train = job_release(load_settings(SETTINGS_ENV), "train").watchers[0].trigger
    assert train.shared_stream_key() == watcher.trigger.shared_stream_key()  # one poll of the queue per triggerer


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"job": "nope"}, "job 'nope' is unknown"),
        ({"env": "Dev"}, "env 'Dev' is invalid"),
        ({"account_id": "1234"}, "account_id must be a 12-digit AWS account id"),
        ({"wait_seconds": 21}, "wait_seconds must be 0-20"),
    ],
)
def test_a_bad_release_watcher_argument_is_refused_by_name(changes, message):
    kwargs = {"job": "train", "env": "dev", "region": "eu-west-1", "account_id": "123456789012", **changes}
    with pytest.raises(ValueError, match=message):
        ReleaseWatcher(**kwargs)


def test_a_release_events_payload_is_the_release_with_digest_family_and_revision():
    release = Release(
        env="dev",
        job="etl-step",
        image="123456789012.dkr.ecr.eu-west-1.amazonaws.com/eksflow-dev-etl-step@sha256:" + "a" * 64,
        git_sha="b" * 40,
        tag="v1.2.0",
        task_definition_arn="arn:aws:ecs:eu-west-1:123456789012:task-definition/eksflow-dev-etl-step:7",
    )
    registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    delivery = ReleaseDelivery.parse(
        {"MessageId": "m-1", "ReceiptHandle": "r", "Body": release.to_message(), "Attributes": {}}, "dev", registry
    )
    payload = release_event_payload(delivery)
    assert payload == {
        **release.to_payload(),
        "digest": "sha256:" + "a" * 64,
        "family": "eksflow-dev-etl-step",
        "revision": 7,
        "message_id": "m-1",
        "receive_count": 1,
        "redelivery": False,
    }
    foreign = ReleaseDelivery.parse(
        {"MessageId": "m-2", "ReceiptHandle": "r", "Body": release.to_message()}, "prod", registry
    )
    assert foreign.release is None and foreign.problem.field == "env"


TRIGGERER_BUILDS_THE_WATCHER = """
import sys
sys.modules["eksflow_dev"] = None  # not in the image
from airflow._shared.module_loading import import_string  # as the triggerer imports a trigger class
from eksflow.assets import job_release
from eksflow.settings import load_settings

classpath, kwargs = job_release(load_settings(), "train").watchers[0].trigger.serialize()
trigger = import_string(classpath)(**kwargs)  # what the triggerer does with the trigger row
producer = trigger.create_shared_stream_producer(kwargs)
print(type(producer).__name__, producer.visibility_seconds, trigger.shared_stream_key())
"""


def test_the_chart_triggerers_environment_builds_the_watcher_without_the_developer_tooling(tmp_path):
    (deployment,) = [
        doc for doc in render() if doc["kind"] == "Deployment" and doc["metadata"]["name"].endswith("-triggerer")
    ]
    (container,) = [c for c in pod_spec(deployment)["containers"] if c["name"] == "triggerer"]
    env = {var["name"]: var["value"] for var in container["env"] if "value" in var}
    env.update({"AIRFLOW_HOME": str(tmp_path), "PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    result = subprocess.run(
        [sys.executable, "-c", TRIGGERER_BUILDS_THE_WATCHER], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        "ReleaseQueueProducer 360 ('eksflow-release-queue', 'dev', 'eu-west-1', '123456789012', None)" in result.stdout
    )


def test_the_migration_guides_bridge_dag_parses_and_keeps_the_platforms_rules(tmp_path):
    from eksflow_dev.dagcheck.check import parse_offline

    guide = (REPO / "docs" / "migrating-queue-tables.md").read_text()
    (block,) = [b.split("```", 1)[0] for b in guide.split("```python\n")[1:] if 'dag_id="batch_data_pipeline"' in b]
    (tmp_path / "batch_data_pipeline.py").write_text(block)
    report = parse_offline([tmp_path])
    assert report["import_errors"] == {}
    assert report["problems"] == {"batch_data_pipeline": []}
    assert report["assets"]["batch_data_pipeline"] == {
        "consumes": ["x-eksflow-queue-table://legacy_queue_db/etl_queue"],
        "produces": ["s3://eksflow-dev-data/curated"],  # curated_events in the settings parse_offline uses
    }


def test_a_claim_limit_over_airflows_max_map_length_is_refused_naming_the_argument():
    from airflow.sdk import DAG

    with DAG("bridge", schedule=None), pytest.raises(QueueTableError) as refused:
        queue_table_tasks.claim_rows_task(QueueTable(**GOOD), limit=2000)
    assert str(refused.value) == (
        "claim_rows(): argument 'limit' must be an integer 1-1000, got 2000; stay under max_map_length (1024)"
    )


def test_a_message_whose_parse_fails_unexpectedly_is_rejected_as_a_body_problem_not_raised(monkeypatch):
    # A mock: release_from_payload itself now maps every failure it knows; this pins the poll's last guard.
    from eksflow.events import release_watcher

    def parse(body, **_):
        raise KeyError("surprise")

    monkeypatch.setattr(release_watcher, "release_from_payload", parse)
    delivery = release_watcher.ReleaseDelivery.parse(
        {"MessageId": "m", "ReceiptHandle": "r", "Body": "{}"}, "dev", "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    )
    assert str(delivery.problem) == "release message field 'body' could not be read (KeyError: 'surprise')"

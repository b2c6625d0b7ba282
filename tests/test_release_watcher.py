"""Job releases → Asset events, executed: Airflow's real dag-processor registers the release watchers of the DAGs
scheduled on `job_release(...)` (tests/event_dags/release_consumers.py), Airflow's real triggerer runs them against
the emulator's SQS over HTTP (the seeded release queue and its dead-letter queue), on a PostgreSQL metadata DB.

One scenario (the module's fixture) and what it shows: each valid release becomes exactly one Asset event of its
job, carrying the release; another job's release is left on the queue for its watcher — taken once that watcher
starts; a message that is no release, another environment's, and one whose image is in another registry than the
platform's are moved to the dead-letter queue with one log line naming the field, and the watchers keep going."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest

from eksflow.jobs import release_dlq_name, release_queue_name
from eksflow.releases import ecr_registry
from eksflow_dev.local.emulator import Emulator, running_emulator
from eksflow_dev.local.offline import REGION
from tests.support.airflow_stack import AirflowStack, airflow_stack, wait_for
from tests.support.releases import ENV, REGISTRY, queue_counts, release, release_consumer_dags

pytestmark = pytest.mark.slow

# Seconds a release no watcher here took stays invisible before it is offered again: long against the few seconds
# the serve watcher takes to start, short against the wait (the seeded queue's redrive takes it after 5 receives).
RETRY_SECONDS = 6


ETL_1, TRAIN_1, SERVE_1, ETL_2 = (
    release("etl-step", 1),
    release("train", 2),
    release("serve", 3),
    release("etl-step", 4),
)
NOT_A_RELEASE = {**ETL_1.to_payload(), "image": f"{REGISTRY}/eksflow-local-etl-step:latest"}
ANOTHER_ENV = release("etl-step", 5, env="prod").to_payload()
# The job's repository name, in another account's registry: not an image the platform runs.
FOREIGN_REGISTRY = release("etl-step", 6, registry=ecr_registry("210987654321", REGION)).to_payload()


@dataclass
class Scenario:
    stack: AirflowStack
    emulator: Emulator
    events: dict[str, list[dict]]  # asset name -> event payloads, in order
    dead_letters: list[dict]
    queue_counts_before_serve: dict[str, int]
    seconds: dict[str, float]


def asset_events(stack: AirflowStack) -> dict[str, list[dict]]:
    rows = stack.query(
        "SELECT a.name, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id ORDER BY e.timestamp, e.id"
    )
    found: dict[str, list[dict]] = {}
    for name, extra in rows:
        assert extra["from_trigger"] is True
        found.setdefault(name, []).append(extra["payload"])
    return found


def watcher_count(stack: AirflowStack) -> int:
    return stack.query(
        "SELECT count(*) FROM trigger WHERE classpath = 'eksflow.events.release_watcher.ReleaseWatcher'"
    )[0][0]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, postgres, airflow_db_template) -> Scenario:
    root = tmp_path_factory.mktemp("release-watcher")
    dags = release_consumer_dags(root)
    seconds: dict[str, float] = {}
    start = time.monotonic()
    with running_emulator(root / "emulator") as emulator:
        env = {
            **emulator.seeded.settings_env,
            "AWS_ENDPOINT_URL": emulator.url,  # as values-local.yaml sets it on the local cluster
            "EKSFLOW_RELEASE_WAIT_SECONDS": "5",
            "EKSFLOW_RELEASE_RETRY_SECONDS": str(RETRY_SECONDS),
        }
        with airflow_stack(root, postgres, airflow_db_template, dags, env) as stack:
            stack.start("dag-processor")
            wait_for(lambda: watcher_count(stack) == 2, 120, "the etl-step and train watchers", stack.tail)
            stack.start("triggerer")
            wait_for(lambda: "Watching release queue" in stack.log("triggerer"), 120, "the poll", stack.tail)
            seconds["stack up"] = time.monotonic() - start

            sqs = emulator.client("sqs")
            url = sqs.get_queue_url(QueueName=release_queue_name(ENV))["QueueUrl"]
            dlq = sqs.get_queue_url(QueueName=release_dlq_name(ENV))["QueueUrl"]
            sent = time.monotonic()
            for body in (
                ETL_1.to_message(),
                TRAIN_1.to_message(),
                SERVE_1.to_message(),
                json.dumps(NOT_A_RELEASE),
                "release etl-step please",
                json.dumps(ANOTHER_ENV),
                json.dumps(FOREIGN_REGISTRY),
                ETL_2.to_message(),
            ):
                sqs.send_message(QueueUrl=url, MessageBody=body)

            def settled():
                found = asset_events(stack)
                counts = {name: len(found.get(name, [])) for name in ("job_release__etl_step", "job_release__train")}
                return counts == {"job_release__etl_step": 2, "job_release__train": 1} and found

            wait_for(settled, 120, "the etl-step and train events", stack.tail)
            wait_for(lambda: queue_counts(sqs, dlq)["ApproximateNumberOfMessages"] == 4, 60, "4 dead letters")
            wait_for(lambda: "no watcher of that job in this triggerer" in stack.log("triggerer"), 60, "serve put back")
            seconds["events + dead letters"] = time.monotonic() - sent
            # The taken releases are deleted once Airflow confirmed their events; the serve release stays.
            before_serve = wait_for(
                lambda: (counts := queue_counts(sqs, url)) and sum(counts.values()) == 1 and counts,
                60,
                "only the serve release left on the queue",
                lambda: str(queue_counts(sqs, url)),
            )

            serve_started = time.monotonic()
            unpaused = stack.airflow("dags", "unpause", "on_serve_release")
            assert unpaused.returncode == 0, unpaused.stderr[-2000:]
            wait_for(lambda: "job_release__serve" in asset_events(stack), 120, "the serve event", stack.tail)
            wait_for(lambda: sum(queue_counts(sqs, url).values()) == 0, 60, "an empty release queue")
            seconds["serve watcher takes its release"] = time.monotonic() - serve_started

            received = sqs.receive_message(
                QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
            )["Messages"]
            yield Scenario(stack, emulator, asset_events(stack), received, before_serve, seconds)


def test_each_release_becomes_exactly_one_event_of_its_jobs_asset_carrying_the_release(scenario, record_property):
    events = scenario.events
    assert sorted(events) == ["job_release__etl_step", "job_release__serve", "job_release__train"]
    for name, releases in (
        ("job_release__etl_step", [ETL_1, ETL_2]),
        ("job_release__train", [TRAIN_1]),
        ("job_release__serve", [SERVE_1]),
    ):
        payloads = events[name]
        assert [{k: p[k] for k in ETL_1.to_payload()} for p in payloads] == [r.to_payload() for r in releases], name
        assert [p["digest"] for p in payloads] == [r.digest for r in releases]
        assert len({p["message_id"] for p in payloads}) == len(payloads)
    assert [(p["family"], p["revision"]) for p in events["job_release__etl_step"]] == [
        ("eksflow-local-etl-step", 1),
        ("eksflow-local-etl-step", 4),
    ]
    assert events["job_release__train"][0]["revision"] is None and not events["job_release__train"][0]["redelivery"]
    timings = "\n".join(f"{name}: {value:.1f} s" for name, value in scenario.seconds.items())
    record_property("table: release watcher timings", timings)


def test_another_jobs_release_stays_on_the_queue_until_its_watcher_takes_it(scenario):
    # Before the serve DAG was unpaused: its release in flight or back on the queue, nothing deleted.
    assert sum(scenario.queue_counts_before_serve.values()) == 1
    (serve,) = scenario.events["job_release__serve"]
    assert serve["receive_count"] >= 2 and serve["redelivery"]  # offered to the etl-step/train watchers first
    put_back = [line for line in scenario.stack.log("triggerer").splitlines() if "no watcher of that job" in line]
    assert put_back and all("for job 'serve'" in line for line in put_back)


def test_a_message_that_is_no_release_another_environments_or_another_registrys_is_set_aside_naming_the_field(
    scenario,
):
    # Each body intact (for whoever fixes the sender), with the field it was rejected for.
    rejected = {
        m["Body"]: m["MessageAttributes"]["eksflow-rejected-field"]["StringValue"] for m in scenario.dead_letters
    }
    assert rejected == {
        json.dumps(NOT_A_RELEASE): "image",
        "release etl-step please": "body",
        json.dumps(ANOTHER_ENV): "env",
        json.dumps(FOREIGN_REGISTRY): "image",
    }
    lines = [line for line in scenario.stack.log("triggerer").splitlines() if "set aside to dead-letter queue" in line]
    assert len(lines) == 4
    for words in (
        "release message field 'image' must be <registry>/<repository>@sha256:<64 hex>",
        "release message field 'body' is not JSON",
        "release message field 'env' is 'prod', but this is environment 'local'",
        f"release message field 'image' is in registry '{ecr_registry('210987654321', REGION)}', not the platform's "
        f"ECR registry '{REGISTRY}'",
    ):
        assert sum(words in line for line in lines) == 1, (words, lines)


def test_the_watchers_keep_going_after_a_bad_message(scenario):
    # ETL_2 was sent after the three bad messages.
    assert scenario.events["job_release__etl_step"][-1]["image"] == ETL_2.image
    assert "Trigger exited" not in scenario.stack.log("triggerer")

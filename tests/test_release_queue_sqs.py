"""The release queue's producer against the emulator's SQS over HTTP, driven as Airflow's shared-stream manager drives
it (open_stream, then advance with how the watchers resolved each message): a release a watcher took is deleted;
one nobody here took goes back on the queue after retry_seconds (and SQS's redrive moves it to the dead-letter queue
after maxReceiveCount receives: never deleted unseen); one Airflow never confirmed is offered again at once, its
receive count telling the watcher it is a redelivery; a rejected one moves to the dead-letter queue with its reason.
The whole path through Airflow's triggerer: test_release_watcher.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest
from airflow.triggers.shared_stream import AdvanceItem, AdvanceOutcome

from eksflow.events.release_watcher import ReleaseQueueProducer
from eksflow.jobs import release_dlq_name, release_queue_name
from eksflow_dev.emulator.seed import ACCOUNT_ID, create_release_queues
from eksflow_dev.local.offline import REGION, offline_env
from tests.support.airflow_stack import wait_for
from tests.support.releases import release as released

ENV = "relq"  # queues of their own on the shared emulator
CLEAN = AdvanceOutcome(acked=2, failed=0)
REJECTED = AdvanceOutcome(acked=0, failed=0, rejected=2)
TIMED_OUT = AdvanceOutcome(acked=1, failed=1)


def release(job: str, n: int) -> str:
    return released(job, n, ENV).to_message()


@pytest.fixture()
def queues(emulator, monkeypatch):
    # The triggerer's own identity, no connection: boto3's chain (the emulator's keys here, IRSA in the cluster).
    for name, value in {**offline_env(), "AWS_ENDPOINT_URL": emulator.url}.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    sqs = emulator.client("sqs")
    for name in (release_queue_name(ENV), release_dlq_name(ENV)):
        with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):
            sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"])
    url, dlq = create_release_queues(sqs, ENV, max_receives=3)
    return sqs, url, dlq


def counts(sqs, url: str) -> tuple[int, int]:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return int(attributes[names[0]]), int(attributes[names[1]])


def receive_and_advance(outcomes: dict[str, AdvanceOutcome], taken: set[str], retry_seconds: int = 30) -> dict:
    """Receive len(outcomes) messages, mark the bodies in ``taken`` as taken by a watcher, advance each with its
    outcome (by job); returns the deliveries by job."""

    async def scenario():
        producer = ReleaseQueueProducer(
            env=ENV,
            region=REGION,
            account_id=ACCOUNT_ID,
            aws_conn_id=None,
            wait_seconds=1,
            retry_seconds=retry_seconds,
        )
        stream = producer.open_stream()
        try:
            deliveries = {}
            while len(deliveries) < len(outcomes):
                delivery, _ = await asyncio.wait_for(anext(stream), 30)
                job = delivery.release.job if delivery.release else delivery.body
                deliveries[job] = delivery
                if job in taken:
                    delivery.taken_by.add(job)
            await producer.advance([AdvanceItem(deliveries[job], outcome) for job, outcome in outcomes.items()])
        finally:
            await stream.aclose()
            await producer.aclose()
        return deliveries

    return asyncio.run(scenario())


def test_a_release_a_watcher_took_is_deleted_and_one_nobody_took_goes_back_on_the_queue(queues):
    sqs, url, dlq = queues
    for body in (release("train", 1), release("serve", 2)):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    receive_and_advance({"train": CLEAN, "serve": CLEAN}, taken={"train"}, retry_seconds=30)
    assert counts(sqs, url) == (0, 1)  # serve: invisible for retry_seconds, not deleted
    assert counts(sqs, dlq) == (0, 0)


def test_a_release_airflow_never_confirmed_is_offered_again_at_once_as_a_redelivery(queues):
    sqs, url, _ = queues
    sqs.send_message(QueueUrl=url, MessageBody=release("train", 3))
    first = receive_and_advance({"train": TIMED_OUT}, taken={"train"})
    assert counts(sqs, url) == (1, 0)
    again = receive_and_advance({"train": CLEAN}, taken={"train"})
    assert (first["train"].receive_count, again["train"].receive_count) == (1, 2)
    assert counts(sqs, url) == (0, 0)


def test_a_release_nobody_takes_reaches_the_dead_letter_queue_by_the_redrive_never_deleted(queues):
    sqs, url, dlq = queues
    sqs.send_message(QueueUrl=url, MessageBody=release("serve", 4))
    for _ in range(3):  # the queue's maxReceiveCount here
        receive_and_advance({"serve": CLEAN}, taken=set(), retry_seconds=0)
    sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)  # the receive after the last one: SQS redrives it
    assert counts(sqs, url) == (0, 0)
    (moved,) = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=0)["Messages"]
    assert moved["Body"] == release("serve", 4)


def test_a_rejected_message_moves_to_the_dead_letter_queue_with_its_reason(queues):
    sqs, url, dlq = queues
    sqs.send_message(QueueUrl=url, MessageBody="not a release")
    deliveries = receive_and_advance({"not a release": REJECTED}, taken=set())
    assert deliveries["not a release"].problem.field == "body"
    assert counts(sqs, url) == (0, 0)
    (moved,) = sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"], WaitTimeSeconds=0)["Messages"]
    assert moved["Body"] == "not a release"
    attributes = {name: value["StringValue"] for name, value in moved["MessageAttributes"].items()}
    assert attributes == {
        "eksflow-rejected-field": "body",
        "eksflow-rejected-reason": (
            "release message field 'body' is not JSON (Expecting value: line 1 column 1 (char 0))"
        ),
    }


def test_the_emulators_long_poll_receives_a_message_sent_while_it_waits(emulator, queues):
    """The emulator serves one request at a time; a waiting ReceiveMessage lets others in (eksflow_dev/emulator/
    sqs.py), or the SendMessage it waits for would wait for it to time out, and it would return empty."""
    import threading

    from eksflow_dev.emulator.control import control

    sqs, url, _ = queues
    before = control(emulator.url, "stats")["calls"].get("sqs:ReceiveMessage", 0)
    received = []
    poll = threading.Thread(
        target=lambda: received.extend(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20).get("Messages", []))
    )
    poll.start()
    wait_for(lambda: control(emulator.url, "stats")["calls"].get("sqs:ReceiveMessage", 0) > before, 10, "the long poll")
    sqs.send_message(QueueUrl=url, MessageBody=release("train", 5))
    poll.join(timeout=30)
    assert [message["Body"] for message in received] == [release("train", 5)]


def test_a_stopping_triggerer_puts_back_what_it_received_and_never_advanced(queues):
    sqs, url, _ = queues
    sqs.send_message(QueueUrl=url, MessageBody=release("train", 6))

    async def receive_then_stop():
        producer = ReleaseQueueProducer(env=ENV, region=REGION, account_id=ACCOUNT_ID, aws_conn_id=None)
        stream = producer.open_stream()
        await asyncio.wait_for(anext(stream), 30)
        held = counts(sqs, url)
        await stream.aclose()  # as the shared stream ends: the poll cancelled, then the producer closed
        await producer.aclose()
        return held

    assert asyncio.run(receive_then_stop()) == (0, 1)
    assert counts(sqs, url) == (1, 0)


def test_a_queue_the_poll_cannot_read_is_logged_and_retried_until_it_can(emulator, queues, caplog):
    sqs, url, dlq = queues
    for queue in (url, dlq):
        sqs.delete_queue(QueueUrl=queue)  # e.g. Terraform not applied yet, or the grant missing

    async def scenario():
        producer = ReleaseQueueProducer(env=ENV, region=REGION, account_id=ACCOUNT_ID, aws_conn_id=None, wait_seconds=1)
        stream = producer.open_stream()
        first = asyncio.ensure_future(anext(stream))
        try:
            for _ in range(200):  # bounded: until the poll has said it cannot receive
                if "cannot receive" in caplog.text:
                    break
                await asyncio.sleep(0.05)
            assert not first.done()  # the poll goes on
            create_release_queues(sqs, ENV)
            sqs.send_message(QueueUrl=url, MessageBody=release("train", 7))
            delivery, _ = await asyncio.wait_for(first, 30)
        finally:
            await stream.aclose()
            await producer.aclose()
        return delivery

    with caplog.at_level(logging.ERROR, logger="eksflow.events.release_watcher"):
        delivery = asyncio.run(scenario())
    assert delivery.release.job == "train"
    assert f"Release queue {url}: cannot receive (An error occurred (AWS.SimpleQueueService.NonExistentQueue)" in (
        caplog.text
    )


def test_a_hostile_message_is_rejected_to_the_dead_letter_queue_and_the_poll_goes_on(queues):
    sqs, url, dlq = queues
    oversized, nested = "[" * 100_000, "[" * 10_000  # 100 KB; under the size limit but too deep for json.loads
    for body in (oversized, nested, release("train", 5)):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    deliveries = receive_and_advance({oversized: REJECTED, nested: REJECTED, "train": CLEAN}, taken={"train"})
    assert str(deliveries[oversized].problem) == (
        "release message field 'body' is 100000 bytes; a release message is at most 16384 (MAX_MESSAGE_BYTES)"
    )
    assert str(deliveries[nested].problem) == "release message field 'body' is JSON nested too deeply to decode"
    assert deliveries["train"].release.git_sha == f"{5:040x}"
    assert counts(sqs, url) == (0, 0)
    moved = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    assert sorted(len(message["Body"]) for message in moved) == [10_000, 100_000]

"""The release watcher: one Asset event per release of a job, read from the environment's release queue (SQS).

One queue carries every job's releases (``eksflow.jobs.release_queue_name``; the release command sends them). Every
job has its own watcher (``eksflow.assets.job_release``), and all watchers of one queue in a triggerer share one poll
(Airflow 3.3's shared stream, keyed by the queue): each message is seen by every watcher, and each keeps its own
job's. Ack mode decides what happens to a message only once every watcher is done with it:

- a release some watcher turned into an Asset event is deleted after Airflow confirmed the event persisted;
- a release no watcher here took (a job watched by another triggerer's watchers, or by none) is put back on the
  queue after ``retry_seconds``; if nobody ever takes it, the queue's redrive policy moves it to the dead-letter
  queue after its maxReceiveCount receives — it is never deleted silently. With several triggerers (the chart runs
  two) the watchers of one queue may sit in different ones — Airflow assigns triggers one by one — and each
  triggerer's poll puts back the others' releases: they arrive ``retry_seconds`` later per wrong hop, and every hop
  is a receive, so the queue's maxReceiveCount must leave room for a few (10 or more);
- a message that is no release (``release_from_payload`` names the field), another environment's, or one whose image
  is in another registry than the platform's ECR registry (the watchers' account and Region), is rejected by
  the watchers and moved to the dead-letter queue at once, with one log line and its reason in the message's
  attributes (``eksflow-rejected-field``, ``eksflow-rejected-reason``): out of the way of the good messages, kept
  intact for whoever fixes the sender, and re-drivable from the dead-letter queue. (Leaving it to the redrive would
  log it at every receive and keep it cycling for maxReceiveCount receives.)
- an event whose persistence Airflow never confirmed leaves its message on the queue, and SQS delivers it again: at
  once after an ack timeout, or when the triggerer stops (the producer puts back what it has not advanced; a
  SIGKILLed one's messages return after their visibility timeout, Airflow's ack timeout + 60 s). If Airflow had
  persisted the event after all (it does not flush its confirmations on shutdown), that is a second event; every
  event carries ``receive_count``/``redelivery``, so a consumer can tell. A release sent in the last
  ``wait_seconds`` before a stop may be taken by the stopped triggerer's long poll, which SQS finishes for a
  connection that is gone: it arrives one visibility timeout later (late, not lost;
  tests/test_release_watcher_restart.py).

The triggerer polls as its own IRSA role: no connection by default (``aws_conn_id=None``: boto3's credential chain;
the chart's connections in the triggerer are region-only anyway), and queue URLs are the SQS endpoint the client
resolved (the emulator's with ``AWS_ENDPOINT_URL``) + account + queue name, so the role needs no
``sqs:GetQueueUrl``. It needs ``sqs:ReceiveMessage``, ``sqs:DeleteMessage`` and ``sqs:ChangeMessageVisibility`` on
the release queue and ``sqs:SendMessage`` on its dead-letter queue (plus the queue keys' ``kms:Decrypt`` /
``kms:GenerateDataKey`` where they are customer-managed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent
from airflow.triggers.shared_stream import AdvanceItem, SharedStreamProducer, reject_shared_stream_event

from eksflow.jobs import get_job, release_dlq_name, release_queue_name
from eksflow.platform import validate_env
from eksflow.releases import Release, ReleaseMessageError, ecr_registry, release_from_payload

# Long-poll wait of one receive (SQS allows at most 20 s).
WAIT_SECONDS = int(os.environ.get("EKSFLOW_RELEASE_WAIT_SECONDS", "20"))
# How long a release no watcher of this triggerer took stays invisible before it is offered again.
RETRY_SECONDS = int(os.environ.get("EKSFLOW_RELEASE_RETRY_SECONDS", "30"))
# SQS's longest visibility timeout.
_MAX_VISIBILITY = 12 * 3600
# A message is held at least this much longer than Airflow's ack timeout, so it never reappears while its event is
# still waiting for Airflow's persistence confirmation (a second delivery would be a second event).
_VISIBILITY_MARGIN = 60
_MAX_BACKOFF = 60.0
REJECTED_FIELD_ATTRIBUTE = "eksflow-rejected-field"
REJECTED_REASON_ATTRIBUTE = "eksflow-rejected-reason"


@dataclass(eq=False)
class ReleaseDelivery:
    """One received message, as every watcher of the queue sees it (and the producer advances it)."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    release: Release | None = None
    problem: ReleaseMessageError | None = None
    # Jobs whose watcher made an Asset event of it: the producer deletes only a message somebody took.
    taken_by: set[str] = field(default_factory=set)

    @classmethod
    def parse(cls, message: dict[str, Any], env: str, registry: str) -> ReleaseDelivery:
        """``env``, ``registry``: the watchers' environment and the platform's ECR registry (``ecr_registry``)."""
        delivery = cls(
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            body=message.get("Body", ""),
            receive_count=int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
        )
        try:
            delivery.release = release_from_payload(delivery.body, env=env, registry=registry)
        except ReleaseMessageError as error:
            delivery.problem = error
        except Exception as error:  # one message never stops the poll every watcher shares: to the DLQ with it
            delivery.problem = ReleaseMessageError("body", f"could not be read ({type(error).__name__}: {error})")
        return delivery


def release_event_payload(delivery: ReleaseDelivery) -> dict[str, Any]:
    """The Asset event's payload: the release (``Release.to_payload``, which ``release_from_payload`` reads back)
    plus what a consumer wants without parsing: digest, ECS family and revision, and the message it came from."""
    release = delivery.release
    if release is None:
        raise ValueError(f"message {delivery.message_id} is no release: {delivery.problem}")
    job = get_job(release.job)
    return {
        **release.to_payload(),
        "digest": release.digest,
        "family": job.ecs_family(release.env) if job.runs_on == "ecs" else "",
        "revision": release.revision,
        "message_id": delivery.message_id,
        "receive_count": delivery.receive_count,
        "redelivery": delivery.receive_count > 1,
    }


def queue_url(endpoint_url: str, account_id: str, queue_name: str) -> str:
    """``https://sqs.<region>.amazonaws.com/<account>/<queue>`` on AWS; the emulator's endpoint locally."""
    return f"{endpoint_url.rstrip('/')}/{account_id}/{queue_name}"


class ReleaseWatcher(BaseEventTrigger):
    """Asset events for one job's releases on the environment's release queue (module docstring).

    :param job: the job whose releases become events (``eksflow.jobs``)
    :param env, region, account_id: where the queue is (``eksflow.settings``)
    :param aws_conn_id: None (default): the triggerer's own identity (IRSA); or an AWS connection id
    """

    def __init__(
        self,
        *,
        job: str,
        env: str,
        region: str,
        account_id: str,
        aws_conn_id: str | None = None,
        wait_seconds: int = WAIT_SECONDS,
        retry_seconds: int = RETRY_SECONDS,
    ):
        super().__init__()
        get_job(job)
        validate_env(env)
        if not (isinstance(account_id, str) and account_id.isdigit() and len(account_id) == 12):
            raise ValueError(f"ReleaseWatcher: account_id must be a 12-digit AWS account id, got {account_id!r}")
        if not 0 <= wait_seconds <= 20:
            raise ValueError(f"ReleaseWatcher: wait_seconds must be 0-20 (SQS long polling), got {wait_seconds!r}")
        if not 0 <= retry_seconds <= _MAX_VISIBILITY:
            raise ValueError(f"ReleaseWatcher: retry_seconds must be 0-{_MAX_VISIBILITY}, got {retry_seconds!r}")
        self.job = job
        self.env = env
        self.region = region
        self.account_id = account_id
        self.aws_conn_id = aws_conn_id
        self.wait_seconds = wait_seconds
        self.retry_seconds = retry_seconds

    @classmethod
    def for_job(cls, settings, job: str) -> ReleaseWatcher:
        """The watcher of ``job`` on ``settings``' environment (what ``eksflow.assets.job_release`` attaches)."""
        return cls(job=job, env=settings.env, region=settings.region, account_id=settings.account_id)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job": self.job,
                "env": self.env,
                "region": self.region,
                "account_id": self.account_id,
                "aws_conn_id": self.aws_conn_id,
                "wait_seconds": self.wait_seconds,
                "retry_seconds": self.retry_seconds,
            },
        )

    def shared_stream_key(self) -> Hashable:
        return ("eksflow-release-queue", self.env, self.region, self.account_id, self.aws_conn_id)

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> SharedStreamProducer:
        return ReleaseQueueProducer(**kwargs)

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        async for delivery in shared_stream:
            if delivery.problem is not None:
                reject_shared_stream_event()  # the producer moves it to the DLQ and logs why, once
                continue
            if delivery.release.job != self.job:
                continue  # another job's: its watcher takes it, or the producer puts it back
            delivery.taken_by.add(self.job)
            yield TriggerEvent(release_event_payload(delivery))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        raise RuntimeError("ReleaseWatcher runs only on a shared stream (Airflow >= 3.3's triggerer)")
        yield  # an async generator, as Airflow expects


class ReleaseQueueProducer(SharedStreamProducer):
    """The one poll of a release queue in a triggerer; advances each message as the module docstring says."""

    def __init__(self, *, env: str, region: str, account_id: str, aws_conn_id: str | None, **kwargs: Any):
        from airflow.configuration import conf

        self.env = env
        self.region = region
        self.account_id = account_id
        self.registry = ecr_registry(account_id, region)  # the platform's: the only one whose images run
        self.aws_conn_id = aws_conn_id
        self.wait_seconds = int(kwargs.get("wait_seconds", WAIT_SECONDS))
        self.retry_seconds = int(kwargs.get("retry_seconds", RETRY_SECONDS))
        ack_timeout = conf.getfloat("triggerer", "shared_stream_ack_timeout")
        self.visibility_seconds = min(_MAX_VISIBILITY, int(ack_timeout) + _VISIBILITY_MARGIN)
        self.log = logging.getLogger(__name__)
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None
        self._outstanding: dict[str, ReleaseDelivery] = {}  # received, not yet advanced (by receipt handle)
        self.queue_url = ""
        self.dlq_url = ""

    async def _connect(self) -> Any:
        from airflow.providers.amazon.aws.hooks.sqs import SqsHook

        hook = SqsHook(aws_conn_id=self.aws_conn_id, region_name=self.region)
        client = await self._stack.enter_async_context(await hook.get_async_conn())
        self.queue_url = queue_url(client.meta.endpoint_url, self.account_id, release_queue_name(self.env))
        self.dlq_url = queue_url(client.meta.endpoint_url, self.account_id, release_dlq_name(self.env))
        return client

    async def open_stream(self) -> AsyncIterator[tuple[ReleaseDelivery, ReleaseDelivery]]:
        # The client lives until aclose(), after the last advance: the poll is cancelled before its pending
        # advances are drained.
        from botocore.exceptions import BotoCoreError, ClientError

        self._client = await self._connect()
        self.log.info("Watching release queue %s (dead-letter queue %s)", self.queue_url, self.dlq_url)
        backoff = 0.0
        while True:
            try:
                response = await self._client.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=self.wait_seconds,
                    VisibilityTimeout=self.visibility_seconds,
                    MessageSystemAttributeNames=["ApproximateReceiveCount"],
                )
            except (ClientError, BotoCoreError) as error:
                # A missing grant or queue, an outage: keep every watcher alive and say so at a sane rate (raising
                # would fail the watchers, which the triggerer restarts within a second, again and again).
                backoff = min(max(2 * backoff, 1.0), _MAX_BACKOFF)
                self.log.error(
                    "Release queue %s: cannot receive (%s); retrying in %.0f s", self.queue_url, error, backoff
                )
                await asyncio.sleep(backoff)
                continue
            backoff = 0.0
            for message in response.get("Messages", []):
                delivery = ReleaseDelivery.parse(message, self.env, self.registry)
                self._outstanding[delivery.receipt_handle] = delivery
                yield delivery, delivery

    async def advance(self, batch: Sequence[AdvanceItem]) -> None:
        for item in batch:
            delivery: ReleaseDelivery = item.broker_payload
            outcome = item.outcome
            self._outstanding.pop(delivery.receipt_handle, None)
            if outcome.rejected:
                await self._set_aside(delivery)
            elif outcome.is_clean and delivery.taken_by:
                await self._call("DeleteMessage", QueueUrl=self.queue_url, ReceiptHandle=delivery.receipt_handle)
            elif outcome.failed:
                self.log.warning(
                    "Release message %s: Airflow did not confirm its Asset event; SQS delivers it again",
                    delivery.message_id,
                )
                await self._put_back(delivery, 0)
            else:
                job = delivery.release.job if delivery.release else "?"
                self.log.warning(
                    "Release message %s for job %r: no watcher of that job in this triggerer; back on queue %s in "
                    "%d s (receive %d; after the queue's maxReceiveCount receives SQS moves it to the dead-letter "
                    "queue)",
                    delivery.message_id,
                    job,
                    release_queue_name(self.env),
                    self.retry_seconds,
                    delivery.receive_count,
                )
                await self._put_back(delivery, self.retry_seconds)

    async def _set_aside(self, delivery: ReleaseDelivery) -> None:
        problem = delivery.problem
        field_name = problem.field if problem is not None else "?"
        self.log.error(
            "Release message %s set aside to dead-letter queue %s: %s",
            delivery.message_id,
            release_dlq_name(self.env),
            problem,
        )
        attributes = {
            REJECTED_FIELD_ATTRIBUTE: {"DataType": "String", "StringValue": field_name},
            REJECTED_REASON_ATTRIBUTE: {"DataType": "String", "StringValue": str(problem)[:1024]},
        }
        sent = await self._call(
            "SendMessage", QueueUrl=self.dlq_url, MessageBody=delivery.body or "(empty)", MessageAttributes=attributes
        )
        if sent:  # else it stays on the queue, comes back and is rejected again
            await self._call("DeleteMessage", QueueUrl=self.queue_url, ReceiptHandle=delivery.receipt_handle)

    async def _put_back(self, delivery: ReleaseDelivery, seconds: int) -> bool:
        return await self._call(
            "ChangeMessageVisibility",
            QueueUrl=self.queue_url,
            ReceiptHandle=delivery.receipt_handle,
            VisibilityTimeout=seconds,
        )

    async def _call(self, operation: str, **kwargs: Any) -> bool:
        """One SQS call; a refused one is logged, not raised: the message then simply comes back (at worst a
        redelivery), where raising would end every watcher's poll."""
        from botocore.exceptions import BotoCoreError, ClientError

        method = {
            "DeleteMessage": self._client.delete_message,
            "SendMessage": self._client.send_message,
            "ChangeMessageVisibility": self._client.change_message_visibility,
        }[operation]
        try:
            await method(**kwargs)
        except (ClientError, BotoCoreError) as error:
            self.log.warning("SQS %s on %s failed: %s", operation, kwargs.get("QueueUrl"), error)
            return False
        return True

    async def aclose(self) -> None:
        # Messages received and never advanced (the triggerer is stopping): offered again now rather than after
        # their visibility timeout, to the next triggerer. Those whose events Airflow persisted without confirming
        # come back as redeliveries (receive_count > 1).
        if self._client is not None and self._outstanding:
            back = 0
            for delivery in list(self._outstanding.values()):
                back += await self._put_back(delivery, 0)
            self.log.info(
                "Stopping: %d of %d release message(s) not yet advanced went back on %s",
                back,
                len(self._outstanding),
                release_queue_name(self.env),
            )
        self._outstanding.clear()
        await self._stack.aclose()

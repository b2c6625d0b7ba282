"""Notifications for DAG owners: an Airflow notifier publishing to the environment's SNS topic.

Airflow 3.3.2 runs a task's ``on_failure_callback``/``on_success_callback`` in the task's own process after the task
ends (the worker's task runner), so the notifier publishes with the task's role: its connection, held by IAM to
``sns:Publish`` on this environment's topic (terraform/modules/irsa, ``notify``). The failure callback of a task that
died outside its process (pod lost, heartbeat timeout) and DAG-level callbacks run in the dag-processor, whose role
may publish to the same topic. Subscribers may filter on the message attributes (``owner``, ``dag_id``, ``event``).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseNotifier

from eksflow.kit.errors import KitArgumentError
from eksflow.roles import DEFAULT_ROLE, get_role, role_for_pod_template

EVENTS = ("failure", "success")
SUBJECT_LIMIT = 100  # SNS refuses longer subjects
ERROR_LIMIT = 2000  # of the exception text in the body; the log URL has the rest


def _role_conn_id(task: Any) -> str:
    """The connection of the task's role (its pod template): the identity the callback runs with."""
    config = getattr(task, "executor_config", None) or {}
    role = role_for_pod_template(config.get("pod_template_file")) or get_role(DEFAULT_ROLE)
    return role.conn_id


def notification(context: Any, event: str) -> tuple[str, str, dict[str, str]]:
    """(subject, body, attributes) of a task's notification, from the callback's Airflow context."""
    ti, task = context["ti"], context.get("task")
    dag_id, task_id, run_id = ti.dag_id, ti.task_id, ti.run_id
    map_index = getattr(ti, "map_index", -1)
    label = f"{task_id}[{map_index}]" if map_index is not None and map_index >= 0 else task_id
    tries = getattr(ti, "max_tries", None)
    try_line = f"{ti.try_number} of {tries + 1}" if tries is not None else str(ti.try_number)
    owner = getattr(task, "owner", "") or ""
    from eksflow.settings import load_settings

    env = load_settings().env
    subject = f"[eksflow {env}] {event}: {dag_id}.{label}"
    lines = [
        f"DAG: {dag_id}",
        f"Task: {label}",
        f"Run: {run_id}",
        f"Try: {try_line}",
        f"Log: {ti.log_url}",
        f"Owner: {owner}",
        f"Environment: {env}",
    ]
    error = context.get("exception")
    if event == "failure" and error is not None:
        lines.append(f"Error: {str(error)[:ERROR_LIMIT]}")
    attributes = {"event": event, "dag_id": dag_id, "task_id": task_id, "env": env}
    if owner:
        attributes["owner"] = owner
    return subject[:SUBJECT_LIMIT], "\n".join(lines) + "\n", attributes


class SnsNotifier(BaseNotifier):
    """Publishes a task's failure or success to the environment's notification topic (and, with ``slack_conn_id``,
    to a Slack incoming webhook: an HTTP connection whose host is the whole webhook URL, in Airflow's JSON form
    ``{"conn_type": "http", "host": "https://hooks.slack.com/services/..."}``, e.g. stored in Secrets Manager).

    ``topic_arn`` defaults to the DAG settings' (``EKSFLOW_NOTIFICATION_TOPIC_ARN``, else derived from env, region and
    account); ``aws_conn_id`` to the task's role's connection, so the task's own role publishes."""

    def __init__(
        self,
        event: str = "failure",
        *,
        topic_arn: str | None = None,
        aws_conn_id: str | None = None,
        slack_conn_id: str | None = None,
    ):
        super().__init__()
        if event not in EVENTS:
            raise KitArgumentError("notify_owners", "on", f"must be one of {', '.join(EVENTS)}, got {event!r}",
                                   "e.g. on='failure'")  # fmt: skip
        if topic_arn is not None and not topic_arn.startswith("arn:aws"):
            raise KitArgumentError("notify_owners", "topic_arn", f"is not an SNS topic ARN: {topic_arn!r}",
                                   "leave it unset to use the environment's topic")  # fmt: skip
        self.event = event
        self.topic_arn = topic_arn
        self.aws_conn_id = aws_conn_id
        self.slack_conn_id = slack_conn_id

    def notify(self, context: Any) -> None:
        from airflow.providers.amazon.aws.hooks.sns import SnsHook

        from eksflow.settings import load_settings

        settings = load_settings()
        subject, body, attributes = notification(context, self.event)
        conn_id = self.aws_conn_id or _role_conn_id(context.get("task"))
        SnsHook(aws_conn_id=conn_id, region_name=settings.region).publish_to_target(
            target_arn=self.topic_arn or settings.notification_topic_arn,
            message=body,
            subject=subject,
            message_attributes=attributes,
        )
        if self.slack_conn_id:
            from airflow.providers.http.hooks.http import HttpHook

            HttpHook(method="POST", http_conn_id=self.slack_conn_id).run(
                endpoint=None, json={"text": f"*{subject}*\n{body}"}
            )


def notify_owners(on: str = "failure", **kwargs: Any) -> SnsNotifier:
    """A notifier for ``on_failure_callback`` (``on="failure"``, what ``default_args`` wires for every task) or
    ``on_success_callback`` (``on="success"``, e.g. on a DAG's last task)."""
    return SnsNotifier(on, **kwargs)

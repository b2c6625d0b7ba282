"""DAG owners' notifications (eksflow.kit.notify) against the emulator over HTTP: an SQS queue subscribed to the
environment's topic (seeded like Terraform's, the name from the role model) reads back what the notifier published —
once called as Airflow calls a callback, and once from a failing task in a real `airflow dags test` run, where the
failed try's callback publishes exactly one message naming DAG, task, run, try and log URL."""

from __future__ import annotations

import json
from types import SimpleNamespace
from urllib.parse import quote

import pytest

from eksflow.connections import local_connections
from eksflow.kit import KitArgumentError, default_args, notify_owners
from eksflow.platform import notification_topic_arn
from eksflow.settings import load_settings
from eksflow_dev.emulator.seed import ACCOUNT_ID

REGION = "eu-west-1"


def _subscribed_queue(emulator) -> str:
    """An SQS queue subscribed to the seeded environment's topic; its URL."""
    settings = load_settings(emulator.seeded.settings_env)
    sqs = emulator.client("sqs")
    url = sqs.create_queue(QueueName="owners")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    emulator.client("sns").subscribe(TopicArn=settings.notification_topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return url


def _received(emulator, url: str) -> list[dict]:
    """Every SNS envelope in the queue (the queue is drained; receive is immediate on the emulator)."""
    sqs, envelopes = emulator.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        envelopes += [json.loads(m["Body"]) for m in messages]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        )
    return envelopes


def test_the_settings_topic_is_the_one_the_role_model_names_for_the_env():
    settings = load_settings({"EKSFLOW_ENV": "dev", "EKSFLOW_AWS_ACCOUNT_ID": ACCOUNT_ID, "EKSFLOW_AWS_REGION": REGION})
    assert settings.notification_topic_arn == f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:eksflow-dev-notifications"
    assert settings.notification_topic_arn == notification_topic_arn("dev", REGION, ACCOUNT_ID)


def test_a_failure_callback_publishes_dag_task_run_try_and_log_url_to_the_envs_topic(fresh_emulator, monkeypatch):
    connections = local_connections(fresh_emulator.url, REGION)
    # A task of the default role publishes with its connection, aws_default (here: the emulator's keys).
    connections["AIRFLOW_CONN_AWS_DEFAULT"] = connections["AIRFLOW_CONN_AWS_ECS_RUNNER"]
    for name, value in {**connections, **fresh_emulator.seeded.settings_env}.items():
        monkeypatch.setenv(name, value)
    url = _subscribed_queue(fresh_emulator)
    log_url = "http://airflow/dags/nightly/runs/manual__2026-01-01/tasks/score"
    ti = SimpleNamespace(dag_id="nightly", task_id="score", run_id="manual__2026-01-01", map_index=2, try_number=3,
                         max_tries=3, log_url=log_url)  # fmt: skip
    task = SimpleNamespace(owner="ml-eng", executor_config={})
    notify_owners("failure")({"ti": ti, "task": task, "exception": RuntimeError("model file missing")})
    (envelope,) = _received(fresh_emulator, url)
    assert envelope["Subject"] == "[eksflow local] failure: nightly.score[2]"
    body = envelope["Message"]
    for line in ("DAG: nightly", "Task: score[2]", "Run: manual__2026-01-01", "Try: 3 of 4",
                 f"Log: {ti.log_url}", "Owner: ml-eng", "Error: model file missing"):  # fmt: skip
        assert line in body.splitlines(), (line, body)
    attributes = {name: value["Value"] for name, value in envelope["MessageAttributes"].items()}
    assert attributes == {
        "event": "failure",
        "dag_id": "nightly",
        "task_id": "score",
        "env": "local",
        "owner": "ml-eng",
    }


def test_with_a_slack_connection_the_same_notice_is_posted_to_its_webhook(fresh_emulator, monkeypatch):
    """slack_conn_id: an HTTP connection whose host is the incoming webhook's URL (here a local server standing in
    for Slack, which no emulator provides) gets the subject and body as Slack's {"text": ...} JSON."""
    import http.server
    import threading

    posted: list[tuple[str, dict]] = []

    class Webhook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posted.append((self.path, json.loads(body)))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        connections = local_connections(fresh_emulator.url, REGION)
        connections["AIRFLOW_CONN_AWS_DEFAULT"] = connections["AIRFLOW_CONN_AWS_ECS_RUNNER"]
        webhook = f"http://127.0.0.1:{server.server_port}/services/T0/B0/secret"
        connections["AIRFLOW_CONN_TEAM_SLACK"] = json.dumps({"conn_type": "http", "host": webhook})
        for name, value in {**connections, **fresh_emulator.seeded.settings_env}.items():
            monkeypatch.setenv(name, value)
        ti = SimpleNamespace(dag_id="nightly", task_id="score", run_id="r1", map_index=-1, try_number=1, max_tries=0,
                             log_url="http://airflow/log")  # fmt: skip
        task = SimpleNamespace(owner="ml-eng", executor_config={})
        notify_owners("failure", slack_conn_id="team_slack")({"ti": ti, "task": task, "exception": RuntimeError("x")})
    finally:
        server.shutdown()
    ((path, payload),) = posted
    assert path == "/services/T0/B0/secret"
    assert payload["text"].startswith("*[eksflow local] failure: nightly.score*\n")
    assert "Run: r1" in payload["text"].splitlines()


def test_default_args_notify_owners_of_failures_unless_told_otherwise():
    assert default_args(owner="data-eng")["on_failure_callback"].event == "failure"
    assert default_args(owner="data-eng", on_failure_callback=None)["on_failure_callback"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on": "retry"}, "notify_owners(): argument 'on' must be one of failure, success, got 'retry'"),
        ({"topic_arn": "eksflow-dev-notifications"}, "notify_owners(): argument 'topic_arn' is not an SNS topic ARN"),
    ],
)
def test_a_bad_notifier_argument_is_refused_naming_it(kwargs, message):
    with pytest.raises(KitArgumentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        notify_owners(**kwargs)


FAILING_DAG = """
from datetime import timedelta
from airflow.sdk import DAG
from eksflow.kit import default_args, role_task

with DAG("notify_probe", schedule=None, tags=["eksflow"], doc_md="fails on purpose",
         default_args=default_args(owner="probe-team", retries=1, retry_delay=timedelta(seconds=0))):

    @role_task("ec2-ops")
    def breaks():
        raise RuntimeError("probe failure")

    breaks()
"""


@pytest.mark.slow
def test_a_task_failing_in_a_dag_run_notifies_its_owners_once_after_its_last_try(
    airflow_home, fresh_emulator, tmp_path
):
    """The failure callback `default_args` wires runs in the task's process after the last try (a retry does not
    notify): one message, from the task's role's connection (`aws_ec2_ops`)."""
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "notify_probe.py").write_text(FAILING_DAG)
    url = _subscribed_queue(fresh_emulator)
    env = {
        **local_connections(fresh_emulator.url, REGION),
        **fresh_emulator.seeded.settings_env,
        "AWS_ENDPOINT_URL": fresh_emulator.url,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
    }
    result = airflow_home.run("dags", "test", "notify_probe", extra_env=env, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    (envelope,) = _received(fresh_emulator, url)
    assert envelope["Subject"] == "[eksflow local] failure: notify_probe.breaks", output[-3000:]
    lines = envelope["Message"].splitlines()
    run_line = next(line for line in lines if line.startswith("Run: "))
    run_id = run_line.removeprefix("Run: ")
    assert run_id and run_id in output
    assert {"DAG: notify_probe", "Task: breaks", "Try: 2 of 2", "Owner: probe-team", "Error: probe failure"} <= set(
        lines
    ), lines
    log = next(line for line in lines if line.startswith("Log: ")).removeprefix("Log: ")
    assert log.endswith(f"/dags/notify_probe/runs/{quote(run_id)}/tasks/breaks?try_number=2"), log

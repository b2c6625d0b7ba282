"""The emulator's own control API (``/eksflow/...``, beside moto's ``/moto-api/``) for fault and cost tests:

- ``POST /eksflow/job-seconds`` (body: seconds): how long ECS tasks run, training jobs train and endpoints
  take to create or update (0: instantly). Starts from ``EKSFLOW_EMULATOR_JOB_SECONDS``.
- ``POST /eksflow/faults`` (JSON ``{"kind": "throttle"|"unavailable", "seconds": 10, "services": ["ecs"]}``):
  for that window every matching request is refused as AWS refuses it when throttling (HTTP 400
  ``ThrottlingException``/``Throttling``/``RequestLimitExceeded``, S3 503 ``SlowDown``) or when a service is
  briefly down (HTTP 503). ``services`` empty: all but STS.
- ``GET /eksflow/stats``: AWS calls served per ``service:Action``, the times of rate-limited calls (ECS
  RunTask) and faults injected since the last ``POST /eksflow/stats/reset`` — the polling cost of waits.
- ``POST|GET /eksflow/iam-audit``: IAM evaluated without refusing, denials recorded (eksflow_dev.emulator.audit).
- ``GET /eksflow/ecr-blobs/<account>/<region>/<repository>/<digest>``: an ECR blob, where
  ``GetDownloadUrlForLayer`` points (``ecr``).
- ``GET /eksflow/authorizations``: while IAM is enforced (or audited), every authorization check since the last
  ``POST /eksflow/authorizations/reset`` (at most ``AUTHORIZATION_LOG`` kept): principal, IAM action, resource, the
  request's condition keys and whether it was allowed — what a workload (e.g. a ``terraform plan``) asked for.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from eksflow_dev.emulator import audit, ecr

_CREDENTIAL = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/(?P<service>[^/]+)/")
_JSON_THROTTLE = {"sagemaker": "ThrottlingException", "ecs": "ThrottlingException"}
_QUERY_THROTTLE = {"ec2": "RequestLimitExceeded"}
TIMELINE_CALLS = frozenset({"ecs:RunTask"})  # rate-limited by AWS: the fan-out benchmark reports their peak rate
AUTHORIZATION_LOG = 50_000  # the newest authorization checks kept


@dataclass
class ControlState:
    job_seconds: float = 0.0
    fault_kind: str = ""
    fault_until: float = 0.0
    fault_services: frozenset[str] = frozenset()
    calls: Counter = field(default_factory=Counter)
    timeline: dict[str, list[float]] = field(default_factory=dict)  # call times of TIMELINE_CALLS
    faults_injected: int = 0
    authorizations: deque = field(default_factory=lambda: deque(maxlen=AUTHORIZATION_LOG))
    lock: threading.Lock = field(default_factory=threading.Lock)


STATE = ControlState()


def record_authorization(principal: str, action: str, resource: str, context: dict, *, allowed: bool) -> None:
    """One authorization check of the IAM enforcement (``iam.py``), for ``GET /eksflow/authorizations``."""
    entry = {"principal": principal, "action": action, "resource": resource, "context": context, "allowed": allowed}
    with STATE.lock:
        STATE.authorizations.append(entry)


def request_service_action(environ: dict) -> tuple[str, str]:
    """(signing service, action) of an AWS request; action is "" for REST APIs without one in the request."""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = match["service"] if match else ""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return service, target.rsplit(".", 1)[-1]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return service, query["Action"][0]
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
        action = parse_qs(body.decode(errors="replace")).get("Action", [""])[0]
        return service, action
    return service, ""


def _fault_response(kind: str, service: str, environ: dict) -> tuple[str, list[tuple[str, str]], bytes]:
    if kind == "unavailable":
        status, code, message = "503 Service Unavailable", "ServiceUnavailable", "Service is unavailable"
    elif service == "s3":
        status, code, message = "503 Slow Down", "SlowDown", "Please reduce your request rate."
    else:
        status, message = "400 Bad Request", "Rate exceeded"
        code = _JSON_THROTTLE.get(service) or _QUERY_THROTTLE.get(service) or "Throttling"
    if environ.get("HTTP_X_AMZ_TARGET"):
        body = json.dumps({"__type": code, "message": message}).encode()
        return status, [("Content-Type", "application/x-amz-json-1.1")], body
    if service == "ec2":
        xml = f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors></Response>"
    elif service == "s3":
        xml = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    else:
        error = f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        xml = f"<ErrorResponse>{error}</ErrorResponse>"
    return status, [("Content-Type", "text/xml")], xml.encode()


def _json_reply(start_response, payload: dict, status: str = "200 OK"):
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _control(environ: dict, start_response, set_job_seconds):
    path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
    if path.startswith(ecr.BLOB_PATH) and method == "GET":  # what ECR's pre-signed layer URLs serve
        data = ecr.blob(path)
        if data is None:
            return _json_reply(start_response, {"error": f"no such blob: {path}"}, "404 Not Found")
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(data)))])
        return [data]
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)).decode() if method == "POST" else ""
    try:
        if path == "/eksflow/job-seconds" and method == "POST":
            set_job_seconds(float(body))
            return _json_reply(start_response, {"job_seconds": STATE.job_seconds})
        if path == "/eksflow/faults" and method == "POST":
            spec = json.loads(body)
            if spec.get("kind") not in {"throttle", "unavailable"}:
                raise ValueError("kind must be 'throttle' or 'unavailable'")
            with STATE.lock:
                STATE.fault_kind = spec["kind"]
                STATE.fault_until = time.monotonic() + float(spec.get("seconds", 10))
                STATE.fault_services = frozenset(spec.get("services") or ())
            return _json_reply(start_response, {"kind": STATE.fault_kind, "seconds": float(spec.get("seconds", 10))})
        if path == "/eksflow/stats" and method == "GET":
            with STATE.lock:
                payload = {
                    "calls": dict(STATE.calls),
                    "faults_injected": STATE.faults_injected,
                    "timeline": {key: list(times) for key, times in STATE.timeline.items()},
                }
            return _json_reply(start_response, payload)
        if path == "/eksflow/iam-audit" and method == "POST":
            if body not in {"on", "off"}:
                raise ValueError("body must be 'on' or 'off'")
            audit.switch(body == "on")
            return _json_reply(start_response, {"on": body == "on"})
        if path == "/eksflow/iam-audit" and method == "GET":
            return _json_reply(start_response, {"denials": audit.denials()})
        if path == "/eksflow/authorizations" and method == "GET":
            with STATE.lock:
                return _json_reply(start_response, {"authorizations": list(STATE.authorizations)})
        if path == "/eksflow/authorizations/reset" and method == "POST":
            with STATE.lock:
                STATE.authorizations.clear()
            return _json_reply(start_response, {"reset": True})
        if path == "/eksflow/stats/reset" and method == "POST":
            with STATE.lock:
                STATE.calls.clear()
                STATE.timeline.clear()
                STATE.faults_injected = 0
            return _json_reply(start_response, {"reset": True})
    except (ValueError, TypeError, KeyError) as error:
        return _json_reply(start_response, {"error": str(error)}, "400 Bad Request")
    return _json_reply(start_response, {"error": f"no such control endpoint: {method} {path}"}, "404 Not Found")


def middleware(app_call, set_job_seconds):
    """Wrap the moto WSGI app: control endpoints, fault windows, call counting."""

    def call(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/eksflow/"):
            return _control(environ, start_response, set_job_seconds)
        service, action = request_service_action(environ)
        if service:
            key = f"{service}:{action}" if action else service
            with STATE.lock:
                STATE.calls[key] += 1
                if key in TIMELINE_CALLS:
                    STATE.timeline.setdefault(key, []).append(time.time())
                faulty = (
                    STATE.fault_kind
                    and time.monotonic() < STATE.fault_until
                    and service != "sts"
                    and (not STATE.fault_services or service in STATE.fault_services)
                )
                if faulty:
                    STATE.faults_injected += 1
            if faulty:
                status, headers, body = _fault_response(STATE.fault_kind, service, environ)
                start_response(status, [*headers, ("Content-Length", str(len(body)))])
                return [body]
        return app_call(self, environ, start_response)

    return call


def control(emulator_url: str, path: str, body: str | None = None) -> dict:
    """Call the control API of a running emulator: GET without a body, POST with one."""
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - the local emulator
        f"{emulator_url}/eksflow/{path}",
        data=None if body is None else body.encode(),
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


def set_iam_enforcement(emulator_url: str, on: bool) -> None:
    """moto's own switch (``/moto-api/reset-auth``): body 0 = check every request from now on; inf = never."""
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - the local emulator
        f"{emulator_url}/moto-api/reset-auth",
        data=b"0" if on else b"inf",
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=30).close()  # noqa: S310


ADMINISTRATOR = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def bootstrap_admin(emulator_url: str, user: str, region: str) -> dict[str, str]:
    """An administrator's access key (IAM user, inline Allow *:*), made while IAM is not yet enforced: the
    operator's side (Terraform, tests, the shell of `make up`) keeps full access once the emulator enforces IAM."""
    from eksflow_dev.emulator.seed import emulator_client

    iam = emulator_client(emulator_url, "iam", region)
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="administrator", PolicyDocument=json.dumps(ADMINISTRATOR))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}

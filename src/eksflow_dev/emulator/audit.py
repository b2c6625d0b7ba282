"""IAM audit mode: with enforcement off, every request signed by a known principal is still evaluated against
its policies (Conditions included), and each would-be denial is recorded instead of refused — with the
``X-Eksflow-Task`` header the caller may add (``eksflow check``'s dry runs name the task that made the call), so
one run finds every action a DAG's tasks need beyond their roles' policies.

Control API (eksflow_dev.emulator.control): ``POST /eksflow/iam-audit`` (body ``on``/``off``; switching on clears
the record), ``GET /eksflow/iam-audit`` (the denials, in order, without duplicates).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

TASK_HEADER = "X-Eksflow-Task"


@dataclass
class AuditState:
    on: bool = False
    denials: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


STATE = AuditState()


def switch(on: bool) -> None:
    with STATE.lock:
        STATE.on = on
        if on:
            STATE.denials.clear()


def record(principal: str, action: str, resource: str, task: str) -> None:
    denial = {"principal": principal, "action": action, "resource": resource, "task": task}
    with STATE.lock:
        if denial not in STATE.denials:
            STATE.denials.append(denial)


def denials() -> list[dict[str, str]]:
    with STATE.lock:
        return list(STATE.denials)

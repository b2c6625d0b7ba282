"""IAM identity-policy evaluation for one request, without an emulator: the static policy tests (test_terraform.py,
test_terraform_apply.py) read rendered or applied policies with it.

``allows(policy, action, resource, context)``: an explicit Deny wins, else an Allow whose Action, Resource and
Condition all match. Conditions are evaluated by the emulator's evaluator (src/eksflow_dev/emulator/conditions.py,
the one home of AWS's operator semantics), which raises for what it cannot read — so a policy this cannot read is
never reported as allowed or denied. ``context`` holds the request's condition keys (build them with
``resource_tags``/``request_tags`` from that module); a key the request does not carry is absent.
"""

from __future__ import annotations

from collections.abc import Sequence

from eksflow_dev.emulator.conditions import Context, conditions_hold, wildcard


def _as_list(value) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


def _matches(patterns, value: str, *, ignore_case: bool = False) -> bool:
    return any(wildcard(pattern, value, ignore_case=ignore_case) for pattern in _as_list(patterns))


def _statement_applies(statement: dict, action: str, resource: str, context: Context) -> bool:
    if "Action" in statement:
        if not _matches(statement["Action"], action, ignore_case=True):  # action names ignore case
            return False
    elif _matches(statement["NotAction"], action, ignore_case=True):
        return False
    if "Resource" in statement:
        if not _matches(statement["Resource"], resource):
            return False
    elif _matches(statement.get("NotResource", []), resource):
        return False
    return conditions_hold(statement.get("Condition") or {}, context)


def allows(policies: dict | Sequence[dict], action: str, resource: str, context: Context | None = None) -> bool:
    """Whether the identity policies (one document or several of one role) allow the request."""
    documents = [policies] if isinstance(policies, dict) else list(policies)
    statements = [s for document in documents for s in _as_list(document["Statement"])]
    applying = [s for s in statements if _statement_applies(s, action, resource, context or {})]
    if any(s["Effect"] == "Deny" for s in applying):
        return False
    return any(s["Effect"] == "Allow" for s in applying)

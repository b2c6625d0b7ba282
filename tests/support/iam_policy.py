"""IAM identity-policy evaluation for one request, Conditions included — what moto (and so the emulator) does not
do: it ignores the tag and tag-key conditions that keep housekeeping to its own environment's resources.

``allows(policy, action, resource, context)``: an explicit Deny wins, else an Allow whose Action, Resource and
Condition all match. ``context`` holds the request's condition keys (``aws:ResourceTag/<key>``,
``aws:RequestTag/<key>``, ``aws:TagKeys``, ...); a key the request does not carry is absent. Supported operators:
the String family (Equals, NotEquals, Like, NotLike, each with IgnoreCase where IAM has it), ArnEquals/ArnLike,
Bool, Null; the ``IfExists`` suffix; the ``ForAllValues:``/``ForAnyValue:`` set prefixes. Any other operator
raises, so a policy this cannot read is never reported as allowed or denied.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence

ContextValue = str | Sequence[str]


def _as_list(value) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


def _wildcard(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    # IAM wildcards: * and ? only ([ has no meaning), case-sensitive unless the operator says otherwise.
    escaped = pattern.replace("[", "[[]")
    if ignore_case:
        return fnmatch.fnmatchcase(value.lower(), escaped.lower())
    return fnmatch.fnmatchcase(value, escaped)


def _single(base: str, expected: list[str], actual: str) -> bool:
    """One request value against the condition's values (any of them)."""
    if base in {"StringEquals", "ArnEquals"}:
        return actual in expected
    if base == "StringEqualsIgnoreCase":
        return actual.lower() in {value.lower() for value in expected}
    if base in {"StringLike", "ArnLike"}:
        return any(_wildcard(value, actual) for value in expected)
    if base == "Bool":
        return actual.lower() in {str(value).lower() for value in expected}
    raise ValueError(f"condition operator {base!r} is not supported by this evaluator")


_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _condition_holds(operator: str, key: str, expected, context: Mapping[str, ContextValue]) -> bool:
    values = {k.lower(): v for k, v in context.items()}
    present = key.lower() in values
    actual = _as_list(values[key.lower()]) if present else []
    expected = [str(value) for value in _as_list(expected)]
    set_operator, _, operator = operator.rpartition(":")
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    if base == "Null":
        return (not present) == (expected[0].lower() == "true")
    if not present:
        # ForAllValues holds for an empty set, ForAnyValue does not; otherwise negated operators and ...IfExists
        # match a key the request lacks.
        if set_operator:
            return set_operator == "ForAllValues"
        return if_exists or base in _NEGATED
    negated = base in _NEGATED
    positive = _NEGATED.get(base, base)
    matches = [_single(positive, expected, value) for value in actual]
    if set_operator == "ForAllValues":
        return all(not m for m in matches) if negated else all(matches)
    if set_operator == "ForAnyValue":
        return any(not m for m in matches) if negated else any(matches)
    if set_operator:
        raise ValueError(f"set operator {set_operator!r} is not supported")
    if len(actual) != 1:
        raise ValueError(f"{key} carries several values: use a ForAllValues:/ForAnyValue: operator")
    return not matches[0] if negated else matches[0]


def _statement_applies(statement: dict, action: str, resource: str, context: Mapping[str, ContextValue]) -> bool:
    if "Action" in statement:
        if not any(_wildcard(pattern, action, ignore_case=True) for pattern in _as_list(statement["Action"])):
            return False
    elif any(_wildcard(pattern, action, ignore_case=True) for pattern in _as_list(statement["NotAction"])):
        return False
    if "Resource" in statement:
        if not any(_wildcard(pattern, resource) for pattern in _as_list(statement["Resource"])):
            return False
    elif any(_wildcard(pattern, resource) for pattern in _as_list(statement.get("NotResource", []))):
        return False
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, expected in keys.items():
            if not _condition_holds(operator, key, expected, context):
                return False
    return True


def allows(
    policies: dict | Sequence[dict], action: str, resource: str, context: Mapping[str, ContextValue] | None = None
) -> bool:
    """Whether the identity policies (one document or several of one role) allow the request."""
    documents = [policies] if isinstance(policies, dict) else list(policies)
    statements = [s for document in documents for s in _as_list(document["Statement"])]
    applying = [s for s in statements if _statement_applies(s, action, resource, context or {})]
    if any(s["Effect"] == "Deny" for s in applying):
        return False
    return any(s["Effect"] == "Allow" for s in applying)


def resource_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The condition keys of a resource carrying these tags."""
    return {f"aws:ResourceTag/{key}": value for key, value in tags.items()}


def request_tags(tags: Mapping[str, str]) -> dict[str, ContextValue]:
    """The condition keys of a request that sets these tags (AddTags, or Create* with Tags)."""
    return {"aws:TagKeys": list(tags), **{f"aws:RequestTag/{key}": value for key, value in tags.items()}}

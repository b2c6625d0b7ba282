"""IAM policy Conditions, evaluated as AWS documents it ("IAM JSON policy elements: Condition operators") — the one
evaluator of the project: the emulator's IAM enforcement (``iam.py``) and the static policy tests
(tests/support/iam_policy.py) both use it.

``conditions_hold(conditions, context)``: whether every operator, and under it every key, of a statement's
``Condition`` block holds for the request's context (condition key -> value, or list of values for a multivalued
key such as ``aws:TagKeys``; key names compare ignoring case). A key the request does not carry is absent: a
positive operator then fails, negated operators (``StringNotEquals``, ``ArnNotLike``, ...) and ``...IfExists`` hold,
``Null`` tests exactly that, ``ForAllValues:`` holds and ``ForAnyValue:`` fails.

Operators known here: ``StringEquals``, ``StringNotEquals``, ``StringEqualsIgnoreCase``,
``StringNotEqualsIgnoreCase``, ``StringLike``, ``StringNotLike`` (``*``/``?`` wildcards, case-sensitive),
``ArnEquals``/``ArnLike`` (the same in IAM: each of the six colon-separated parts matched on its own, wildcards
allowed, case-sensitive) and their ``Not`` forms, ``Bool``, ``Null``; each with the ``IfExists`` suffix and the
``ForAllValues:``/``ForAnyValue:`` prefixes. Anything else — another operator (Numeric, Date, IpAddress, ...), a
policy variable (``${...}``), a multivalued key under an operator without set prefix — raises
``UnsupportedCondition``: the static tests then fail instead of answering, and ``conditions_apply`` (the
emulator's) fails closed.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping, Sequence

log = logging.getLogger(__name__)

ContextValue = str | Sequence[str]
Context = Mapping[str, ContextValue]

_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}
_POSITIVE = frozenset({"StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike", "Bool"})
_SET_OPERATORS = frozenset({"", "ForAllValues", "ForAnyValue"})


class UnsupportedCondition(ValueError):
    """A condition this evaluator cannot read; it is never answered as holding or not."""


def _as_list(value) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


def wildcard(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcards: ``*`` and ``?`` only (``[`` has no meaning), case-sensitive unless asked otherwise."""
    escaped = pattern.replace("[", "[[]")
    if ignore_case:
        return fnmatch.fnmatchcase(value.lower(), escaped.lower())
    return fnmatch.fnmatchcase(value, escaped)


def _arn_like(pattern: str, arn: str) -> bool:
    # A wildcard never spans the colons that separate partition, service, Region, account and resource.
    pattern_parts, arn_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(pattern_parts) != 6 or len(arn_parts) != 6:
        return False
    return all(wildcard(p, a) for p, a in zip(pattern_parts, arn_parts, strict=True))


def value_matches(operator: str, expected: Sequence[str], actual: str) -> bool:
    """One request value against the condition's values (any of them), for a positive base operator."""
    if operator == "StringEquals":
        return actual in expected
    if operator == "StringEqualsIgnoreCase":
        return actual.lower() in {value.lower() for value in expected}
    if operator == "StringLike":
        return any(wildcard(value, actual) for value in expected)
    if operator in {"ArnEquals", "ArnLike"}:
        return any(_arn_like(value, actual) for value in expected)
    if operator == "Bool":
        return actual.lower() in {value.lower() for value in expected}
    raise UnsupportedCondition(f"condition operator {operator!r} is not supported")


def condition_holds(operator: str, key: str, expected, context: Context) -> bool:
    """One key under one operator (``"ForAllValues:StringEquals"``, ``"aws:TagKeys"``, its policy values)."""
    set_operator, _, name = operator.rpartition(":")
    base = name.removesuffix("IfExists")
    if set_operator not in _SET_OPERATORS or (base not in _POSITIVE and base not in _NEGATED and base != "Null"):
        raise UnsupportedCondition(f"condition operator {operator!r} is not supported")
    expected = [str(value).lower() if isinstance(value, bool) else str(value) for value in _as_list(expected)]
    if not expected or any("${" in value for value in expected):
        raise UnsupportedCondition(f"a condition without values or with policy variables ({key}: {expected})")
    values = {k.lower(): v for k, v in context.items()}
    present = key.lower() in values
    if base == "Null":
        return (not present) == (expected[0].lower() == "true")
    if not present:
        if name.endswith("IfExists"):
            return True
        if set_operator:
            return set_operator == "ForAllValues"  # holds for the empty set
        return base in _NEGATED
    actual = [str(value) for value in _as_list(values[key.lower()])]
    negated = base in _NEGATED
    matches = [value_matches(_NEGATED.get(base, base), expected, value) for value in actual]
    if set_operator == "ForAllValues":
        return all(not m for m in matches) if negated else all(matches)
    if set_operator == "ForAnyValue":
        return any(not m for m in matches) if negated else any(matches)
    if len(actual) != 1:
        raise UnsupportedCondition(f"{key} carries several values: use a ForAllValues:/ForAnyValue: operator")
    return not matches[0] if negated else matches[0]


def _each(conditions) -> list[tuple[str, str, object]]:
    if not isinstance(conditions, Mapping):
        raise UnsupportedCondition(f"a Condition block is an object, not {conditions!r}")
    items = []
    for operator, keys in conditions.items():
        if not isinstance(keys, Mapping):
            raise UnsupportedCondition(f"{operator} maps condition keys to values, not {keys!r}")
        items += [(operator, key, expected) for key, expected in keys.items()]
    return items


def conditions_hold(conditions, context: Context) -> bool:
    """Whether a statement's whole ``Condition`` block holds (every operator, every key); raises
    ``UnsupportedCondition`` if any part of it cannot be read here, even when another part fails."""
    results = [condition_holds(operator, key, expected, context) for operator, key, expected in _each(conditions)]
    return all(results)


# The condition keys the emulator computes for a request (eksflow_dev.emulator.condition_keys); any other key
# would read as absent although AWS sets it (aws:PrincipalTag, aws:RequestedRegion, ...): it is not evaluated.
COMPUTED_KEYS = frozenset(
    {
        "aws:securetransport",
        "aws:tagkeys",
        "sagemaker:taggingaction",
        "sagemaker:modelarn",
        "iam:passedtoservice",
        "iam:policyarn",
        "ecs:cluster",
        "ecs:createaction",
        "s3:prefix",
    }
)
COMPUTED_KEY_PREFIXES = ("aws:resourcetag/", "aws:requesttag/")


def _computed(key: str) -> None:
    lowered = key.lower()
    if lowered not in COMPUTED_KEYS and not lowered.startswith(COMPUTED_KEY_PREFIXES):
        raise UnsupportedCondition(f"the emulator does not compute the condition key {key}")


def conditions_apply(statement: Mapping, context: Context) -> bool:
    """Whether the statement's Conditions let it apply to the request, failing closed: a condition this evaluator
    cannot read, or on a key the emulator does not compute, makes an Allow not apply and counts as holding for a
    Deny (it is logged)."""
    deny = statement.get("Effect") == "Deny"
    try:
        items = _each(statement.get("Condition") or {})
    except UnsupportedCondition as error:
        log.warning("IAM condition not evaluated (%s): the %s statement %s", error, *_failing(statement, deny))
        return deny
    for operator, key, expected in items:
        try:
            _computed(key)
            if not condition_holds(operator, key, expected, context):
                return False
        except UnsupportedCondition as error:
            log.warning("IAM condition not evaluated (%s): the %s statement %s", error, *_failing(statement, deny))
            if not deny:
                return False
    return True


def _failing(statement: Mapping, deny: bool) -> tuple[str, str]:
    sid = statement.get("Sid") or "without Sid"
    return (f"Deny {sid}", "applies (fail closed)") if deny else (f"Allow {sid}", "does not apply (fail closed)")


def resource_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The condition keys of a resource carrying these tags."""
    return {f"aws:ResourceTag/{key}": value for key, value in tags.items()}


def request_tags(tags: Mapping[str, str]) -> dict[str, ContextValue]:
    """The condition keys of a request that sets these tags (AddTags, or Create* with Tags)."""
    if not tags:
        return {}
    return {"aws:TagKeys": list(tags), **{f"aws:RequestTag/{key}": value for key, value in tags.items()}}

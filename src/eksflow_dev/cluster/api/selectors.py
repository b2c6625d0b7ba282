"""Label and field selectors, in the query-string form (kubectl -l, ?labelSelector=) and the object form
(matchLabels/matchExpressions) that Deployments, Jobs, Services and PodDisruptionBudgets carry."""

from __future__ import annotations

import re
from collections.abc import Callable

Predicate = Callable[[dict], bool]

_SET_EXPR = re.compile(r"^\s*(!?)([A-Za-z0-9_./-]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")


class SelectorError(ValueError):
    pass


def _split(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return parts


def parse_labels(text: str | None) -> Callable[[dict[str, str]], bool]:
    """A label selector string -> predicate over a labels dict."""
    if not text:
        return lambda labels: True
    tests: list[Callable[[dict[str, str]], bool]] = []
    for part in _split(text):
        part = part.strip()
        for op in ("!=", "==", "="):
            if op in part and "(" not in part:
                key, value = (s.strip() for s in part.split(op, 1))
                if op == "!=":
                    tests.append(lambda labels, k=key, v=value: labels.get(k) != v)
                else:
                    tests.append(lambda labels, k=key, v=value: labels.get(k) == v)
                break
        else:
            match = _SET_EXPR.match(part)
            if not match:
                raise SelectorError(f"unable to parse requirement: {part!r}")
            negate, key, op, values = match.groups()
            if op:
                allowed = {v.strip() for v in values.split(",") if v.strip()}
                if op == "in":
                    tests.append(lambda labels, k=key, a=allowed: labels.get(k) in a)
                else:
                    tests.append(lambda labels, k=key, a=allowed: labels.get(k) not in a)
            elif negate:
                tests.append(lambda labels, k=key: k not in labels)
            else:
                tests.append(lambda labels, k=key: k in labels)
    return lambda labels: all(test(labels) for test in tests)


def match_selector(selector: dict | None, labels: dict[str, str]) -> bool:
    """A LabelSelector object (matchLabels + matchExpressions). An empty selector matches everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], set(expr.get("values") or [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def selector_string(selector: dict) -> str:
    """matchLabels/matchExpressions -> the query-string form (e.g. status.selector of a scale)."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr["operator"], expr["key"], ",".join(expr.get("values") or [])
        parts.append(
            {
                "In": f"{key} in ({values})",
                "NotIn": f"{key} notin ({values})",
                "Exists": key,
                "DoesNotExist": f"!{key}",
            }[op]
        )
    return ",".join(parts)


def _field(obj: dict, path: str):
    value: object = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def parse_fields(text: str | None) -> Predicate:
    """A field selector (metadata.name=x, status.phase!=Running, involvedObject.uid=...) -> predicate."""
    if not text:
        return lambda obj: True
    tests: list[Predicate] = []
    for part in _split(text):
        for op in ("!=", "==", "="):
            if op in part:
                path, value = (s.strip() for s in part.split(op, 1))
                if op == "!=":
                    tests.append(lambda obj, p=path, v=value: str(_field(obj, p) or "") != v)
                else:
                    tests.append(lambda obj, p=path, v=value: str(_field(obj, p) or "") == v)
                break
        else:
            raise SelectorError(f"invalid field selector: {part!r}")
    return lambda obj: all(test(obj) for test in tests)

"""ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1) as kube-apiserver evaluates it, with CEL from
cel-python (module celpy): each binding whose policy's matchConstraints and own matchResources select the
request, the policy's matchConditions, variables and validations over `object`, `oldObject`, `request`,
`namespaceObject` and `variables` (`params` is null: paramKind is not supported). A false validation of a binding
with the Deny action refuses the request worded as kube-apiserver words it.

The CEL is the common language (macros has/all/exists/exists_one/map/filter, `in`, size, string functions,
matches, ternaries) plus what Kubernetes adds that the chart's policy uses: `quantity()` with asInteger,
isGreaterThan, isLessThan, compareTo, and the list library's sum(). No type checking: an expression kube-apiserver
would refuse at creation for its types may still run here (docs/local-cluster.md)."""

from __future__ import annotations

import re
from fractions import Fraction

import celpy
from celpy import celtypes
from celpy.evaluation import CELEvalError

from eksflow_dev.cluster.api.resources import BY_PATH, Resource
from eksflow_dev.cluster.api.selectors import match_selector
from eksflow_dev.cluster.api.store import ApiError, Store

GROUP = "admissionregistration.k8s.io"
_ENV = celpy.Environment()
_COMPILED: dict[str, object] = {}

# ---------------------------------------------------------------------------------------------- Kubernetes CEL
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
_SUFFIX = {
    "": Fraction(1),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    **{s: Fraction(1024**i) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"), start=1)},
}


class Quantity:
    """A Kubernetes resource quantity (k8s.io/apimachinery resource.Quantity), exact."""

    def __init__(self, text: str):
        match = _QUANTITY.match(str(text))
        if not match:
            raise ValueError(f"quantities must match the regular expression '{_QUANTITY.pattern}'")
        number, suffix = match.group(1), match.group(2) or ""
        scale = Fraction(10) ** int(suffix[1:]) if suffix[:1] in ("e", "E") else _SUFFIX[suffix]
        self.value = Fraction(number) * scale


def _quantity(text):
    try:
        return Quantity(str(text))
    except ValueError as error:
        return CELEvalError(str(error), ValueError, None)


def _as_integer(q):
    if not isinstance(q, Quantity) or q.value.denominator != 1 or abs(q.value) >= 2**63:
        return CELEvalError("cannot convert value to integer", ValueError, None)
    return celtypes.IntType(int(q.value))


def _compare(a, b) -> int:
    return (a.value > b.value) - (a.value < b.value)


def _sum(items):
    if all(isinstance(i, celtypes.IntType) for i in items):
        return celtypes.IntType(sum(int(i) for i in items))
    if all(isinstance(i, Quantity) for i in items):
        total = Quantity("0")
        total.value = sum((i.value for i in items), Fraction(0))
        return total
    return celtypes.DoubleType(sum(float(i) for i in items))


FUNCTIONS = {
    "quantity": _quantity,
    "asInteger": _as_integer,
    "isGreaterThan": lambda a, b: celtypes.BoolType(_compare(a, b) > 0),
    "isLessThan": lambda a, b: celtypes.BoolType(_compare(a, b) < 0),
    "compareTo": lambda a, b: celtypes.IntType(_compare(a, b)),
    "sum": _sum,
}


def compile_expression(expression: str):
    """The program of an expression (cached); celpy.CELParseError for one CEL cannot parse."""
    program = _COMPILED.get(expression)
    if program is None:
        program = _ENV.program(_ENV.compile(expression), functions=FUNCTIONS)
        _COMPILED[expression] = program
    return program


def evaluate(expression: str, activation: dict):
    """The expression's value, or the CELEvalError it ended in."""
    try:
        return compile_expression(expression).evaluate(activation)
    except CELEvalError as error:
        return error


# ---------------------------------------------------------------------------------------------- validation on write
def check_policy(obj: dict) -> None:
    """What kube-apiserver checks when a policy is written: every expression compiles."""
    spec = obj.get("spec") or {}
    where = []
    for field in ("matchConditions", "variables", "validations"):
        for i, item in enumerate(spec.get(field) or []):
            where.append((f"spec.{field}[{i}].expression", item.get("expression")))
            if item.get("messageExpression"):
                where.append((f"spec.{field}[{i}].messageExpression", item["messageExpression"]))
    for path, expression in where:
        try:
            compile_expression(expression or "")
        except Exception as error:  # celpy raises its parser's errors
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ApiError(
                422,
                "Invalid",
                f'ValidatingAdmissionPolicy.admissionregistration.k8s.io "{obj["metadata"].get("name")}" is invalid: '
                f"{path}: Invalid value: {expression!r}: compilation failed: {first}",
            ) from None


# ---------------------------------------------------------------------------------------------- matching
def _rule_matches(rule: dict, resource: Resource, operation: str) -> bool:
    def has(values, value):
        return "*" in (values or []) or value in (values or [])

    resources = rule.get("resources") or []
    scope = rule.get("scope") or "*"
    return (
        has(rule.get("apiGroups"), resource.group)
        and has(rule.get("apiVersions"), resource.version)
        and has(rule.get("operations"), operation)
        and ("*" in resources or resource.plural in resources)
        and (scope == "*" or scope == ("Namespaced" if resource.namespaced else "Cluster"))
    )


def _selects(match: dict | None, resource: Resource, operation: str, obj: dict, old: dict | None, ns: dict | None):
    """A MatchResources (policy matchConstraints or binding matchResources) selects this request."""
    if match is None:
        return True
    rules = match.get("resourceRules")
    if rules is not None and not any(_rule_matches(r, resource, operation) for r in rules):
        return False
    if any(_rule_matches(r, resource, operation) for r in match.get("excludeResourceRules") or []):
        return False
    selector = match.get("namespaceSelector")
    namespaced = resource.namespaced and ns is not None
    if selector is not None and namespaced and not match_selector(selector, ns["metadata"].get("labels") or {}):
        return False
    selector = match.get("objectSelector")
    if selector is not None:
        labelled = [o for o in (obj, old) if o is not None]
        if not any(match_selector(selector, o.get("metadata", {}).get("labels") or {}) for o in labelled):
            return False
    return True


# ---------------------------------------------------------------------------------------------- admission
def admit(
    store: Store,
    resource: Resource,
    obj: dict,
    old: dict | None,
    *,
    operation: str,
    username: str,
    groups: tuple[str, ...] = (),
    dry_run: bool = False,
) -> None:
    """Raise the ApiError kube-apiserver answers with when a Deny binding's policy refuses this write."""
    policies_resource = BY_PATH[(GROUP, "v1", "validatingadmissionpolicies")]
    bindings_resource = BY_PATH[(GROUP, "v1", "validatingadmissionpolicybindings")]
    bindings, _ = store.list(bindings_resource)
    if not bindings:
        return
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace", "") if resource.namespaced else ""
    ns = store.find(BY_PATH[("", "v1", "namespaces")], "", namespace) if namespace else None
    request = {
        "uid": "",
        "kind": {"group": resource.group, "version": resource.version, "kind": resource.kind},
        "resource": {"group": resource.group, "version": resource.version, "resource": resource.plural},
        "name": meta.get("name", ""),
        "namespace": namespace,
        "operation": operation,
        "userInfo": {"username": username, "groups": list(groups)},
        "dryRun": dry_run,
    }
    activation = {
        "object": celpy.json_to_cel(obj),
        "oldObject": celpy.json_to_cel(old),
        "request": celpy.json_to_cel(request),
        "params": celpy.json_to_cel(None),
        "namespaceObject": celpy.json_to_cel(ns),
    }
    for binding in sorted(bindings, key=lambda b: b["metadata"]["name"]):
        spec = binding.get("spec") or {}
        policy = store.find(policies_resource, "", spec.get("policyName", ""))
        if policy is None or "Deny" not in (spec.get("validationActions") or []):
            continue
        pspec = policy.get("spec") or {}
        if not _selects(pspec.get("matchConstraints"), resource, operation, obj, old, ns):
            continue
        if not _selects(spec.get("matchResources"), resource, operation, obj, old, ns):
            continue
        denial = _evaluate_policy(pspec, dict(activation))
        if denial is None:
            continue
        message, reason = denial
        name = meta.get("name") or meta.get("generateName") or ""
        text = (
            f"ValidatingAdmissionPolicy '{policy['metadata']['name']}' with binding "
            f"'{binding['metadata']['name']}' denied request: {message}"
        )
        code = {"Unauthorized": 401, "Forbidden": 403, "Invalid": 422, "RequestEntityTooLarge": 413}.get(reason, 422)
        raise ApiError(
            code,
            reason,
            f'{resource.plural} "{name}" is forbidden: {text}',
            {"name": name, "kind": resource.plural, "causes": [{"message": text}]},
        )


def _evaluate_policy(spec: dict, activation: dict) -> tuple[str, str] | None:
    """(message, reason) of the first validation that fails, or None. Errors follow failurePolicy (Fail)."""
    fail = (spec.get("failurePolicy") or "Fail") == "Fail"
    for condition in spec.get("matchConditions") or []:
        result = evaluate(condition["expression"], activation)
        if isinstance(result, CELEvalError):
            if fail:
                return f"failed to evaluate match condition {condition.get('name')!r}: {result.args[0]}", "Invalid"
            return None
        if result is not True and result != celtypes.BoolType(True):
            return None
    variables: dict = {}
    for variable in spec.get("variables") or []:
        activation["variables"] = celtypes.MapType(variables)
        variables[celtypes.StringType(variable["name"])] = evaluate(variable["expression"], activation)
    activation["variables"] = celtypes.MapType(variables)
    for validation in spec.get("validations") or []:
        expression = validation["expression"]
        result = evaluate(expression, activation)
        if isinstance(result, CELEvalError):
            if fail:
                return f"expression '{expression}' resulted in error: {result.args[0]}", "Invalid"
            continue
        if result == celtypes.BoolType(True):
            continue
        message = validation.get("message") or f"failed expression: {expression}"
        if validation.get("messageExpression"):
            computed = evaluate(validation["messageExpression"], activation)
            if isinstance(computed, str) and computed.strip():
                message = str(computed)
        return message, validation.get("reason") or "Invalid"
    return None

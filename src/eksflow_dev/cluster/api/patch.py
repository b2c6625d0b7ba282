"""PATCH bodies: JSON merge patch (RFC 7386), strategic merge patch (lists merged by their Kubernetes merge
keys, directives honoured where clients send them), JSON patch (RFC 6902), and server-side apply for one
field manager at a time (what helm and kubectl send)."""

from __future__ import annotations

import copy

# Lists that strategic merge patch merges element by element, by this key (the Kubernetes types' patchMergeKey).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "env": "name",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "tolerations": None,  # atomic in the API, replaced whole
    "ownerReferences": "uid",
    "conditions": "type",
    "finalizers": None,
    "hostAliases": "ip",
}


class PatchError(ValueError):
    pass


def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _merge_list(key: str, target: list, patch: list) -> list:
    merge_key = MERGE_KEYS.get(key)
    if key == "ports" and any(isinstance(i, dict) and "containerPort" not in i and "port" in i for i in patch):
        merge_key = "port"  # ServicePort's merge key (ContainerPort's is containerPort)
    if merge_key is None or not all(isinstance(i, dict) for i in patch):
        return [strategic_merge(None, i, "") for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    result = [copy.deepcopy(i) for i in target or []]
    for item in patch:
        directive = item.get("$patch")
        if directive == "replace":
            return [strategic_merge(None, {k: v for k, v in i.items() if k != "$patch"}, "") for i in patch]
        matches = [i for i, existing in enumerate(result) if existing.get(merge_key) == item.get(merge_key)]
        if directive == "delete":
            result = [e for i, e in enumerate(result) if i not in matches]
        elif matches:
            result[matches[0]] = strategic_merge(result[matches[0]], item, "")
        else:
            result.append(strategic_merge(None, item, ""))
    return result


def strategic_merge(target, patch, key: str = ""):
    """Strategic merge patch, with Kubernetes' merge keys for the lists the chart's objects carry."""
    if isinstance(patch, list):
        return _merge_list(key, target if isinstance(target, list) else [], patch)
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if name.startswith(("$setElementOrder/", "$retainKeys", "$deleteFromPrimitiveList/", "$patch")):
            continue
        if value is None:
            result.pop(name, None)
        else:
            result[name] = strategic_merge(result.get(name), value, name)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"JSON patch path {path!r} must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(target, operations: list[dict]):
    """RFC 6902 (add, remove, replace, test, move, copy)."""
    doc = copy.deepcopy(target)

    def parent(parts):
        node = doc
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def get(parts):
        node = doc
        for part in parts:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    for op in operations:
        kind, parts = op.get("op"), _pointer(op.get("path", ""))
        try:
            if kind == "test":
                if get(parts) != op.get("value"):
                    raise PatchError(f"test failed at {op['path']}")
                continue
            if kind in ("move", "copy"):
                value = copy.deepcopy(get(_pointer(op["from"])))
                if kind == "move":
                    src = _pointer(op["from"])
                    holder = parent(src)
                    holder.pop(int(src[-1]) if isinstance(holder, list) else src[-1])
                kind, op = "add", {**op, "value": value}
            holder = parent(parts)
            last = parts[-1]
            if kind == "add":
                if isinstance(holder, list):
                    holder.insert(len(holder) if last == "-" else int(last), copy.deepcopy(op["value"]))
                else:
                    holder[last] = copy.deepcopy(op["value"])
            elif kind == "remove":
                holder.pop(int(last) if isinstance(holder, list) else last)
            elif kind == "replace":
                if isinstance(holder, list):
                    holder[int(last)] = copy.deepcopy(op["value"])
                else:
                    if last not in holder:
                        raise PatchError(f"replace: {op['path']} does not exist")
                    holder[last] = copy.deepcopy(op["value"])
            else:
                raise PatchError(f"unknown JSON patch op {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError) as error:
            raise PatchError(f"JSON patch {op}: {error}") from None
    return doc


def _remove_unowned(current, previous, applied):
    """Drop what `previous` (this manager's last apply) set and `applied` no longer sets."""
    if not isinstance(current, dict) or not isinstance(previous, dict):
        return current
    result = dict(current)
    for key, old in previous.items():
        if key not in (applied or {}):
            result.pop(key, None)
        elif isinstance(old, dict) and isinstance(applied.get(key), dict):
            result[key] = _remove_unowned(result.get(key), old, applied[key])
    return result


def _apply_merge(current, applied):
    if not isinstance(applied, dict) or not isinstance(current, dict):
        return copy.deepcopy(applied)
    result = dict(current)
    for key, value in applied.items():
        result[key] = _apply_merge(current.get(key), value)
    return result


def server_side_apply(current: dict, applied: dict, previous: dict | None) -> dict:
    """Apply `applied` for one field manager whose last applied configuration was `previous`: fields it set
    before and dropped now are removed, maps merge, lists are replaced whole (the local API server does not
    track per-field ownership across managers; see docs/local-cluster.md)."""
    base = _remove_unowned(current, previous or {}, applied)
    return _apply_merge(base, applied)

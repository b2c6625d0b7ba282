"""Kubernetes protobuf request bodies, for the few kinds Go clients write with their typed (protobuf)
clients: helm's release Secrets, `kubectl create namespace|configmap|secret`, `kubectl auth can-i`, delete
options. The local API server answers in JSON, which those clients accept; it only has to read these."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

MAGIC = b"k8s\x00"

TIME = {1: ("seconds", "int"), 2: ("nanos", "int")}
OWNER_REFERENCE = {
    1: ("kind", "string"),
    3: ("name", "string"),
    4: ("uid", "string"),
    5: ("apiVersion", "string"),
    6: ("controller", "bool"),
    7: ("blockOwnerDeletion", "bool"),
}
OBJECT_META = {
    1: ("name", "string"),
    2: ("generateName", "string"),
    3: ("namespace", "string"),
    4: ("selfLink", "string"),
    5: ("uid", "string"),
    6: ("resourceVersion", "string"),
    7: ("generation", "int"),
    8: ("creationTimestamp", TIME),
    9: ("deletionTimestamp", TIME),
    10: ("deletionGracePeriodSeconds", "int"),
    11: ("labels", ("map", "string")),
    12: ("annotations", ("map", "string")),
    13: ("ownerReferences", [OWNER_REFERENCE]),
    14: ("finalizers", ["string"]),
}
MESSAGES = {
    "Secret": {
        1: ("metadata", OBJECT_META),
        2: ("data", ("map", "bytes")),
        3: ("type", "string"),
        4: ("stringData", ("map", "string")),
        5: ("immutable", "bool"),
    },
    "ConfigMap": {
        1: ("metadata", OBJECT_META),
        2: ("data", ("map", "string")),
        3: ("binaryData", ("map", "bytes")),
        4: ("immutable", "bool"),
    },
    "Namespace": {
        1: ("metadata", OBJECT_META),
        2: ("spec", {1: ("finalizers", ["string"])}),
        3: ("status", {1: ("phase", "string")}),
    },
    "ServiceAccount": {1: ("metadata", OBJECT_META), 4: ("automountServiceAccountToken", "bool")},
    "SelfSubjectAccessReview": {  # `kubectl auth can-i`
        1: ("metadata", OBJECT_META),
        2: (
            "spec",
            {
                1: (
                    "resourceAttributes",
                    {
                        1: ("namespace", "string"),
                        2: ("verb", "string"),
                        3: ("group", "string"),
                        4: ("version", "string"),
                        5: ("resource", "string"),
                        6: ("subresource", "string"),
                        7: ("name", "string"),
                    },
                ),
                2: ("nonResourceAttributes", {1: ("path", "string"), 2: ("verb", "string")}),
            },
        ),
    },
    "DeleteOptions": {
        1: ("gracePeriodSeconds", "int"),
        3: ("orphanDependents", "bool"),
        4: ("propagationPolicy", "string"),
        5: ("dryRun", ["string"]),
    },
}
UNKNOWN = {1: ("typeMeta", {1: ("apiVersion", "string"), 2: ("kind", "string")}), 2: ("raw", "bytes")}


class ProtoError(ValueError):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtoError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes):
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ProtoError(f"unsupported wire type {wire}")
        yield number, value


def _scalar(kind: str, value):
    if kind == "string":
        return value.decode()
    if kind == "bytes":
        return base64.b64encode(value).decode()  # the JSON form of []byte
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return value - (1 << 64) if value >= 1 << 63 else value
    raise ProtoError(f"unknown scalar {kind}")


def decode_message(data: bytes, spec: dict) -> dict:
    out: dict = {}
    for number, value in _fields(data):
        if number not in spec:
            continue  # a field this server does not read
        name, kind = spec[number]
        if isinstance(kind, tuple):  # map entry
            entry = dict(_fields(value))
            out.setdefault(name, {})[entry.get(1, b"").decode()] = _scalar(kind[1], entry.get(2, b""))
        elif isinstance(kind, list):
            item = kind[0]
            out.setdefault(name, []).append(
                decode_message(value, item) if isinstance(item, dict) else _scalar(item, value)
            )
        elif isinstance(kind, dict):
            out[name] = decode_message(value, kind)
            if kind is TIME:
                out[name] = datetime.fromtimestamp(out[name].get("seconds", 0), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            out[name] = _scalar(kind, value)
    return out


def decode(body: bytes) -> dict:
    """A protobuf-encoded object (runtime.Unknown envelope) as the JSON-shaped dict the API works with."""
    if not body.startswith(MAGIC):
        raise ProtoError("not a Kubernetes protobuf body (no k8s\\0 prefix)")
    envelope = decode_message(body[len(MAGIC) :], UNKNOWN)
    type_meta = envelope.get("typeMeta", {})
    kind = type_meta.get("kind", "")
    spec = MESSAGES.get(kind)
    if spec is None:
        raise ProtoError(f"the local API server cannot read {kind or 'this kind'} in protobuf; send JSON")
    obj = decode_message(base64.b64decode(envelope.get("raw", "")), spec)
    obj.update(apiVersion=type_meta.get("apiVersion", "v1"), kind=kind)
    return obj

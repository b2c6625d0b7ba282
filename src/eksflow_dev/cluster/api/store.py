"""Objects in memory with resource versions, generations, finalizers and a watch history: the etcd and the
registry of the local API server. Every method is thread-safe; watchers block on one condition."""

from __future__ import annotations

import copy
import itertools
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from eksflow_dev.cluster.api.resources import Resource

HISTORY = 50_000  # watch events kept; an older resourceVersion gets 410 Gone, as from etcd after compaction
Key = tuple[str, str, str]  # (resource key "group/plural", namespace, name)


class ApiError(Exception):
    """An error the API answers with a Status object."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> dict:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def not_found(resource: Resource, name: str) -> ApiError:
    what = f"{resource.plural}.{resource.group}" if resource.group else resource.plural
    return ApiError(404, "NotFound", f'{what} "{name}" not found', {"name": name, "kind": resource.plural})


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rkey(resource: Resource) -> str:
    return f"{resource.group}/{resource.plural}"


class Store:
    def __init__(self):
        self._cond = threading.Condition()
        self._rv = 1
        self._objects: dict[Key, dict] = {}
        # (rv, type, rkey, object, previous version of the object for MODIFIED)
        self._events: deque[tuple[int, str, str, dict, dict | None]] = deque(maxlen=HISTORY)
        self.applied: dict[tuple[Key, str], dict] = {}  # (object, field manager) -> last applied configuration
        self.closed = False

    # ------------------------------------------------------------------ reads
    @property
    def resource_version(self) -> str:
        with self._cond:
            return str(self._rv)

    def get(self, resource: Resource, namespace: str, name: str) -> dict:
        with self._cond:
            obj = self._objects.get((rkey(resource), namespace, name))
            if obj is None:
                raise not_found(resource, name)
            return copy.deepcopy(obj)

    def find(self, resource: Resource, namespace: str, name: str) -> dict | None:
        with self._cond:
            obj = self._objects.get((rkey(resource), namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, resource: Resource, namespace: str | None = None, predicate=None) -> tuple[list[dict], str]:
        with self._cond:
            items = [
                copy.deepcopy(obj)
                for (key, ns, _), obj in self._objects.items()
                if key == rkey(resource)
                and (namespace is None or ns == namespace)
                and (predicate is None or predicate(obj))
            ]
            return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])), str(
                self._rv
            )

    # ------------------------------------------------------------------ writes
    def _emit(self, kind: str, resource: Resource, obj: dict, old: dict | None = None) -> None:
        self._events.append((self._rv, kind, rkey(resource), copy.deepcopy(obj), old))
        self._cond.notify_all()

    def create(self, resource: Resource, obj: dict) -> dict:
        meta = obj["metadata"]
        namespace = meta.get("namespace", "") if resource.namespaced else ""
        with self._cond:
            if not meta.get("name") and meta.get("generateName"):
                while True:
                    candidate = meta["generateName"] + uuid.uuid4().hex[:5]
                    if (rkey(resource), namespace, candidate) not in self._objects:
                        meta["name"] = candidate
                        break
            key = (rkey(resource), namespace, meta["name"])
            if key in self._objects:
                what = f"{resource.plural}.{resource.group}" if resource.group else resource.plural
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{what} "{meta["name"]}" already exists',
                    {"name": meta["name"], "kind": resource.plural},
                )
            self._rv += 1
            meta.setdefault("uid", str(uuid.uuid4()))  # admission may have assigned it (Job selectors name it)
            meta.update(resourceVersion=str(self._rv), creationTimestamp=now(), generation=1)
            meta.pop("deletionTimestamp", None)
            self._objects[key] = copy.deepcopy(obj)
            self._emit("ADDED", resource, obj)
            return copy.deepcopy(obj)

    def update(self, resource: Resource, obj: dict, *, status_only: bool = False, check_rv: bool = True) -> dict:
        """Replace an object (PUT). status_only: only .status changes (the status subresource)."""
        meta = obj["metadata"]
        namespace = meta.get("namespace", "") if resource.namespaced else ""
        key = (rkey(resource), namespace, meta["name"])
        with self._cond:
            current = self._objects.get(key)
            if current is None:
                raise not_found(resource, meta["name"])
            wanted_rv = meta.get("resourceVersion")
            if check_rv and wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {resource.plural} "{meta["name"]}": the object has '
                    "been modified; please apply your changes to the latest version and try again",
                )
            if status_only:
                new = copy.deepcopy(current)
                new["status"] = copy.deepcopy(obj.get("status"))
            else:
                new = copy.deepcopy(obj)
                if "status" in current and resource.plural != "namespaces":
                    new["status"] = copy.deepcopy(current["status"])
                for field in (
                    "uid",
                    "creationTimestamp",
                    "generation",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                ):
                    if field in current["metadata"]:
                        new["metadata"][field] = current["metadata"][field]
                    else:
                        new["metadata"].pop(field, None)
                if _spec_of(new) != _spec_of(current):
                    new["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
            if new == {**current, "metadata": {**current["metadata"]}} and new["metadata"] == current["metadata"]:
                return copy.deepcopy(current)  # no-op writes do not bump the resourceVersion
            self._rv += 1
            new["metadata"]["resourceVersion"] = str(self._rv)
            if (
                new["metadata"].get("deletionTimestamp")
                and current["metadata"].get("finalizers")
                and not new["metadata"].get("finalizers")
            ):  # the last finalizer went: the object goes (a pod in its grace period stays until the kubelet)
                del self._objects[key]
                self._emit("DELETED", resource, new)
                return new
            self._objects[key] = new
            self._emit("MODIFIED", resource, new, current)
            return copy.deepcopy(new)

    def mutate(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        change: Callable[[dict], None],
        *,
        status_only: bool = False,
    ) -> dict:
        """Read-modify-write under the lock (controllers, the node)."""
        with self._cond:
            obj = self.get(resource, namespace, name)
            change(obj)
            return self.update(resource, obj, status_only=status_only, check_rv=False)

    def _mark_deleting(self, key, resource: Resource, current: dict, grace_seconds: int | None) -> dict:
        """Store and announce (MODIFIED) the object with its deletionTimestamp (and grace period, when given)."""
        new = copy.deepcopy(current)
        new["metadata"]["deletionTimestamp"] = now()
        if grace_seconds is not None:
            new["metadata"]["deletionGracePeriodSeconds"] = grace_seconds
        self._rv += 1
        new["metadata"]["resourceVersion"] = str(self._rv)
        self._objects[key] = new
        self._emit("MODIFIED", resource, new, current)
        return new

    def delete(
        self, resource: Resource, namespace: str, name: str, *, grace_seconds: int | None = None, graceful: bool = False
    ) -> dict:
        """Remove the object, or mark it deleting when it has finalizers or its deletion is graceful (pods)."""
        key = (rkey(resource), namespace if resource.namespaced else "", name)
        with self._cond:
            current = self._objects.get(key)
            if current is None:
                raise not_found(resource, name)
            meta = current["metadata"]
            if (graceful and grace_seconds != 0) or meta.get("finalizers"):
                if not meta.get("deletionTimestamp"):
                    return copy.deepcopy(self._mark_deleting(key, resource, current, grace_seconds))
                if not (grace_seconds == 0 and not meta.get("finalizers")):
                    return copy.deepcopy(current)
            if graceful and not meta.get("deletionTimestamp"):
                # Forced (grace 0): kube-apiserver still records the deletion before removing the pod, so watchers
                # see MODIFIED then DELETED, both with deletionTimestamp and grace 0.
                current = self._mark_deleting(key, resource, current, 0)
            del self._objects[key]
            self._rv += 1
            gone = copy.deepcopy(current)
            gone["metadata"]["resourceVersion"] = str(self._rv)
            self._emit("DELETED", resource, gone)
            for applied_key in [k for k in self.applied if k[0] == key]:
                del self.applied[applied_key]
            return gone

    # ------------------------------------------------------------------ watch
    def check_watch_start(self, since: str | None) -> None:
        """410 Gone for a resourceVersion older than the history kept (the client lists again)."""
        with self._cond:
            if (
                since
                and since != "0"
                and self._events
                and int(since) < self._events[0][0] - 1
                and int(since) < self._rv
            ):
                raise ApiError(410, "Expired", f"too old resource version: {since} ({self._events[0][0]})")

    def watch(
        self,
        resource: Resource,
        namespace: str | None,
        since: str | None,
        predicate,
        timeout: float,
        *,
        initial: bool = False,
    ) -> Iterator[tuple[str, dict]]:
        """Yield (type, object) after resourceVersion `since`; with `initial`, first ADDED for every current
        object (then a BOOKMARK marking the end of the initial events). Ends after `timeout` seconds or
        when the store closes. `predicate` filters (label/field selectors); an object that stops matching
        is sent as DELETED, as the real API server does."""
        self.check_watch_start(None if initial else since)
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.daemon = True
        timer.start()
        key = rkey(resource)
        try:
            with self._cond:
                if initial or not since or since == "0":
                    snapshot, rv = self.list(resource, namespace, predicate)
                    cursor = int(rv)
                    pending: list[tuple[str, dict]] = [("ADDED", o) for o in snapshot]
                    if initial:
                        pending.append(("BOOKMARK", _bookmark(resource, rv)))
                else:
                    cursor = int(since)
                    pending = []
            yield from pending
            while not deadline.is_set() and not self.closed:
                batch = []
                with self._cond:
                    start = max(0, cursor + 1 - self._events[0][0]) if self._events else 0
                    for rv, kind, event_key, obj, old in itertools.islice(self._events, start, None):
                        if rv <= cursor:
                            continue
                        cursor = rv
                        if event_key != key:
                            continue
                        ns = obj["metadata"].get("namespace", "")
                        if namespace is not None and ns != namespace:
                            continue
                        if predicate is not None and not predicate(obj):
                            if kind == "MODIFIED" and old is not None and predicate(old):
                                batch.append(("DELETED", obj))  # left the selection
                            continue
                        if kind == "MODIFIED" and predicate is not None and old is not None and not predicate(old):
                            kind = "ADDED"  # entered the selection
                        batch.append((kind, obj))
                    if not batch:
                        self._cond.wait(timeout=1.0)
                yield from batch
        finally:
            timer.cancel()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


def _bookmark(resource: Resource, rv: str) -> dict:
    return {
        "kind": resource.kind,
        "apiVersion": resource.api_version,
        "metadata": {"resourceVersion": rv, "annotations": {"k8s.io/initial-events-end": "true"}},
    }


def _spec_of(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}

"""The HTTP(S) front of the local API server: discovery, CRUD, list and watch with selectors, patch,
subresources (status, log, scale, token), Table output, authentication by bearer token, RBAC, admission,
and a record of every call (who, verb, resource, answer) in the audit log."""

from __future__ import annotations

import contextlib
import copy
import json
import re
import socket
import ssl
import threading
import time
import urllib.parse
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from eksflow_dev.cluster.api import admission, openapi, patch, policy, proto, resources, tables
from eksflow_dev.cluster.api.access_entries import AccessEntries
from eksflow_dev.cluster.api.rbac import Attributes, Authorizer
from eksflow_dev.cluster.api.resources import BY_PATH, Resource
from eksflow_dev.cluster.api.selectors import SelectorError, parse_fields, parse_labels
from eksflow_dev.cluster.api.store import ApiError, Store
from eksflow_dev.cluster.layout import Layout
from eksflow_dev.cluster.pki import API_AUDIENCE, Tokens

WATCH_TIMEOUT = 1800.0
Identity = tuple[str, tuple[str, ...]] | None  # (username, groups) of the request; None: the server itself
_PATH = re.compile(r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))(?P<rest>(?:/[^/]+)*)/?$")


PATCH_CONFLICT_ATTEMPTS = 5  # kube-apiserver retries a patch's update on conflicts, too


class Api:
    """Everything a request needs, independent of HTTP (the controllers call the same methods)."""

    def __init__(self, store: Store, layout: Layout, tokens: Tokens, kubernetes_version: str, region: str):
        self.store, self.layout, self.tokens = store, layout, tokens
        self.kubernetes_version, self.region = kubernetes_version, region
        self.access_entries = AccessEntries(layout.access_entries)
        self.authorizer = Authorizer(store, self.access_entries)
        self._audit_lock = threading.Lock()

    # ------------------------------------------------------------------ writes with admission
    def admit(
        self,
        resource: Resource,
        obj: dict,
        *,
        creating: bool,
        old: dict | None = None,
        user: Identity = None,
        dry_run: bool = False,
    ) -> dict:
        obj.setdefault("apiVersion", resource.api_version)
        obj.setdefault("kind", resource.kind)
        if (obj["apiVersion"], obj["kind"]) != (resource.api_version, resource.kind):
            raise ApiError(
                400,
                "BadRequest",
                f"the object's apiVersion/kind {obj['apiVersion']}/{obj['kind']} does "
                f"not match the URL ({resource.api_version} {resource.plural})",
            )
        if creating:
            obj["metadata"].pop("uid", None)
            obj["metadata"].pop("resourceVersion", None)
        admission.apply_defaults(self.store, resource, obj)
        if resource.kind == "Pod" and creating:
            admission.service_account(self.store, obj)
            admission.irsa(self.store, obj, self.region)
        if resource.kind == "Pod":
            admission.pod_security(self.store, obj)
        admission.validate(obj, self.kubernetes_version)
        if resource.kind == "ValidatingAdmissionPolicy":
            policy.check_policy(obj)
        username, groups = user or ("", ())
        policy.admit(
            self.store,
            resource,
            obj,
            old,
            operation="CREATE" if creating else "UPDATE",
            username=username,
            groups=groups,
            dry_run=dry_run,
        )
        return obj

    def create(
        self, resource: Resource, namespace: str, obj: dict, *, dry_run: bool = False, user: Identity = None
    ) -> dict:
        obj.setdefault("metadata", {})
        if resource.namespaced:
            body_ns = obj["metadata"].get("namespace")
            if body_ns and body_ns != namespace:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"the namespace of the object ({body_ns}) does not match the "
                    f"namespace on the request ({namespace})",
                )
            obj["metadata"]["namespace"] = namespace
            if self.store.find(BY_PATH[("", "v1", "namespaces")], "", namespace) is None:
                raise ApiError(
                    404, "NotFound", f'namespaces "{namespace}" not found', {"name": namespace, "kind": "namespaces"}
                )
        if not obj["metadata"].get("name") and not obj["metadata"].get("generateName"):
            raise ApiError(422, "Invalid", f"{resource.kind}: metadata.name: Required value: name or generateName")
        self.admit(resource, obj, creating=True, user=user, dry_run=dry_run)
        if dry_run:
            return obj
        return self.store.create(resource, obj)

    def replace(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        obj: dict,
        *,
        status_only: bool = False,
        user: Identity = None,
    ) -> dict:
        obj.setdefault("metadata", {})
        obj["metadata"]["name"] = name
        if resource.namespaced:
            obj["metadata"]["namespace"] = namespace
        if not status_only:
            old = self.store.find(resource, namespace, name)
            self.admit(resource, obj, creating=False, old=copy.deepcopy(old) if old else None, user=user)
        return self.store.update(resource, obj, status_only=status_only)

    def patch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        content_type: str,
        body: bytes,
        *,
        status_only: bool = False,
        manager: str = "",
        force: bool = False,
        user: Identity = None,
    ) -> dict:
        if content_type.startswith("application/apply-patch"):
            applied = yaml.safe_load(body) or {}
            current = self.store.find(resource, namespace, name)
            if current is None:  # admission adds defaults to what it creates; the manager applied only this
                self._authorize_create(resource, namespace, name, user)
                created = self.create(resource, namespace, copy.deepcopy(applied), user=user)
                self.store.applied[(_key(resource, namespace, name), manager)] = applied
                return created
            previous = self.store.applied.get((_key(resource, namespace, name), manager))
            merged = patch.server_side_apply(current, applied, previous)
            result = self.replace(resource, namespace, name, merged, status_only=status_only, user=user)
            self.store.applied[(_key(resource, namespace, name), manager)] = applied
            return result
        data = json.loads(body or b"null")
        # A patch that names no resourceVersion is applied to the latest object: when another writer (a controller)
        # changed it between the read and the write, the patch is merged again, as kube-apiserver's GuaranteedUpdate
        # does, instead of answering 409.
        pinned = isinstance(data, dict) and bool((data.get("metadata") or {}).get("resourceVersion"))
        for attempt in range(PATCH_CONFLICT_ATTEMPTS):
            current = self.store.get(resource, namespace, name)
            merged = self._merged(current, data, content_type)
            if not status_only:
                merged["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            try:
                return self.replace(resource, namespace, name, merged, status_only=status_only, user=user)
            except ApiError as error:
                if error.code != 409 or pinned or attempt == PATCH_CONFLICT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _merged(current: dict, data, content_type: str) -> dict:
        try:
            if content_type.startswith("application/json-patch"):
                return patch.json_patch(current, data)
            if content_type.startswith("application/merge-patch"):
                return patch.merge_patch(current, data)
            if content_type.startswith("application/strategic-merge-patch"):
                return patch.strategic_merge(current, data)
        except patch.PatchError as error:
            raise ApiError(422, "Invalid", str(error)) from None
        raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {content_type}")

    def _authorize_create(self, resource: Resource, namespace: str, name: str, user: Identity) -> None:
        """An apply that creates the object needs `create` as well, for its name (kube-apiserver's patch handler,
        createAuthorizerAttributes): unlike a POST, the name is known, so RBAC's resourceNames hold for it."""
        if user is None:
            return
        attrs = Attributes(user[0], user[1], "create", resource.group, resource.plural, "", namespace, name)
        if not self.authorizer.allowed(attrs):
            raise ApiError(403, "Forbidden", attrs.describe(), {"name": name, "kind": resource.plural})

    def delete(self, resource: Resource, namespace: str, name: str, options: dict) -> dict:
        current = self.store.get(resource, namespace, name)
        if resource.kind == "Namespace":  # the namespace controller's work, done at once
            for other in resources.RESOURCES:
                if other.namespaced:
                    for obj in self.store.list(other, name)[0]:
                        with contextlib.suppress(ApiError):
                            self.store.delete(other, name, obj["metadata"]["name"], grace_seconds=0)
        policy = options.get("propagationPolicy") or ("Orphan" if options.get("orphanDependents") else None)
        if policy is None and resource.kind == "Job":
            policy = "Orphan"  # batch/v1's default (helm and kubectl ask for Background explicitly)
        grace = options.get("gracePeriodSeconds")
        if policy == "Foreground":
            finalizers = current["metadata"].setdefault("finalizers", [])
            if "foregroundDeletion" not in finalizers:
                self.store.mutate(
                    resource,
                    namespace,
                    name,
                    lambda o: o["metadata"].setdefault("finalizers", []).append("foregroundDeletion"),
                )
        elif policy == "Orphan":
            self.store.mutate(
                resource, namespace, name, lambda o: o["metadata"].setdefault("finalizers", []).append("orphan")
            )
        graceful = resource.kind == "Pod" and bool(current["spec"].get("nodeName"))
        if graceful and grace is None:
            grace = current["spec"].get("terminationGracePeriodSeconds", 30)
        return self.store.delete(resource, namespace, name, grace_seconds=grace, graceful=graceful)

    # ------------------------------------------------------------------ audit
    def audit(self, entry: dict) -> None:
        line = json.dumps(entry, sort_keys=True)
        with self._audit_lock, self.layout.audit_log.open("a") as out:
            out.write(line + "\n")


def _key(resource: Resource, namespace: str, name: str):
    return (f"{resource.group}/{resource.plural}", namespace if resource.namespaced else "", name)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "eksflow-local-apiserver"
    api: Api  # set on the subclass made by serve()

    def log_message(self, format, *args):
        pass

    # ------------------------------------------------------------------ plumbing
    def _send(self, code: int, body: dict | bytes | str, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self._code = code

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if data and "protobuf" in (self.headers.get("Content-Type") or ""):
            try:
                return json.dumps(proto.decode(data)).encode()
            except proto.ProtoError as error:
                raise ApiError(415, "UnsupportedMediaType", str(error)) from None
        return data

    def _user(self) -> tuple[str, tuple[str, ...]]:
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():  # the scheme is case-insensitive (RFC 7235)
            found = self.api.tokens.user_of(token.strip()) or self.api.access_entries.user_of(token.strip())
            if found:
                return found[0], tuple(found[1])
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return "system:anonymous", ("system:unauthenticated",)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_PATCH(self):
        self._handle("PATCH")

    def do_DELETE(self):
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        started = time.monotonic()
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        self._code, attrs, user = 0, None, "?"
        try:
            user, groups = self._user()
            attrs = self._route(method, url.path, query, user, groups)
        except ApiError as error:
            self._send(error.code, error.status())
        except (BrokenPipeError, ConnectionResetError):
            self._code = 499
        except Exception as error:
            with contextlib.suppress(OSError):
                self._send(500, ApiError(500, "InternalError", f"{type(error).__name__}: {error}").status())
        finally:
            self.api.audit(
                {
                    "time": datetime.now(UTC).isoformat(),
                    "user": user,
                    "userAgent": self.headers.get("User-Agent", ""),
                    "method": method,
                    "path": url.path,
                    "query": url.query,
                    "code": self._code,
                    "verb": attrs.verb if attrs else "",
                    "resource": attrs.resource if attrs else "",
                    "subresource": attrs.subresource if attrs else "",
                    "namespace": attrs.namespace if attrs else "",
                    "ms": round((time.monotonic() - started) * 1000),
                }
            )

    # ------------------------------------------------------------------ routing
    def _route(self, method: str, path: str, query: dict, user: str, groups: tuple[str, ...]) -> Attributes | None:
        if not path.startswith(("/api/", "/apis/")) or (path.count("/") <= 2 and not path.startswith("/api/v1")):
            attrs = Attributes(user, groups, method.lower(), path=path)
            if not self.api.authorizer.allowed(attrs):
                raise ApiError(403, "Forbidden", f'forbidden: User "{user}" cannot {method.lower()} path "{path}"')
            self._discovery(path)
            return attrs
        match = _PATH.match(path)
        if not match:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        group, version = ("", "v1") if match["core"] else (match["group"], match["version"])
        parts = [p for p in (match["rest"] or "").split("/") if p]
        if not parts:
            if not self.api.authorizer.allowed(
                Attributes(user, groups, "get", path="/api" if match["core"] else "/apis")
            ):
                raise ApiError(403, "Forbidden", f'forbidden: User "{user}" cannot get path "{path}"')
            if not any(r.group == group and r.version == version for r in resources.RESOURCES):
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            self._send(200, resources.resource_list(group, version))
            return None
        namespace = ""
        if parts[0] == "namespaces" and len(parts) >= 3 and not (group == "" and parts[2] in ("status", "finalize")):
            namespace, parts = parts[1], parts[2:]
        resource = BY_PATH.get((group, version, parts[0]))
        if resource is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = parts[1] if len(parts) > 1 else ""
        sub = parts[2] if len(parts) > 2 else ""
        if sub and sub not in resource.subresources:
            raise ApiError(
                404, "NotFound", f"the server could not find the requested resource ({resource.plural}/{sub})"
            )
        verb = {
            "GET": "get" if name else ("watch" if _flag(query.get("watch")) else "list"),
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete" if name else "deletecollection",
        }[method]
        attrs = Attributes(user, groups, verb, group, resource.plural, sub, namespace, name, path)
        if not self.api.authorizer.allowed(attrs):
            raise ApiError(403, "Forbidden", attrs.describe(), {"name": name, "kind": resource.plural})
        if resource.namespaced and not namespace and name:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        self._identity = (user, groups)
        self._dispatch(method, resource, namespace, name, sub, query)
        return attrs

    def _discovery(self, path: str) -> None:
        version = self.server.kubernetes_version  # type: ignore[attr-defined]
        major, minor = version.split(".")[:2]
        if path.startswith("/openapi/v3"):
            doc = openapi.document(path)
            if doc is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            self._send(200, doc)
        elif path in ("/healthz", "/livez", "/readyz"):
            self._send(200, "ok", "text/plain")
        elif path == "/version":
            self._send(
                200,
                {
                    "major": major,
                    "minor": minor,
                    "gitVersion": f"v{version}",
                    "platform": "linux/amd64",
                    "goVersion": "go1.24",
                    "compiler": "gc",
                    "buildDate": "2026-01-01T00:00:00Z",
                    "gitCommit": "eksflow-local",
                    "gitTreeState": "clean",
                },
            )
        elif path == "/api":
            self._send(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        elif path == "/apis":
            items = []
            for group, versions in resources.groups().items():
                if group:
                    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
                    items.append({"name": group, "versions": entries, "preferredVersion": entries[0]})
            self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": items})
        elif path.startswith("/apis/") and path.count("/") == 2:
            group = path.split("/")[2]
            versions = resources.groups().get(group)
            if not versions:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
            self._send(
                200,
                {
                    "kind": "APIGroup",
                    "apiVersion": "v1",
                    "name": group,
                    "versions": entries,
                    "preferredVersion": entries[0],
                },
            )
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def _dispatch(self, method: str, resource: Resource, namespace: str, name: str, sub: str, query: dict) -> None:
        api, store = self.api, self.api.store
        if method == "GET" and not name:
            try:
                labels = parse_labels(query.get("labelSelector"))
                fields = parse_fields(query.get("fieldSelector"))
            except SelectorError as error:
                raise ApiError(400, "BadRequest", str(error)) from None
            predicate = lambda o: labels(o["metadata"].get("labels") or {}) and fields(o)  # noqa: E731
            scope = namespace if resource.namespaced and namespace else None
            if _flag(query.get("watch")):
                self._watch(resource, scope, query, predicate)
                return
            items, rv = store.list(resource, scope, predicate)
            accept = self.headers.get("Accept") or ""
            if "as=Table" in accept:
                self._send(200, tables.table(resource.kind, items, rv))
            else:
                self._send(200, _list_body(resource, items, rv))
            return
        if method == "GET" and sub == "log":
            self._logs(namespace, name, query)
            return
        if method == "GET":
            obj = store.get(resource, namespace, name)
            if sub == "scale":
                obj = _scale(obj)
            accept = self.headers.get("Accept") or ""
            self._send(
                200,
                tables.table(resource.kind, [obj], obj["metadata"]["resourceVersion"]) if "as=Table" in accept else obj,
            )
            return
        dry_run = query.get("dryRun") == "All"
        if method == "POST" and resource.kind == "SelfSubjectAccessReview":
            self._send(201, self._access_review(json.loads(self._body() or b"{}")))
            return
        if method == "POST" and sub == "token":
            self._send(201, self._token_request(namespace, name, json.loads(self._body() or b"{}")))
            return
        if method == "POST":
            obj = json.loads(self._body() or b"{}")
            self._send(201, api.create(resource, namespace, obj, dry_run=dry_run, user=self._identity))
            return
        if method == "PUT":
            obj = json.loads(self._body() or b"{}")
            if sub == "scale":
                replicas = obj["spec"]["replicas"]
                updated = store.mutate(resource, namespace, name, lambda o: o["spec"].__setitem__("replicas", replicas))
                self._send(200, _scale(updated))
                return
            self._send(
                200, api.replace(resource, namespace, name, obj, status_only=sub == "status", user=self._identity)
            )
            return
        if method == "PATCH":
            content_type = self.headers.get("Content-Type") or ""
            self._send(
                200,
                api.patch(
                    resource,
                    namespace,
                    name,
                    content_type,
                    self._body(),
                    status_only=sub == "status",
                    manager=query.get("fieldManager", ""),
                    force=_flag(query.get("force")),
                    user=self._identity,
                ),
            )
            return
        if method == "DELETE":
            body = self._body()
            options = json.loads(body) if body else {}
            if "gracePeriodSeconds" in query:
                options["gracePeriodSeconds"] = int(query["gracePeriodSeconds"])
            if "propagationPolicy" in query:
                options["propagationPolicy"] = query["propagationPolicy"]
            if name:
                self._send(200, api.delete(resource, namespace, name, options))
                return
            labels, fields = parse_labels(query.get("labelSelector")), parse_fields(query.get("fieldSelector"))
            items, rv = store.list(
                resource, namespace or None, lambda o: labels(o["metadata"].get("labels") or {}) and fields(o)
            )
            for item in items:
                with contextlib.suppress(ApiError):
                    api.delete(resource, namespace, item["metadata"]["name"], options)
            self._send(200, _list_body(resource, items, rv))
            return
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")

    # ------------------------------------------------------------------ streams
    def _start_chunked(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._code = 200

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _watch(self, resource: Resource, namespace: str | None, query: dict, predicate) -> None:
        timeout = float(query.get("timeoutSeconds") or WATCH_TIMEOUT)
        initial = _flag(query.get("sendInitialEvents"))
        bookmarks = _flag(query.get("allowWatchBookmarks"))
        events = self.api.store.watch(
            resource, namespace, query.get("resourceVersion"), predicate, timeout, initial=initial
        )
        self.api.store.check_watch_start(None if initial else query.get("resourceVersion"))
        self._start_chunked("application/json")
        try:
            for kind, obj in events:
                if kind == "BOOKMARK" and not (bookmarks or initial):
                    continue
                self._chunk(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True

    def _logs(self, namespace: str, name: str, query: dict) -> None:
        pod = self.api.store.get(BY_PATH[("", "v1", "pods")], namespace, name)
        names = [c["name"] for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]]
        container = query.get("container") or (
            pod["spec"]["containers"][0]["name"] if len(pod["spec"]["containers"]) == 1 else ""
        )
        if container not in names:
            raise ApiError(
                400,
                "BadRequest",
                f"a container name must be specified for pod {name}, choose one of: "
                f"{[c['name'] for c in pod['spec']['containers']]}"
                if not container
                else f"container {container} is not valid for pod {name}",
            )
        statuses = {
            s["name"]: s
            for s in (pod.get("status") or {}).get("containerStatuses", [])
            + (pod.get("status") or {}).get("initContainerStatuses", [])
        }
        restart = statuses.get(container, {}).get("restartCount", 0)
        if _flag(query.get("previous")):
            if restart == 0:
                raise ApiError(
                    400, "BadRequest", f'previous terminated container "{container}" in pod "{name}" not found'
                )
            restart -= 1
        path = self.api.layout.container_log(pod["metadata"]["uid"], container, restart)
        if not path.exists() and container not in statuses:
            raise ApiError(400, "BadRequest", f'container "{container}" in pod "{name}" is waiting to start')
        timestamps = _flag(query.get("timestamps"))
        tail = int(query["tailLines"]) if "tailLines" in query else None
        since = float(query["sinceSeconds"]) if "sinceSeconds" in query else None
        if not _flag(query.get("follow")):
            lines = _log_lines(path, timestamps, since)
            text = "".join(lines[-tail:] if tail is not None else lines)
            limit = int(query["limitBytes"]) if "limitBytes" in query else None
            self._send(200, text.encode()[:limit] if limit else text.encode(), "text/plain")
            return
        self._start_chunked("text/plain")
        try:
            lines = _log_lines(path, timestamps, since)
            offset = path.stat().st_size if path.exists() else 0
            for line in lines[-tail:] if tail is not None else lines:
                self._chunk(line.encode())
            while True:
                if path.exists() and path.stat().st_size > offset:
                    with path.open("rb") as log:
                        log.seek(offset)
                        data = log.read()
                    complete = data[: data.rfind(b"\n") + 1]
                    offset += len(complete)
                    for raw in complete.decode(errors="replace").splitlines(keepends=True):
                        self._chunk(_format_line(raw, timestamps).encode())
                    continue
                current = self.api.store.find(BY_PATH[("", "v1", "pods")], namespace, name)
                if current is None or current["metadata"]["uid"] != pod["metadata"]["uid"]:
                    break
                status = next(
                    (
                        s
                        for s in (current.get("status") or {}).get("containerStatuses", [])
                        + (current.get("status") or {}).get("initContainerStatuses", [])
                        if s["name"] == container
                    ),
                    {},
                )
                if "terminated" in (status.get("state") or {}) or status.get("restartCount", 0) != restart:
                    break
                time.sleep(0.5)
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True

    def _access_review(self, body: dict) -> dict:
        """`kubectl auth can-i`: the requester's own rights, answered by the authorizer that guards requests."""
        user, groups = self._identity
        spec = body.get("spec") or {}
        asked, path = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        if asked:
            attrs = Attributes(
                user,
                groups,
                asked.get("verb", ""),
                asked.get("group", ""),
                asked.get("resource", ""),
                asked.get("subresource", ""),
                asked.get("namespace", ""),
                asked.get("name", ""),
            )
        elif path:
            attrs = Attributes(user, groups, path.get("verb", ""), path=path.get("path", ""))
        else:
            raise ApiError(
                422, "Invalid", "spec: Invalid value: resourceAttributes or nonResourceAttributes is required"
            )
        return {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {},
            "spec": spec,
            "status": {"allowed": self.api.authorizer.allowed(attrs)},
        }

    def _token_request(self, namespace: str, name: str, body: dict) -> dict:
        account = self.api.store.get(BY_PATH[("", "v1", "serviceaccounts")], namespace, name)
        spec = body.get("spec") or {}
        bound = spec.get("boundObjectRef") or {}
        pod = (bound["name"], bound.get("uid", "")) if bound.get("kind") == "Pod" else None
        seconds = int(spec.get("expirationSeconds") or 3600)
        if seconds < 600:
            raise ApiError(422, "Invalid", "spec.expirationSeconds: may not specify a duration less than 10 minutes")
        if seconds == 3607 and bound.get("kind") == "Pod":
            seconds = 365 * 86400  # kube-apiserver --service-account-extend-token-expiration (default on)
        token, expires = self.api.tokens.issue(
            namespace,
            name,
            account["metadata"]["uid"],
            spec.get("audiences") or [API_AUDIENCE],
            seconds,
            pod,
        )
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {**spec, "audiences": spec.get("audiences") or [API_AUDIENCE]},
            "status": {
                "token": token,
                "expirationTimestamp": datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        }


def _list_body(resource: Resource, items: list[dict], resource_version: str) -> dict:
    return {
        "kind": f"{resource.kind}List",
        "apiVersion": resource.api_version,
        "metadata": {"resourceVersion": resource_version},
        "items": items,
    }


def _flag(value: str | None) -> bool:
    """A boolean query parameter as Go's strconv.ParseBool reads it (Python clients send "True")."""
    return value in ("1", "t", "T", "true", "TRUE", "True")


def _format_line(raw: str, timestamps: bool) -> str:
    """A CRI log line ("<time> <stream> <P|F> <text>") as the API returns it."""
    parts = raw.split(" ", 3)
    if len(parts) < 4:
        return raw
    text = parts[3] if parts[3].endswith("\n") else parts[3] + "\n"
    if parts[2] == "P":
        text = text.rstrip("\n")
    return f"{parts[0]} {text}" if timestamps else text


def _log_lines(path: Path, timestamps: bool, since: float | None) -> list[str]:
    if not path.exists():
        return []
    lines = path.read_text(errors="replace").splitlines(keepends=True)
    if since is not None:
        cutoff = datetime.now(UTC).timestamp() - since
        lines = [ln for ln in lines if _line_time(ln) >= cutoff]
    return [_format_line(ln, timestamps) for ln in lines]


def _line_time(line: str) -> float:
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(line.split(" ", 1)[0][:26].rstrip("Z") + "+00:00").timestamp()
    return 0.0


def _scale(obj: dict) -> dict:
    from eksflow_dev.cluster.api.selectors import selector_string

    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: obj["metadata"][k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in obj["metadata"]
        },
        "spec": {"replicas": obj["spec"].get("replicas", 1)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": selector_string(obj["spec"].get("selector") or {}),
        },
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    kubernetes_version = ""

    def server_bind(self):
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        super().server_bind()


def serve(api: Api, host: str, port: int, cert: Path, key: Path) -> _Server:
    """Start serving HTTPS on host:port in a daemon thread; returns the server (its port, shutdown())."""
    handler = type("BoundHandler", (Handler,), {"api": api})
    server = _Server((host, port), handler)
    server.kubernetes_version = api.kubernetes_version
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["http/1.1"])
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    threading.Thread(target=server.serve_forever, name="apiserver", daemon=True).start()
    return server

"""A small client of the local API server for the node and the launcher: JSON over HTTPS with a bearer
token, and watch streams read line by line."""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
from collections.abc import Iterator
from pathlib import Path


class ClientError(Exception):
    def __init__(self, code: int, body: dict | str):
        message = body.get("message") if isinstance(body, dict) else body
        super().__init__(f"HTTP {code}: {message}")
        self.code, self.body = code, body


class Client:
    def __init__(self, host: str, port: int, ca: Path, token: str, user_agent: str = "eksflow-local"):
        self.host, self.port, self.token, self.user_agent = host, port, token, user_agent
        self._context = ssl.create_default_context(cafile=str(ca))

    def _connection(self, timeout: float | None) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self._context, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body=None,
        *,
        content_type: str = "application/json",
        query: dict | None = None,
        timeout: float = 30,
    ) -> dict:
        if query:
            path += "?" + urllib.parse.urlencode(query)
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        connection = self._connection(timeout)
        try:
            connection.request(method, path, body=data, headers=self._headers(content_type))
            response = connection.getresponse()
            payload = response.read()
        finally:
            connection.close()
        try:
            decoded = json.loads(payload) if payload else {}
        except json.JSONDecodeError:
            decoded = payload.decode(errors="replace")
        if response.status >= 400:
            raise ClientError(response.status, decoded)
        return decoded

    def _headers(self, content_type: str) -> dict:
        return {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": content_type,
            "Accept": "application/json",
            "User-Agent": self.user_agent,
        }

    def get(self, path: str, **query) -> dict:
        return self.request("GET", path, query=query or None)

    def find(self, path: str) -> dict | None:
        try:
            return self.get(path)
        except ClientError as error:
            if error.code == 404:
                return None
            raise

    def create(self, path: str, body: dict) -> dict:
        return self.request("POST", path, body)

    def patch(self, path: str, body: dict, kind: str = "merge") -> dict:
        return self.request("PATCH", path, body, content_type=f"application/{kind}-patch+json")

    def delete(self, path: str, **query) -> dict:
        return self.request("DELETE", path, query=query or None)

    def watch(self, path: str, resource_version: str, timeout: int = 300, **query) -> Iterator[dict]:
        """Events of one watch request (ends when the server ends it, after `timeout` at most)."""
        params = {"watch": "true", "resourceVersion": resource_version, "timeoutSeconds": str(timeout), **query}
        connection = self._connection(timeout + 30)
        try:
            connection.request(
                "GET", path + "?" + urllib.parse.urlencode(params), headers=self._headers("application/json")
            )
            response = connection.getresponse()
            if response.status >= 400:
                raise ClientError(response.status, response.read().decode(errors="replace"))
            for line in response:
                if line.strip():
                    yield json.loads(line)
        finally:
            connection.close()

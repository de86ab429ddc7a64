"""JSON in, JSON out over the official client's ApiClient (auth, TLS and pooling from the
kubeconfig). The stand-in kubelet works on plain dicts: the client's generated models are
strict about fields that a v1.20 server may not send, and the kubelet only copies fields."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubernetes import client, config

__all__ = ["ApiError", "RawApi", "configuration"]


def configuration(kubeconfig: Path) -> client.Configuration:
    found = client.Configuration()
    config.load_kube_config(str(kubeconfig), client_configuration=found)
    return found


class ApiError(RuntimeError):
    def __init__(self, status: int, body: Any) -> None:
        message = body.get("message", body) if isinstance(body, dict) else body
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class RawApi:
    def __init__(self, kubeconfig: Path, pool_size: int = 64) -> None:
        found = configuration(kubeconfig)
        # Every pod's thread patches its status; urllib3 would otherwise keep 10 connections.
        found.connection_pool_maxsize = pool_size
        self.client = client.ApiClient(found)

    def _send(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None,
        body: Any,
        timeout: float,
        content_type: str = "application/json",
    ) -> Any:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method, url, headers, body, _ = self.client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        return self.client.call_api(method, url, headers, body, _request_timeout=timeout)

    def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        timeout: float = 30,
    ) -> Any:
        """A PATCH with a dict body is a strategic merge patch."""
        content_type = "application/strategic-merge-patch+json" if method == "PATCH" else None
        response = self._send(
            method, path, query, body, timeout, content_type or "application/json"
        )
        data = response.read()
        decoded = json.loads(data) if data else None
        if not 200 <= response.status < 300:
            raise ApiError(response.status, decoded)
        return decoded

    def watch(self, path: str, query: dict[str, str], timeout: float) -> Iterator[dict[str, Any]]:
        """Events of one watch request until the server ends it (timeoutSeconds in query)."""
        response = self._send("GET", path, {**query, "watch": "1"}, None, timeout)
        raw = response.response
        try:
            if not 200 <= response.status < 300:
                raise ApiError(response.status, json.loads(response.read() or b"null"))
            buffer = b""
            for chunk in raw.stream(amt=None, decode_content=False):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        event: dict[str, Any] = json.loads(line)
                        yield event
        finally:
            raw.release_conn()

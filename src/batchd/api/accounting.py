"""After each answer: count it for ``/metrics`` and, with ``--request-log``, log one line.

The line: operation, HTTP status, latency, the request id sent in ``x-amzn-RequestId`` and
the caller's access key id (from the SigV4 ``Authorization`` header; ``-`` when unsigned).
"""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from typing import Any

from batchd.api.metrics import RequestMetrics, operation_name
from batchd.protocol.model import Router

__all__ = ["access_key_id", "account"]

request_log = logging.getLogger("batchd.requests")

_CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]{1,128})/")


def access_key_id(authorization: bytes | None) -> str:
    if not authorization:
        return "-"
    found = _CREDENTIAL.search(authorization.decode("latin-1"))
    return found[1] if found else "-"


def account(
    scope: MutableMapping[str, Any],
    start: MutableMapping[str, Any],
    seconds: float,
    router: Router | None,
    metrics: RequestMetrics,
) -> None:
    """``start`` is the ``http.response.start`` message that was sent."""
    headers: dict[bytes, bytes] = dict(scope["headers"])
    raw_path = (scope.get("raw_path") or b"").decode("latin-1").split("?", 1)[0]
    operation = "unknown"
    if router is not None:
        operation = operation_name(router, scope["method"], raw_path, headers.get(b"x-amz-target"))
    status: int = start["status"]
    metrics.observe(operation, status, seconds)
    if metrics.request_log:
        request_id = dict(start.get("headers") or ()).get(b"x-amzn-requestid", b"-")
        request_log.info(
            "%s %d %.1fms request_id=%s access_key=%s",
            operation,
            status,
            seconds * 1000,
            request_id.decode("latin-1"),
            access_key_id(headers.get(b"authorization")),
        )

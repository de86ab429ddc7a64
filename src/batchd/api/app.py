"""One generic endpoint: route by the model, validate, run the operation, serialize.

The HTTP layer is a bare ASGI 3 application (no framework on the request path): it reads the
body from ``receive``, answers with two ``send`` calls, and runs the lifespan protocol itself.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
import traceback
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from batchd import jsontext
from batchd.api.accounting import account
from batchd.api.auth import AuthFailure, SigV4Verifier
from batchd.api.batch_api import BatchApi
from batchd.api.dashboard import Dashboard
from batchd.api.logs import read_logs
from batchd.api.metrics import CONTENT_TYPE, RequestMetrics, render
from batchd.api.requests import ClientDisconnected, Receive, read_body
from batchd.errors import BatchdError, ServerError, StartupError
from batchd.operations import (  # noqa: F401  (registers the handlers)
    environments,
    jobs,
    logs,
    policies,
    queues,
    quota_shares,
    sagemaker,
    snapshot,
    tags,
)
from batchd.operations.context import Context
from batchd.operations.health import health
from batchd.protocol.errors import WireError, wire_error
from batchd.protocol.rules import BODY_LIMITS, DEFAULT_BODY_LIMIT

__all__ = ["BatchApi", "BatchdApp", "ContextFactory", "create_app"]

log = logging.getLogger("batchd.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
ContextFactory = Callable[[], Awaitable[tuple[Context, Callable[[], Awaitable[None]]]]]

_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})
_ALLOW_ALL = b"GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS"
_LOGS_METHODS = frozenset({"GET", "HEAD"})
_MAX_BODY = max([DEFAULT_BODY_LIMIT, *BODY_LIMITS.values()])
_LOGS_PREFIX = "/batchd/"
_HEALTH = "/batchd/v1/health"
_LOGS = re.compile(r"^/batchd/v1/jobs/(?P<job>[^/]+)/logs$")

_JSON = b"application/json"
_LOGS_TARGET = b"Logs_20140328."
_AMZ_JSON = b"application/x-amz-json-1.1"
_TEXT = b"text/plain; charset=utf-8"


class _RequestIds:
    """Ids with the text shape of a UUID4: a random per-process prefix and a counter.

    Unique within the process (2**48 before the counter wraps) and, by the 74 random bits of
    the prefix, across processes; a fraction of ``uuid4()``'s cost (no ``os.urandom`` per call).
    """

    _MASK = (1 << 48) - 1

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        seed = str(uuid.uuid4())
        self._prefix = seed[:24]  # xxxxxxxx-xxxx-4xxx-Yxxx-
        self._counter = itertools.count(int(seed[24:], 16))

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter) & self._MASK:012x}"


_request_id = _RequestIds()
os.register_at_fork(after_in_child=_request_id.reseed)


def _raw_path(scope: Scope, path: str) -> str:
    """The path as the client sent it, without the query: what signatures and ARNs need."""
    raw = scope.get("raw_path")
    if raw:
        return str(raw.decode("latin-1").split("?", 1)[0])
    return path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    request_id: str,
    error: str | None = None,
    media_type: bytes = _JSON,
) -> None:
    headers = [(b"x-amzn-requestid", request_id.encode("latin-1"))]
    if error:
        headers.append((b"x-amzn-errortype", error.encode("latin-1")))
    headers.append((b"content-length", b"%d" % len(body)))
    headers.append((b"content-type", media_type))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BatchdApp:
    """The ASGI 3 application: ``http`` requests and the ``lifespan`` protocol."""

    def __init__(
        self,
        ctx_factory: ContextFactory,
        verifier: SigV4Verifier | None = None,
        request_log: bool = False,
    ) -> None:
        self._ctx_factory = ctx_factory
        self.verifier = verifier
        self.api: BatchApi | None = None
        self.dashboard = Dashboard(verifier)
        self.metrics = RequestMetrics()
        self.metrics.request_log = request_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._not_http(scope, receive, send)
            return
        if scope["path"] == "/metrics" and scope["method"] == "GET":
            await self._metrics(send)
            return
        # Every answer passes here: counted for /metrics, and logged with --request-log.
        started = time.perf_counter()
        answered: list[MutableMapping[str, Any]] = []

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered.append(message)
            await send(message)

        await self._http(scope, receive, sending)
        if answered:
            router = self.api.router if self.api is not None else None
            account(scope, answered[0], time.perf_counter() - started, router, self.metrics)

    async def _metrics(self, send: Send) -> None:
        try:
            body = await render(self._api().ctx, self.metrics)
            status, media = 200, CONTENT_TYPE
        except Exception:  # the store is unreachable: say so, as any failed scrape
            log.exception("GET /metrics failed")
            body, status, media = b"metrics unavailable\n", 503, _TEXT
        headers = [(b"content-length", b"%d" % len(body)), (b"content-type", media)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = _request_id()
        method: str = scope["method"]
        path: str = scope["path"]
        raw_path = _raw_path(scope, path)
        # ASGI header names are lower-case already; the first of a repeated header wins.
        headers: dict[bytes, bytes] = dict(reversed(list(scope["headers"])))
        if raw_path == _HEALTH and method in _LOGS_METHODS:
            await self._health(send, request_id)
            return
        # Matched on the raw path: a job ARN arrives with its slashes encoded as %2F.
        log_path = _LOGS.match(raw_path) if raw_path.startswith(_LOGS_PREFIX) else None
        if log_path is not None and method in _LOGS_METHODS:
            job = urllib.parse.unquote(log_path["job"])
            await self._logs(scope, send, method, raw_path, headers, job, request_id)
            return
        if method not in _METHODS:
            await _method_not_allowed(send, b"GET, HEAD" if log_path is not None else _ALLOW_ALL)
            return
        if Dashboard.wants(method, path, headers):
            await self.dashboard(self._api().ctx, scope, receive, send, headers)
            return
        target = headers.get(b"x-amz-target")
        on_sagemaker = bool(target) and path == "/"
        on_logs = on_sagemaker and (target or b"").startswith(_LOGS_TARGET)
        service, media = ("sagemaker", _AMZ_JSON) if on_sagemaker else ("batch", _JSON)
        service = "logs" if on_logs else service
        error: str | None = None
        try:
            api = self._api()
            body = await read_body(receive, headers.get(b"content-length"), _MAX_BODY)
            if self.verifier is not None:
                api.authenticate(method, raw_path, scope, headers, body)
            if on_logs:
                result = await api.cloudwatch_logs(method, (target or b"").decode("latin-1"), body)
            elif on_sagemaker:
                result = await api.sagemaker(method, (target or b"").decode("latin-1"), body)
            else:
                result = await api.batch(method, raw_path, scope.get("query_string", b""), body)
            status = 200
        except ClientDisconnected:
            log.debug("client went away before request %s %s was read", method, path)
            return
        except AuthFailure as failure:
            status, error, result = failure.status, failure.code, _failure_body(failure)
        except BatchdError as err:
            wire = wire_error(err, service)
            status, error, result = wire.status, wire.code, wire.body()
        except Exception:  # a bug of ours: log it, and answer as AWS does
            log.exception("internal error in request %s %s", method, path)
            wire = wire_error(ServerError(f"Internal error; request id {request_id}"), service)
            status, error, result = wire.status, wire.code, wire.body()
        await _respond(send, status, result, request_id, error, media)

    def _api(self) -> BatchApi:
        if self.api is None:
            raise RuntimeError("batchd has not started: the server must run the ASGI lifespan")
        return self.api

    async def _health(self, send: Send, request_id: str) -> None:
        """``GET /batchd/v1/health``: this replica is up; whether it schedules, since when,
        and on which database. Open without signing, for load balancers."""
        if self.api is None:
            await _respond(send, 503, b'{"status":"starting"}', request_id, None)
            return
        await _respond(send, 200, jsontext.dumps(health(self.api.ctx)), request_id, None)

    async def _logs(
        self,
        scope: Scope,
        send: Send,
        method: str,
        raw_path: str,
        headers: dict[bytes, bytes],
        job: str,
        request_id: str,
    ) -> None:
        """``GET /batchd/v1/jobs/{job}/logs``: see :mod:`batchd.api.logs`."""
        try:
            api = self._api()
            if self.verifier is not None:
                api.authenticate(method, raw_path, scope, headers, b"")
            query_string: bytes = scope.get("query_string", b"")
            query: Mapping[str, str] = (
                dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
                if query_string
                else {}
            )
            chunk = await read_logs(api.ctx, job, query)
        except AuthFailure as failure:
            await _respond(send, failure.status, _failure_body(failure), request_id, failure.code)
            return
        except BatchdError as err:
            wire = wire_error(err)
            await _respond(send, wire.status, wire.body(), request_id, wire.code)
            return
        except Exception:  # a bug of ours: log it, and answer as AWS does
            log.exception("internal error in request %s %s", method, scope["path"])
            wire = wire_error(ServerError(f"Internal error; request id {request_id}"))
            await _respond(send, wire.status, wire.body(), request_id, wire.code)
            return
        response_headers = [
            (b"x-batchd-next-offset", b"%d" % chunk.next_offset),
            (b"x-batchd-job-status", chunk.job_status.encode("latin-1")),
            (b"content-length", b"%d" % len(chunk.body)),
            (b"content-type", _TEXT),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": response_headers})
        await send({"type": "http.response.body", "body": chunk.body})

    async def _not_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":  # refused: the server answers the handshake with 403
            await send({"type": "websocket.close", "code": 1000, "reason": ""})
        else:
            raise RuntimeError(f"batchd serves HTTP only, not ASGI {kind!r} scopes")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Open the context at startup and close it at shutdown, reporting failures as
        Starlette does: the traceback as the message of ``startup.failed``/``shutdown.failed``.
        """
        started = False
        await receive()  # lifespan.startup
        try:
            ctx, close = await self._ctx_factory()
            try:
                self.api = BatchApi(ctx, self.verifier)
                await send({"type": "lifespan.startup.complete"})
                started = True
                await receive()  # lifespan.shutdown
            finally:
                await close()
        except BaseException as err:
            message = str(err) if isinstance(err, StartupError) else traceback.format_exc()
            failed = "lifespan.shutdown.failed" if started else "lifespan.startup.failed"
            await send({"type": failed, "message": message})
            raise
        await send({"type": "lifespan.shutdown.complete"})


def _failure_body(failure: AuthFailure) -> bytes:
    return WireError(failure.status, failure.code, failure.message).body()


async def _method_not_allowed(send: Send, allow: bytes) -> None:
    body = b"Method Not Allowed"
    headers = [
        (b"allow", allow),
        (b"content-length", b"%d" % len(body)),
        (b"content-type", _TEXT),
    ]
    await send({"type": "http.response.start", "status": 405, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(
    ctx_factory: ContextFactory,
    verifier: SigV4Verifier | None = None,
    request_log: bool = False,
) -> BatchdApp:
    """The app; ``ctx_factory`` opens the store and runtime and returns a closer for them.

    ``request_log``: one line per request on the ``batchd.requests`` logger.
    """
    return BatchdApp(ctx_factory, verifier, request_log)

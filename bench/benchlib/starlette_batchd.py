"""batchd under Starlette, as it was served before the bare ASGI app (b514ae7): bench only.

``python -m bench.benchlib.starlette_batchd --port P --data-dir D [--tick-seconds T]`` serves
the routing batchd had with Starlette (a logs route, then one catch-all route, the runtime
opened by the lifespan) around today's ``BatchApi``: the same dispatch (route by the model,
validate, handler, serializer), the same context factory as ``batchd serve`` and the same
uvicorn configuration, so only the HTTP layer differs. Starlette is not a dependency of batchd:
``pip install --target /tmp/starlette-lib starlette`` and put that directory on PYTHONPATH.

``time_layers`` times the two HTTP layers alone, in process: each app called as uvicorn calls
it, with a stand-in for ``BatchApi`` whose answer costs nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
import time
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchd.api.app import _MAX_BODY, BatchApi, BatchdApp, _request_id
from batchd.api.auth import AuthFailure
from batchd.api.logs import read_logs
from batchd.api.requests import TooLarge
from batchd.errors import BatchdError, ServerError
from batchd.protocol.errors import WireError, wire_error
from batchd.protocol.model import router
from batchd.settings import Settings
from batchd.wiring import build_app
from batchd.workers import bound_socket

__all__ = ["StarletteBatchd", "main", "time_layers"]


class StarletteBatchd:
    """The pre-b514ae7 Starlette routing (a logs route, then a catch-all route) around today's
    ``BatchApi`` and today's wiring: only the HTTP layer differs from ``batchd serve``."""

    METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")

    def __init__(self, settings: Settings) -> None:
        # build_app's context factory is what `batchd serve` opens at startup (store, runtime,
        # garbage-collector tuning); the bare app built here only lends it.
        bare = build_app(settings)
        self._factory, self._verifier = bare._ctx_factory, bare.verifier
        self._api: BatchApi | None = None

    def app(self) -> Starlette:
        routes = [
            Route("/batchd/v1/jobs/{job}/logs", self.logs, methods=["GET"]),
            Route("/{path:path}", self.endpoint, methods=list(self.METHODS)),
        ]
        return Starlette(routes=routes, lifespan=self._lifespan)

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        ctx, close = await self._factory()
        self._api = BatchApi(ctx, self._verifier)
        try:
            yield
        finally:
            await close()

    def _authenticate(self, api: BatchApi, request: Request, body: bytes) -> None:
        headers = {k.encode("latin-1"): v.encode("latin-1") for k, v in request.headers.items()}
        api.authenticate(request.method, _raw_path(request), request.scope, headers, body)

    async def endpoint(self, request: Request) -> Response:
        api, rid = self._api, _request_id()
        assert api is not None
        target = request.headers.get("x-amz-target")
        service = "sagemaker" if target and request.url.path == "/" else "batch"
        media = "application/x-amz-json-1.1" if service == "sagemaker" else "application/json"
        try:
            body = await _read_body(request)
            if api.verifier is not None:
                self._authenticate(api, request, body)
            if service == "sagemaker":
                result = await api.sagemaker(request.method, target or "", body)
            else:
                query = request.scope.get("query_string", b"")
                result = await api.batch(request.method, _raw_path(request), query, body)
            return _respond(200, result, rid, media=media)
        except AuthFailure as failure:
            wire = WireError(failure.status, failure.code, failure.message)
        except BatchdError as err:
            wire = wire_error(err, service)
        except Exception:  # as batchd answers a bug of its own
            wire = wire_error(ServerError(f"Internal error; request id {rid}"), service)
        return _respond(wire.status, wire.body(), rid, wire.code, media)

    async def logs(self, request: Request) -> Response:
        api, rid = self._api, _request_id()
        assert api is not None
        try:
            if api.verifier is not None:
                self._authenticate(api, request, b"")
            job = urllib.parse.unquote(request.path_params["job"])
            chunk = await read_logs(api.ctx, job, dict(request.query_params))
        except BatchdError as err:
            wire = wire_error(err)
            return _respond(wire.status, wire.body(), rid, wire.code)
        headers = {
            "x-batchd-next-offset": str(chunk.next_offset),
            "x-batchd-job-status": chunk.job_status,
        }
        return Response(chunk.body, 200, headers, "text/plain; charset=utf-8")


def _respond(status: int, body: bytes, rid: str, error: str = "", media: str = "") -> Response:
    headers = {"x-amzn-RequestId": rid}
    if error:
        headers["x-amzn-ErrorType"] = error
    return Response(body, status, headers, media or "application/json")


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > _MAX_BODY:
        raise TooLarge(f"Request body of {declared} bytes exceeds the limit of {_MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > _MAX_BODY:
            raise TooLarge(f"Request body exceeds the limit of {_MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _raw_path(request: Request) -> str:
    # Routed on the raw path, as the bare app is: a job ARN arrives with its slashes as %2F.
    raw: bytes = request.scope.get("raw_path") or b""
    return raw.decode("latin-1").split("?", 1)[0] or request.url.path


def main(argv: Sequence[str]) -> int:
    """Serve until SIGTERM, as ``batchd serve`` runs uvicorn (see batchd.workers.serve)."""
    parser = argparse.ArgumentParser(prog="starlette_batchd")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--tick-seconds", type=float, default=1.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level="WARNING", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings(
        port=args.port, data_dir=args.data_dir, backend="fake", tick_seconds=args.tick_seconds
    )
    sock = bound_socket(settings.host, settings.port, shared=False)
    config = uvicorn.Config(  # the configuration of batchd.workers.serve
        StarletteBatchd(settings).app(),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return 0 if server.started else 3


class _FixedApi:
    """Stands in for ``BatchApi``: a fixed answer, so only the HTTP layer around it is timed."""

    verifier = None

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.router = router()  # the bare app labels each request's metrics by operation

    async def batch(self, method: str, raw_path: str, query: bytes, body: bytes) -> bytes:
        return self.answer


def _scope(raw: bytes) -> tuple[dict[str, Any], bytes]:
    """The ASGI scope uvicorn builds for one raw HTTP/1.1 request, and its body."""
    head, _, body = raw.partition(b"\r\n\r\n")
    first, *lines = head.split(b"\r\n")
    method, target, _ = first.split(b" ")
    path, _, query = target.partition(b"?")
    headers = [
        (name.strip().lower(), value.strip())
        for name, _, value in (line.partition(b":") for line in lines)
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 40000),
        "scheme": "http",
        "method": method.decode("ascii"),
        "root_path": "",
        "path": urllib.parse.unquote(path.decode("ascii")),
        "raw_path": path,
        "query_string": query,
        "headers": headers,
    }
    return scope, body


async def _per_call_us(app: Any, raw: bytes, calls: int) -> float:
    scope, body = _scope(raw)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(dict(scope), receive, send)
    if sent[0].get("status") != 200:
        raise RuntimeError(f"the layer did not answer 200: {sent}")
    started = time.process_time()
    for _ in range(calls):
        sent.clear()
        await app(dict(scope), receive, send)  # uvicorn builds a fresh scope per request
    return (time.process_time() - started) / calls * 1e6


def time_layers(raw: bytes, calls: int, reps: int) -> dict[str, list[float]]:
    """CPU µs per call of each layer alone (alternating, ``reps`` times ``calls`` calls)."""
    answer = b'{"jobId":"00000000-0000-4000-8000-000000000001"}'

    async def unused() -> Any:
        raise AssertionError("the layer alone opens no context")

    bare = BatchdApp(unused)
    bare.api = _FixedApi(answer)  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as tmp:
        layer = StarletteBatchd(Settings(data_dir=Path(tmp), backend="fake"))
    layer._api = _FixedApi(answer)  # type: ignore[assignment]
    apps: dict[str, Any] = {"bare": bare, "Starlette": layer.app()}
    found: dict[str, list[float]] = {name: [] for name in apps}
    for rep in range(reps):
        order = list(apps) if rep % 2 == 0 else list(reversed(apps))
        for name in order:
            found[name].append(asyncio.run(_per_call_us(apps[name], raw, calls)))
    return found


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""batchd under Starlette, as it was served before the bare ASGI app (b514ae7): bench only.

``python -m bench.benchlib.starlette_batchd --port P --data-dir D [--tick-seconds T]`` serves
the routing batchd had with Starlette (a logs route, then one catch-all route, the runtime
opened by the lifespan) around today's ``BatchApi``: the same dispatch (route by the model,
validate, handler, serializer), the same context factory as ``batchd serve`` and the same
uvicorn configuration, so only the HTTP layer differs. Starlette is not a dependency of batchd:
``pip install --target /tmp/starlette-lib starlette`` and put that directory on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchd.api.app import _MAX_BODY, BatchApi, _request_id
from batchd.api.auth import AuthFailure
from batchd.api.logs import read_logs
from batchd.api.requests import TooLarge
from batchd.errors import BatchdError, ServerError
from batchd.protocol.errors import WireError, wire_error
from batchd.settings import Settings
from batchd.wiring import build_app
from batchd.workers import bound_socket

__all__ = ["StarletteBatchd", "main"]


class StarletteBatchd:
    """The pre-b514ae7 Starlette routing (a logs route, then a catch-all route) around today's
    ``BatchApi`` and today's wiring: only the HTTP layer differs from ``batchd serve``."""

    METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")

    def __init__(self, settings: Settings) -> None:
        # build_app's context factory is what `batchd serve` opens at startup (store, runtime,
        # garbage-collector tuning); the bare app built here only lends it.
        bare = build_app(settings)
        self._factory, self._verifier, self._data_dir = (
            bare._ctx_factory,
            bare.verifier,
            bare.data_dir,
        )
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
            chunk = await read_logs(api.ctx, self._data_dir, job, dict(request.query_params))
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

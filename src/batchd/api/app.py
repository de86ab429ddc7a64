"""One generic endpoint: route by the model, validate, run the operation, serialize."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchd.api.auth import AuthFailure, SigV4Verifier
from batchd.api.logs import read_logs
from batchd.api.requests import TooLarge, parse_params, read_body
from batchd.errors import BatchdError, InvalidParameter, ServerError, Unsupported
from batchd.operations import (  # noqa: F401  (registers the handlers)
    environments,
    jobs,
    policies,
    queues,
    quota_shares,
    sagemaker,
    snapshot,
    tags,
)
from batchd.operations.context import Context
from batchd.operations.registry import HANDLERS
from batchd.protocol.errors import WireError, wire_error
from batchd.protocol.model import router, service_model
from batchd.protocol.rules import BODY_LIMITS, DEFAULT_BODY_LIMIT
from batchd.protocol.serialize import serialize
from batchd.protocol.validate import validate

__all__ = ["create_app"]

log = logging.getLogger("batchd.api")

_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
_MAX_BODY = max([DEFAULT_BODY_LIMIT, *BODY_LIMITS.values()])


_AMZ_JSON = "application/x-amz-json-1.1"


def _json(
    status: int,
    body: bytes,
    request_id: str,
    error: str | None = None,
    media_type: str = "application/json",
) -> Response:
    headers = {"x-amzn-RequestId": request_id}
    if error:
        headers["x-amzn-ErrorType"] = error
    return Response(body, status_code=status, media_type=media_type, headers=headers)


class BatchApi:
    def __init__(self, ctx: Context, verifier: SigV4Verifier | None = None) -> None:
        self.ctx = ctx
        self.router = router()
        self.verifier = verifier

    async def __call__(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        target = request.headers.get("x-amz-target")
        service = "sagemaker" if target and request.url.path == "/" else "batch"
        media = _AMZ_JSON if service == "sagemaker" else "application/json"
        try:
            body = await read_body(request, _MAX_BODY)
            if self.verifier is not None:
                self.authenticate(request, body)
            if service == "sagemaker":
                result = await self._sagemaker(request, target or "", body)
            else:
                result = await self._handle(request, body)
            return _json(200, result, request_id, media_type=media)
        except AuthFailure as failure:
            wire = WireError(failure.status, failure.code, failure.message)
            return _json(wire.status, wire.body(), request_id, wire.code, media)
        except BatchdError as err:
            wire = wire_error(err, service)
            return _json(wire.status, wire.body(), request_id, wire.code, media)
        except Exception:  # a bug of ours: log it, and answer as AWS does
            log.exception("internal error in request %s %s", request.method, request.url.path)
            wire = wire_error(ServerError(f"Internal error; request id {request_id}"), service)
            return _json(wire.status, wire.body(), request_id, wire.code, media)

    def authenticate(self, request: Request, body: bytes) -> None:
        assert self.verifier is not None
        raw = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
        self.verifier.verify(
            request.method,
            raw.split("?", 1)[0],
            request.scope.get("query_string", b"").decode("latin-1"),
            request.headers,
            body,
            self.ctx.clock.now_utc(),
        )

    async def _sagemaker(self, request: Request, target: str, body: bytes) -> bytes:
        """SageMaker's JSON 1.1 protocol: ``POST /`` with ``X-Amz-Target: SageMaker.<Op>``."""
        prefix, _, name = target.partition(".")
        model = service_model("sagemaker")
        handler = HANDLERS.get(sagemaker.SAGEMAKER + name)
        if request.method != "POST" or prefix != "SageMaker" or handler is None:
            raise Unsupported(
                f"{target} is not supported; batchd answers SageMaker DescribeTrainingJob, "
                "ListTrainingJobs, StopTrainingJob and ListTags for the jobs it runs"
            )
        op = model.operation_model(name)
        params = parse_params(op, {}, [], body or b"{}")
        validate(op.name, op.input_shape, params)
        result = await handler(self.ctx, params)
        return json.dumps(serialize(op.output_shape, result), separators=(",", ":")).encode()

    async def _handle(self, request: Request, body: bytes) -> bytes:
        raw_path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
        raw_path = raw_path.split("?", 1)[0]
        found = self.router.match(request.method, raw_path)
        if found is None:
            if self.router.path_exists(raw_path):
                raise InvalidParameter(f"Method {request.method} is not allowed on {raw_path}")
            raise InvalidParameter(
                f"Unknown operation: {request.method} {raw_path[:200]}"
                + (" (with a body)" if body else "")
            )
        op, labels = found
        handler = HANDLERS.get(op.name)
        limit = BODY_LIMITS.get(op.name, DEFAULT_BODY_LIMIT)
        if len(body) > limit:
            raise TooLarge(f"Request body of {len(body)} bytes exceeds the limit of {limit} bytes")
        if handler is None:
            raise Unsupported(
                f"{op.name} is not supported by batchd, which implements AWS Batch service jobs "
                "(SAGEMAKER_TRAINING queues) only"
            )
        params = parse_params(op, labels, request.query_params.multi_items(), body)
        validate(op.name, op.input_shape, params)
        result = await handler(self.ctx, params)
        return json.dumps(serialize(op.output_shape, result), separators=(",", ":")).encode()


def create_app(
    ctx_factory: Callable[[], Awaitable[tuple[Context, Callable[[], Awaitable[None]]]]],
    verifier: SigV4Verifier | None = None,
    data_dir: Path | None = None,
) -> Starlette:
    """The app; ``ctx_factory`` opens the store and runtime and returns a closer for them."""
    holder: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        ctx, close = await ctx_factory()
        holder["api"] = BatchApi(ctx, verifier)
        try:
            yield
        finally:
            await close()

    async def endpoint(request: Request) -> Response:
        api: BatchApi = holder["api"]
        return await api(request)

    async def logs(request: Request) -> Response:
        api: BatchApi = holder["api"]
        request_id = str(uuid.uuid4())
        try:
            if api.verifier is not None:
                api.authenticate(request, b"")
            return await read_logs(api.ctx, data_dir or Path("."), request)
        except AuthFailure as failure:
            wire = WireError(failure.status, failure.code, failure.message)
            return _json(wire.status, wire.body(), request_id, wire.code)
        except BatchdError as err:
            wire = wire_error(err)
            return _json(wire.status, wire.body(), request_id, wire.code)

    routes = [
        Route("/batchd/v1/jobs/{job}/logs", logs, methods=["GET"]),
        Route("/{path:path}", endpoint, methods=_METHODS),
    ]
    return Starlette(routes=routes, lifespan=lifespan)

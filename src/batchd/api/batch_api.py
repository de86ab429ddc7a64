"""From a decoded request to the JSON answer of its operation, for each wire protocol."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from batchd.api.auth import SigV4Verifier
from batchd.api.requests import TooLarge, parse_params
from batchd.errors import InvalidParameter, Unsupported
from batchd.operations import logs, sagemaker
from batchd.operations.context import Context
from batchd.operations.registry import HANDLERS
from batchd.protocol.model import Router, router, service_model
from batchd.protocol.rules import BODY_LIMITS, DEFAULT_BODY_LIMIT
from batchd.protocol.serialize import to_json
from batchd.protocol.validate import validate

__all__ = ["BatchApi"]

Scope = MutableMapping[str, Any]


class BatchApi:
    """From a decoded request to the JSON answer of its operation."""

    def __init__(self, ctx: Context, verifier: SigV4Verifier | None = None) -> None:
        self.ctx = ctx
        self.router: Router = router()
        self.verifier = verifier

    def authenticate(
        self, method: str, raw_path: str, scope: Scope, headers: dict[bytes, bytes], body: bytes
    ) -> None:
        assert self.verifier is not None
        self.verifier.verify(
            method,
            raw_path,
            scope.get("query_string", b"").decode("latin-1"),
            {k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items()},
            body,
            self.ctx.clock.now_utc(),
        )

    async def sagemaker(self, method: str, target: str, body: bytes) -> bytes:
        """SageMaker's JSON 1.1 protocol: ``POST /`` with ``X-Amz-Target: SageMaker.<Op>``."""
        prefix, _, name = target.partition(".")
        model = service_model("sagemaker")
        handler = HANDLERS.get(sagemaker.SAGEMAKER + name)
        if method != "POST" or prefix != "SageMaker" or handler is None:
            raise Unsupported(
                f"{target} is not supported; batchd answers SageMaker DescribeTrainingJob, "
                "ListTrainingJobs, StopTrainingJob and ListTags for the jobs it runs"
            )
        op = model.operation_model(name)
        params = parse_params(op, {}, [], body or b"{}")
        validate(op.name, op.input_shape, params)
        result = await handler(self.ctx, params)
        return to_json(op.output_shape, result)

    async def cloudwatch_logs(self, method: str, target: str, body: bytes) -> bytes:
        """CloudWatch Logs' JSON 1.1: ``X-Amz-Target: Logs_20140328.<Op>`` (read-only)."""
        name = target.partition(".")[2]
        handler = HANDLERS.get(logs.LOGS + name)
        if method != "POST" or handler is None:
            raise Unsupported(
                f"{target} is not supported; batchd answers CloudWatch Logs DescribeLogGroups, "
                "DescribeLogStreams, GetLogEvents and FilterLogEvents over training job output"
            )
        op = service_model("logs").operation_model(name)
        params = parse_params(op, {}, [], body or b"{}")
        validate(op.name, op.input_shape, params)
        result = await handler(self.ctx, params)
        return to_json(op.output_shape, result)

    async def batch(self, method: str, raw_path: str, query_string: bytes, body: bytes) -> bytes:
        found = self.router.match(method, raw_path)
        if found is None:
            if self.router.path_exists(raw_path):
                raise InvalidParameter(f"Method {method} is not allowed on {raw_path}")
            raise InvalidParameter(
                f"Unknown operation: {method} {raw_path[:200]}" + (" (with a body)" if body else "")
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
        query = (
            parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
            if query_string
            else []
        )
        params = parse_params(op, labels, query, body)
        validate(op.name, op.input_shape, params)
        result = await handler(self.ctx, params)
        return to_json(op.output_shape, result)

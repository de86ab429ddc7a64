"""``GET /batchd/v1/jobs/{job}/logs``: an attempt's process output, by byte offset.

Not an AWS API (SageMaker sends logs to CloudWatch); it serves ``batchd logs``. With one host
the offset walks that host's stream, so ``--follow`` can poll; with several, the first
mebibyte of each is joined under ``==> algo-N <==`` headers (``host`` pages through one).
The backend that ran the attempt keeps the output; ``Context.logs`` reaches it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from batchd.errors import InvalidParameter
from batchd.operations.context import Context
from batchd.operations.jobs import find_job

__all__ = ["LogChunk", "read_logs"]

_MAX_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class LogChunk:
    body: bytes
    next_offset: int
    job_status: str


def _int(query: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise InvalidParameter(f"{name} must be a non-negative integer, got {raw[:20]!r}")
    return int(raw)


async def read_logs(ctx: Context, job_ref: str, query: Mapping[str, str]) -> LogChunk:
    """``job_ref`` is the job id or ARN (percent-decoded); ``query`` the last value per name."""
    job = await find_job(ctx, job_ref)
    attempt = _int(query, "attempt", None)
    offset = _int(query, "offset", 0) or 0
    # (training job name, the backend that ran it when the record says so)
    runs: list[tuple[str, str | None]] = [
        (a.service_resource_id.value.rsplit("/", 1)[-1], None) for a in job.attempts
    ]
    if job.current is not None:
        runs.append((job.current.training_job_name, job.current.backend))
    if not runs:
        raise InvalidParameter(f"Service job {job.job_id} has not started a training job yet")
    if attempt is not None and not 1 <= attempt <= len(runs):
        raise InvalidParameter(f"attempt must be between 1 and {len(runs)}")
    name, backend = runs[(attempt or len(runs)) - 1]
    hosts = await ctx.logs.log_hosts(name, backend)
    host = query.get("host")
    if host is not None:
        hosts = [each for each in hosts if each == host]
    if len(hosts) == 1:
        body = await ctx.logs.read_log(name, backend, hosts[0], offset, _MAX_CHUNK)
        return LogChunk(body, offset + len(body), job.status.value)
    parts = []
    for each in hosts:
        parts.append(f"==> {each} <==\n".encode())
        parts.append(await ctx.logs.read_log(name, backend, each, 0, _MAX_CHUNK))
    return LogChunk(b"".join(parts), offset, job.status.value)

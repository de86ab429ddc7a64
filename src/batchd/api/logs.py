"""``GET /batchd/v1/jobs/{job}/logs``: an attempt's process output, by byte offset.

Not an AWS API (SageMaker sends logs to CloudWatch); it serves ``batchd logs``. With one host
the offset walks that host's file, so ``--follow`` can poll; with several, hosts are joined
under ``==> algo-N <==`` headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from batchd.backends.local.workspace import attempt_log_files
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


async def read_logs(
    ctx: Context, data_dir: Path, job_ref: str, query: Mapping[str, str]
) -> LogChunk:
    """``job_ref`` is the job id or ARN (percent-decoded); ``query`` the last value per name."""
    job = await find_job(ctx, job_ref)
    attempt = _int(query, "attempt", None)
    offset = _int(query, "offset", 0) or 0
    names = [a.service_resource_id.value.rsplit("/", 1)[-1] for a in job.attempts]
    if job.current is not None:
        names.append(job.current.training_job_name)
    if not names:
        raise InvalidParameter(f"Service job {job.job_id} has not started a training job yet")
    if attempt is not None and not 1 <= attempt <= len(names):
        raise InvalidParameter(f"attempt must be between 1 and {len(names)}")
    files = attempt_log_files(data_dir, names[(attempt or len(names)) - 1])
    host = query.get("host")
    if host is not None:
        files = [f for f in files if f.stem == host]
    body = b""
    if len(files) == 1:
        with files[0].open("rb") as handle:
            handle.seek(offset)
            body = handle.read(_MAX_CHUNK)
        offset += len(body)
    else:
        body = b"".join(f"==> {f.stem} <==\n".encode() + f.read_bytes() for f in files)
    return LogChunk(body, offset, job.status.value)

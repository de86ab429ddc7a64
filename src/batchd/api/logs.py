"""``GET /batchd/v1/jobs/{job}/logs``: an attempt's process output, by byte offset.

Not an AWS API (SageMaker sends logs to CloudWatch); it serves ``batchd logs``. With one host
the offset walks that host's file, so ``--follow`` can poll; with several, hosts are joined
under ``==> algo-N <==`` headers.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from batchd.backends.local.workspace import attempt_log_files
from batchd.errors import InvalidParameter
from batchd.operations.context import Context
from batchd.operations.jobs import find_job

__all__ = ["read_logs"]

_MAX_CHUNK = 1024 * 1024


def _int(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise InvalidParameter(f"{name} must be a non-negative integer, got {raw[:20]!r}")
    return int(raw)


async def read_logs(ctx: Context, data_dir: Path, request: Request) -> Response:
    job = await find_job(ctx, request.path_params["job"])
    attempt = _int(request, "attempt", None)
    offset = _int(request, "offset", 0) or 0
    names = [a.service_resource_id.value.rsplit("/", 1)[-1] for a in job.attempts]
    if job.current is not None:
        names.append(job.current.training_job_name)
    if not names:
        raise InvalidParameter(f"Service job {job.job_id} has not started a training job yet")
    if attempt is not None and not 1 <= attempt <= len(names):
        raise InvalidParameter(f"attempt must be between 1 and {len(names)}")
    files = attempt_log_files(data_dir, names[(attempt or len(names)) - 1])
    host = request.query_params.get("host")
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
    headers = {"x-batchd-next-offset": str(offset), "x-batchd-job-status": job.status.value}
    return Response(body, media_type="text/plain; charset=utf-8", headers=headers)

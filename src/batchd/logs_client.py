"""``batchd logs``: read a job's training output from a running server over HTTP."""

from __future__ import annotations

import contextlib
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from batchd import jsontext

__all__ = ["print_logs"]

_DONE = ("SUCCEEDED", "FAILED")


def _get(url: str) -> tuple[bytes, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return answer.read(), {k.lower(): v for k, v in answer.headers.items()}


def print_logs(
    endpoint: str, job_id: str, attempt: int | None, host: str | None, follow: bool
) -> int:
    base = f"{endpoint.rstrip('/')}/batchd/v1/jobs/{urllib.parse.quote(job_id, safe='')}/logs"
    query: dict[str, str] = {}
    if attempt is not None:
        query["attempt"] = str(attempt)
    if host is not None:
        query["host"] = host
    offset = 0
    try:
        while True:
            url = base + "?" + urllib.parse.urlencode({**query, "offset": str(offset)})
            body, headers = _get(url)
            sys.stdout.buffer.write(body)
            sys.stdout.flush()
            offset = int(headers.get("x-batchd-next-offset", offset))
            if not follow or headers.get("x-batchd-job-status") in _DONE:
                return 0
            time.sleep(1)
    except urllib.error.HTTPError as err:
        detail = err.read().decode(errors="replace")
        with contextlib.suppress(ValueError):
            detail = jsontext.loads(detail).get("message", detail)
        print(f"batchd logs: {detail}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as err:
        print(f"batchd logs: cannot reach {endpoint}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130

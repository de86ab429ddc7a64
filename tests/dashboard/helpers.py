"""Reading the dashboard as a browser does: HTML over real HTTP."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.support.server import RunningServer, payload

HTML = {"accept": "text/html,application/xhtml+xml"}


def page(server: RunningServer, path: str, **kwargs: Any) -> httpx.Response:
    headers = {**HTML, **kwargs.pop("headers", {})}
    return httpx.get(server.url + path, headers=headers, timeout=30, **kwargs)


def texts(html: str, element_id: str) -> str:
    """The text of the element with ``element_id`` (tags dropped, spaces collapsed)."""
    start = html.index(f'id="{element_id}"')
    start = html.index(">", start) + 1
    tag = html[html.rindex("<", 0, start) + 1 :].split(None, 1)[0].rstrip(">")
    depth, i, end = 1, start, start
    pattern = re.compile(rf"<(/?){tag}\b")
    while depth:
        found = pattern.search(html, i)
        assert found is not None, f"unclosed <{tag}> {element_id}"
        depth += -1 if found[1] else 1
        i, end = found.end(), found.start()
    inner = html[start:end]
    return " ".join(re.sub(r"<[^>]+>", " ", inner).split())


def row_ids(html: str, prefix: str) -> list[str]:
    return re.findall(rf'<tr id="{prefix}([^"]+)"', html)


def submit(batch: Any, name: str, queue: str = "q", instances: int = 1, **env: str) -> str:
    body = payload(instances, environment={"BATCHD_FAKE_DURATION_SECONDS": "600", **env})
    out = batch.submit_service_job(
        jobName=name,
        jobQueue=queue,
        serviceJobType="SAGEMAKER_TRAINING",
        serviceRequestPayload=body,
    )
    return str(out["jobId"])


def status(batch: Any, job_id: str) -> str:
    return str(batch.describe_service_job(jobId=job_id)["status"])

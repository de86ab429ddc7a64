"""Read a finished simulation's jobs from its store: ``jobs.jsonl`` and what the summary and
the plots need, in one pass of keyset pages so that memory does not grow with the jobs kept
(only each share's waits, 8 bytes a job, for their percentiles)."""

from __future__ import annotations

import math
from array import array
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Connection, Row, Select, select

from batchd import jsontext
from batchd.simulate.engine import START_MS, Simulated
from batchd.storage.schema import jobs

__all__ = ["BINS", "Results", "collect"]

_PAGE = 2000
BINS = 300  # time bins of the plots and of borrowed/lent accounting


@dataclass
class Series:
    """Per-bin averages over the simulated time: instances in use, jobs waiting."""

    bin_seconds: float
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, start: float, stop: float, amount: float) -> None:
        """``amount`` held from ``start`` to ``stop`` (seconds), spread over the bins."""
        row = self.values.setdefault(key, [0.0] * BINS)
        if stop <= start:
            return
        width = self.bin_seconds
        first, last = int(start // width), min(int(stop // width), BINS - 1)
        for index in range(first, last + 1):
            low, high = max(start, index * width), min(stop, (index + 1) * width)
            if high > low:
                row[index] += amount * (high - low) / width


@dataclass
class Group:
    """One queue and share (or quota share)."""

    queue: str
    share: str | None
    kind: str  # "shareIdentifier", "quotaShareName" or "none"
    jobs: int = 0
    waits: array[float] = field(default_factory=lambda: array("d"))
    instance_seconds: float = 0.0
    preemptions: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


@dataclass
class Results:
    end_seconds: float
    groups: dict[tuple[str, str | None], Group]
    capacity: Series  # key: "queue/share"
    depth: Series  # key: queue


def _seconds(ms: Any) -> float | None:
    return None if ms is None else (int(ms) - START_MS) / 1000


def _instances(doc: dict[str, Any]) -> float:
    # One unit per job (instances, or instances of its type): its first usage is its count.
    for usage in doc.get("capacityUsage") or ():
        return float(usage.get("quantity", 1))
    payload = jsontext.loads(doc.get("serviceRequestPayload") or "{}")
    return float((payload.get("ResourceConfig") or {}).get("InstanceCount", 1))


def _all(stmt: Select[Any], conn: Connection) -> Sequence[Row[Any]]:
    return conn.execute(stmt).all()


async def _documents(simulated: Simulated) -> AsyncIterator[dict[str, Any]]:
    """Every job in submission order, a page at a time (keyset on seq)."""
    after = -1
    while True:
        stmt = (
            select(jobs.c.seq, jobs.c.status, jobs.c.doc)
            .where(jobs.c.seq > after)
            .order_by(jobs.c.seq)
            .limit(_PAGE)
        )
        rows = await simulated.store.db.read(partial(_all, stmt))
        for row in rows:
            doc: dict[str, Any] = jsontext.loads(row.doc)
            doc["status"] = row.status
            yield doc
        if len(rows) < _PAGE:
            return
        after = rows[-1].seq


def _record(doc: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[float, float]]]:
    """The jobs.jsonl line of a job, and the (start, stop) of each of its attempts."""
    spans: list[tuple[float, float]] = []
    summary = doc.get("preemptionSummary") or {}
    preempted = summary.get("recentPreemptedAttempts") or []
    for attempt in [*preempted, *(doc.get("attempts") or [])]:
        start, stop = _seconds(attempt.get("startedAt")), _seconds(attempt.get("stoppedAt"))
        if start is not None:
            spans.append((start, stop if stop is not None else start))
    queue = str(doc["jobQueue"]).rsplit("/", 1)[-1]
    record: dict[str, Any] = {
        "jobName": doc["jobName"],
        "jobQueue": queue,
        "status": doc["status"],
        "submittedAt": _seconds(doc["createdAt"]),
        "startedAt": min((s for s, _ in spans), default=None),
        "stoppedAt": _seconds(doc.get("stoppedAt")),
        "attempts": len(doc.get("attempts") or []),  # as Batch counts: preemptions are not
        "preemptions": int(summary.get("preemptedAttemptCount", 0)),
    }
    if doc.get("shareIdentifier") is not None:
        record["shareIdentifier"] = doc["shareIdentifier"]
    if doc.get("quotaShareName") is not None:
        record["quotaShareName"] = doc["quotaShareName"]
    return record, spans


async def collect(simulated: Simulated, jobs_out: BinaryIO) -> Results:
    """Write jobs.jsonl to ``jobs_out`` and gather what the summary and plots need."""
    end = max((simulated.end_ms - START_MS) / 1000, 1.0)
    width = end / BINS * (1 + 1e-9)
    results = Results(end, {}, Series(width), Series(width))
    async for doc in _documents(simulated):
        record, spans = _record(doc)
        jobs_out.write(jsontext.dumps(record, sort_keys=True) + b"\n")
        share = record.get("shareIdentifier", record.get("quotaShareName"))
        kind = next((k for k in ("shareIdentifier", "quotaShareName") if k in record), "none")
        key = (record["jobQueue"], share)
        group = results.groups.get(key)
        if group is None:
            group = results.groups[key] = Group(record["jobQueue"], share, kind)
        group.jobs += 1
        group.preemptions += record["preemptions"]
        group.statuses[record["status"]] = group.statuses.get(record["status"], 0) + 1
        instances = _instances(doc)
        label = f"{record['jobQueue']}/{share or '-'}"
        for start, stop in spans:
            group.instance_seconds += (stop - start) * instances
            results.capacity.add(label, start, stop, instances)
        submitted = record["submittedAt"]
        started = record["startedAt"]
        if started is not None:
            group.waits.append(round(started - submitted, 3))
        waited_until = started if started is not None else record["stoppedAt"] or end
        results.depth.add(record["jobQueue"], submitted, waited_until, 1.0)
    return results


def percentile(values: array[float], fraction: float) -> float | None:
    """Nearest-rank percentile of sorted ``values``."""
    if not values:
        return None
    rank = max(1, math.ceil(fraction * len(values)))
    return values[rank - 1]


def write_jobs(path: Path) -> BinaryIO:
    return path.open("wb")

"""The log streams of SageMaker training jobs as CloudWatch Logs names them.

One group, ``/aws/sagemaker/TrainingJobs``; one stream per host of each training job,
``<TrainingJobName>/algo-<n>-<epoch seconds of the attempt's start>``. A stream exists from
the moment the attempt starts (its training job record), output or not: SDK v3 shows nothing
until it finds one stream per host. Its events come from the backend that ran the attempt.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batchd.domain.training import LogEvent, TrainingJob
from batchd.errors import InvalidParameter, NotFound
from batchd.operations.context import Context

__all__ = [
    "GROUP",
    "Stream",
    "check_group",
    "first_at_or_after",
    "list_streams",
    "read",
    "stream_named",
    "streams_of",
]

GROUP = "/aws/sagemaker/TrainingJobs"
_STREAM = re.compile(r"^(?P<job>[^/]+)/(?P<host>algo-[1-9][0-9]{0,5})-(?P<epoch>[0-9]+)$")


@dataclass(frozen=True)
class Stream:
    name: str
    record: TrainingJob
    host: str


def check_group(ctx: Context, params: Mapping[str, Any]) -> None:
    """The request names the one group, by ``logGroupName`` or ``logGroupIdentifier``."""
    name, identifier = params.get("logGroupName"), params.get("logGroupIdentifier")
    if name is not None and identifier is not None:
        raise InvalidParameter("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
    given = name if name is not None else identifier
    if given is None:
        raise InvalidParameter("Either logGroupName or logGroupIdentifier must be specified.")
    if given not in (GROUP, group_arn(ctx).removesuffix(":*")):
        raise NotFound("The specified log group does not exist.")


def group_arn(ctx: Context) -> str:
    arns = ctx.arns
    return f"arn:{arns.partition}:logs:{arns.region}:{arns.account_id}:log-group:{GROUP}:*"


def streams_of(record: TrainingJob) -> list[Stream]:
    epoch = record.creation_time // 1000
    name = record.training_job_name
    return [
        Stream(f"{name}/algo-{n}-{epoch}", record, f"algo-{n}")
        for n in range(1, record.instance_count + 1)
    ]


async def stream_named(ctx: Context, name: str) -> Stream:
    found = _STREAM.match(name)
    record = await ctx.store.training_jobs.get(found["job"]) if found else None
    if record is not None:
        for stream in streams_of(record):
            if stream.name == name:
                return stream
    raise NotFound("The specified log stream does not exist.")


async def list_streams(
    ctx: Context, prefix: str, after: str | None, descending: bool, want: int
) -> list[Stream]:
    """Up to ``want`` streams whose names start with ``prefix``, in name order, strictly after
    (before, when descending) the stream ``after``. Listed from the training job records by
    their primary key: a page costs one or a few index range reads, whatever the store holds.
    """
    job_prefix, slash, _ = prefix.partition("/")
    from_name = after.partition("/")[0] if after is not None else None
    found: list[Stream] = []
    while len(found) < want:
        batch = want - len(found) + 1
        if slash:
            record = await ctx.store.training_jobs.get(job_prefix)
            records = [record] if record is not None else []
        else:
            records = await ctx.store.training_jobs.by_name(
                prefix=job_prefix, from_name=from_name, descending=descending, limit=batch
            )
        for record in records:
            streams = [s for s in streams_of(record) if s.name.startswith(prefix)]
            streams.sort(key=lambda s: s.name, reverse=descending)
            for stream in streams:
                beyond = after is None or (
                    stream.name < after if descending else stream.name > after
                )
                if beyond:
                    found.append(stream)
        if slash or len(records) < batch:
            break
        from_name = records[-1].training_job_name
        after = found[-1].name if found else after
        # The last record is read again from its own name on: skip what was taken from it.
    return found[:want]


async def read(ctx: Context, stream: Stream, start: int, limit: int) -> tuple[list[LogEvent], int]:
    """Events ``start .. start+limit`` of the stream and its length. A backend that keeps no
    times gives 0, shown as the stream's creation time."""
    events, total = await ctx.logs.read_events(
        stream.record.training_job_name, None, stream.host, start, limit
    )
    created = stream.record.creation_time
    return [e if e.timestamp else LogEvent(created, e.message) for e in events], total


async def first_at_or_after(ctx: Context, stream: Stream, at: int, total: int) -> int:
    """The index of the first event stamped ``at`` or later (times never decrease within a
    stream): a binary search, so a client resuming by time in a long log reads a few events."""
    low, high = 0, total
    while low < high:
        middle = (low + high) // 2
        events, _ = await read(ctx, stream, middle, 1)
        if events and events[0].timestamp < at:
            low = middle + 1
        else:
            high = middle
    return low

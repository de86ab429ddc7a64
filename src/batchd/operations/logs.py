"""CloudWatch Logs, read-only, over the training jobs' output: what SDKs and the CLI tail.

``estimator.logs()`` (SageMaker SDK v2) lists a job's streams with DescribeLogStreams and
reads each with GetLogEvents, resuming by time; SDK v3 does the same but pages properly;
``aws logs tail`` uses FilterLogEvents only. Tokens follow CloudWatch's rules, which these
clients depend on: DescribeLogStreams sends ``nextToken`` only when more streams follow (SDK v2
repeats the call while one comes back), and GetLogEvents always returns both tokens, the
forward one unchanged at the end of a stream (SDK v3 stops on an empty page).
"""

from __future__ import annotations

import heapq
import re
import shlex
import zlib
from typing import Any

from batchd.domain.training import LogEvent
from batchd.errors import InvalidParameter, NotFound, Unsupported
from batchd.operations import log_streams
from batchd.operations.context import Context
from batchd.operations.log_streams import GROUP, Stream, check_group, first_at_or_after, read
from batchd.operations.registry import Params, operation
from batchd.protocol.tokens import decode_token, encode_token

__all__ = ["LOGS"]

LOGS = "logs:"

_MAX_EVENTS = 10_000
_MAX_BYTES = 1_048_576  # a page's size as CloudWatch counts it: UTF-8 bytes + 26 per event
_EVENT_OVERHEAD = 26
_TOKEN = re.compile(r"^(?P<way>[fb])/(?P<at>[0-9]{1,56})$")
_CHUNK = 1000
_MAX_FILTERED_STREAMS = 1000


@operation(LOGS + "DescribeLogGroups")
async def describe_log_groups(ctx: Context, params: Params) -> Any:
    prefix, pattern = params.get("logGroupNamePrefix"), params.get("logGroupNamePattern")
    if prefix is not None and pattern is not None:
        raise InvalidParameter(
            "logGroupNamePrefix and logGroupNamePattern are mutually exclusive parameters."
        )
    identifiers = params.get("logGroupIdentifiers")
    arn = log_streams.group_arn(ctx)
    shown = (
        GROUP.startswith(prefix or "")
        and (pattern is None or pattern.lower() in GROUP.lower())
        and (identifiers is None or GROUP in identifiers or arn.removesuffix(":*") in identifiers)
    )
    group = {
        "logGroupName": GROUP,
        "creationTime": 0,
        "metricFilterCount": 0,
        "arn": arn,
        "logGroupArn": arn.removesuffix(":*"),
        "storedBytes": 0,
        "logGroupClass": "STANDARD",
    }
    return {"logGroups": [group] if shown else []}


@operation(LOGS + "DescribeLogStreams")
async def describe_log_streams(ctx: Context, params: Params) -> Any:
    check_group(ctx, params)
    prefix = params.get("logStreamNamePrefix") or ""
    descending = bool(params.get("descending"))
    if params.get("orderBy", "LogStreamName") == "LastEventTime":
        if prefix:
            raise InvalidParameter("Cannot order by LastEventTime with a logStreamNamePrefix.")
        raise Unsupported("batchd orders log streams by LogStreamName only")
    limit = params.get("limit") or 50
    after = None
    if params.get("nextToken"):
        (after,) = decode_token("DescribeLogStreams", params["nextToken"], (str,))
    found = await log_streams.list_streams(ctx, prefix, after, descending, limit + 1)
    page = found[:limit]
    shown = [await _describe(ctx, stream) for stream in page]
    token = None
    if len(found) > limit:  # only when more streams follow: SDK v2 loops while it sees one
        token = encode_token("DescribeLogStreams", [page[-1].name])
    return {"logStreams": shown, "nextToken": token}


async def _describe(ctx: Context, stream: Stream) -> dict[str, Any]:
    arns = ctx.arns
    described: dict[str, Any] = {
        "logStreamName": stream.name,
        "creationTime": stream.record.creation_time,
        "arn": f"arn:{arns.partition}:logs:{arns.region}:{arns.account_id}:log-group:{GROUP}"
        f":log-stream:{stream.name}",
        "storedBytes": 0,
    }
    first, total = await read(ctx, stream, 0, 1)
    if first:
        last, _ = await read(ctx, stream, total - 1, 1)
        described["firstEventTimestamp"] = first[0].timestamp
        described["lastEventTimestamp"] = last[0].timestamp
        described["lastIngestionTime"] = last[0].timestamp
    return described


@operation(LOGS + "GetLogEvents")
async def get_log_events(ctx: Context, params: Params) -> Any:
    check_group(ctx, params)
    stream = await log_streams.stream_named(ctx, params["logStreamName"])
    _, total = await read(ctx, stream, 0, 0)
    low, high = 0, total
    if params.get("startTime") is not None:
        low = await first_at_or_after(ctx, stream, params["startTime"], total)
    if params.get("endTime") is not None:  # exclusive, as CloudWatch's endTime
        high = await first_at_or_after(ctx, stream, params["endTime"], total)
    high = max(low, high)
    limit = min(params.get("limit") or _MAX_EVENTS, _MAX_EVENTS)
    token = params.get("nextToken")
    forward = bool(params.get("startFromHead"))
    at = low if forward else high
    if token:
        found = _TOKEN.match(token)
        if found is None:
            raise InvalidParameter("The specified nextToken is invalid.")
        forward = found["way"] == "f"
        at = min(max(int(found["at"]), low), high)
    start = at if forward else max(low, at - limit)
    stop = min(high, at + limit) if forward else at
    events, _ = await read(ctx, stream, start, stop - start)
    events = _within_bytes(events, keep_head=forward)
    if forward:
        stop = start + len(events)
    else:
        start = stop - len(events)
    return {
        "events": [
            {"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.timestamp}
            for e in events
        ],
        "nextForwardToken": f"f/{stop:056d}",
        "nextBackwardToken": f"b/{start:056d}",
    }


def _within_bytes(events: list[LogEvent], keep_head: bool) -> list[LogEvent]:
    size = 0
    ordered = events if keep_head else list(reversed(events))
    for count, event in enumerate(ordered):
        size += len(event.message.encode()) + _EVENT_OVERHEAD
        if size > _MAX_BYTES and count:
            kept = ordered[:count]
            return kept if keep_head else list(reversed(kept))
    return events


@operation(LOGS + "FilterLogEvents")
async def filter_log_events(ctx: Context, params: Params) -> Any:
    check_group(ctx, params)
    names, prefix = params.get("logStreamNames"), params.get("logStreamNamePrefix")
    if names is not None and prefix is not None:
        raise InvalidParameter(
            "logStreamNames and logStreamNamePrefix are mutually exclusive parameters."
        )
    matches = _pattern(params.get("filterPattern") or "")
    if names is not None:
        streams = []
        for name in names:
            try:
                streams.append(await log_streams.stream_named(ctx, name))
            except NotFound:
                continue  # as CloudWatch: a named stream that does not exist has no events
    else:
        streams = await log_streams.list_streams(
            ctx, prefix or "", None, False, _MAX_FILTERED_STREAMS
        )
    start_time, end_time = params.get("startTime"), params.get("endTime")
    resume: tuple[int, str, int] | None = None
    if params.get("nextToken"):
        at, name, index = decode_token("FilterLogEvents", params["nextToken"], (int, str, int))
        resume = (at, name, index)
    limit = min(params.get("limit") or _MAX_EVENTS, _MAX_EVENTS)
    merged = _Merge(ctx, start_time, end_time, resume)
    for stream in streams:
        await merged.add(stream)
    out: list[dict[str, Any]] = []
    size, last = 0, None
    while merged.pending and len(out) < limit and size < _MAX_BYTES:
        stream, index, event = await merged.pop()
        last = (event.timestamp, stream.name, index)
        if not matches(event.message):
            continue
        size += len(event.message.encode()) + _EVENT_OVERHEAD
        out.append(
            {
                "logStreamName": stream.name,
                "timestamp": event.timestamp,
                "message": event.message,
                "ingestionTime": event.timestamp,
                "eventId": _event_id(stream.name, event.timestamp, index),
            }
        )
    token = None
    if merged.pending and last is not None:
        token = encode_token("FilterLogEvents", list(last))
    return {"events": out, "searchedLogStreams": [], "nextToken": token}


def _event_id(stream: str, at: int, index: int) -> str:
    # Digits like CloudWatch's; unique per (stream, position), so a tail de-duplicates right.
    return f"{at:020d}{zlib.crc32(stream.encode()):010d}{index:026d}"


class _Merge:
    """Streams' events in (timestamp, stream name, index) order, read a chunk at a time."""

    def __init__(
        self,
        ctx: Context,
        start_time: int | None,
        end_time: int | None,
        resume: tuple[int, str, int] | None,
    ) -> None:
        self._ctx = ctx
        self._start, self._end, self._resume = start_time, end_time, resume
        self._heap: list[tuple[int, str, int, str]] = []
        self._cursor: dict[str, tuple[Stream, int, int]] = {}  # name: (stream, next, stop)
        self._queued: dict[str, int] = {}  # name: its events in the heap

    @property
    def pending(self) -> bool:
        return bool(self._heap)

    async def add(self, stream: Stream) -> None:
        _, total = await read(self._ctx, stream, 0, 0)
        low, high = 0, total
        since = self._start
        if self._resume is not None:
            since = max(since or 0, self._resume[0])
        if since:
            low = await first_at_or_after(self._ctx, stream, since, total)
        if self._end is not None:
            high = await first_at_or_after(self._ctx, stream, self._end, total)
        self._cursor[stream.name] = (stream, low, high)
        await self._refill(stream.name)

    async def _refill(self, name: str) -> None:
        stream, at, stop = self._cursor[name]
        while at < stop:
            events, _ = await read(self._ctx, stream, at, min(_CHUNK, stop - at))
            if not events:
                break
            for offset, event in enumerate(events):
                key = (event.timestamp, name, at + offset)
                if self._resume is None or key > self._resume:
                    heapq.heappush(self._heap, (*key, event.message))
                    self._queued[name] = self._queued.get(name, 0) + 1
            at += len(events)
            if self._queued.get(name):
                break
        self._cursor[name] = (stream, at, stop)

    async def pop(self) -> tuple[Stream, int, LogEvent]:
        at, name, index, message = heapq.heappop(self._heap)
        stream = self._cursor[name][0]
        self._queued[name] -= 1
        if not self._queued[name]:
            await self._refill(name)
        return stream, index, LogEvent(at, message)


def _pattern(text: str) -> Any:
    """CloudWatch's plain-text filter patterns: every term must appear (``-term``: must not;
    ``?term``: any of them); quoted terms may hold spaces. JSON and space-delimited patterns
    (``{ ... }``, ``[ ... ]``) are not supported."""
    if text.strip().startswith(("{", "[")):
        raise InvalidParameter("batchd supports only plain-text filter patterns")
    try:
        terms = shlex.split(text)
    except ValueError as err:
        raise InvalidParameter(f"Invalid character(s) in term {text!r}: {err}") from err
    anyof = [t[1:] for t in terms if t.startswith("?")]
    required = [t for t in terms if not t.startswith(("?", "-"))]
    excluded = [t[1:] for t in terms if t.startswith("-") and len(t) > 1]

    def matches(message: str) -> bool:
        return (
            all(t in message for t in required)
            and not any(t in message for t in excluded)
            and (not anyof or any(t in message for t in anyof))
        )

    return matches

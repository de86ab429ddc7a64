"""Each host's log with the time every line was written: the log plus a sidecar index.

``logs/algo-N.log`` keeps the bytes exactly as before (``batchd logs`` reads it by offset);
``logs/algo-N.idx`` holds one 16-byte record per line, ``(end offset, epoch ms)``, little
endian, so line ``i`` is ``log[end[i-1]:end[i]]`` written at ``ms[i]``. The backend pumps the
host's stdout and stderr through the event loop and stamps only whole lines (a partial line
waits for its newline, or for the stream's end), so lines of the two streams never interleave
mid-line. The log bytes are written before their index record: a reader that trusts only the
index never sees a half-written line. Fixed-size records make event ``i`` one seek away, so a
client pages a large log without scanning it.

A log without an index (written by a batchd before this one) reads as one event per line,
stamped with the log's modification time.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LineBuffer", "StampedEvent", "StampedLog", "index_path", "read_stamped"]

_RECORD = struct.Struct("<QQ")
_MAX_LINE = 256 * 1024
# A carriage return ends a line too: progress bars (tqdm) redraw with it and never write a
# newline, and they should show while the job runs.
_EOL = re.compile(rb"\r\n|\n|\r")  # CloudWatch's event size limit; a longer line is cut into events


def index_path(log_path: Path) -> Path:
    return log_path.with_suffix(".idx")


class StampedLog:
    """The writer of one host's log and index (owned by one event loop)."""

    def __init__(self, log_path: Path) -> None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        self._log = os.open(log_path, flags, 0o644)
        try:
            self._index = os.open(index_path(log_path), flags, 0o644)
        except OSError:
            os.close(self._log)
            raise
        self._end = os.fstat(self._log).st_size

    def write_lines(self, data: bytes, now_ms: int) -> None:
        """Append whole lines (``data`` ends with a newline, or is a stream's last piece)."""
        if not data:
            return
        records = bytearray()
        start = 0
        while start < len(data):
            found = _EOL.search(data, start, start + _MAX_LINE)
            stop = min(len(data), start + _MAX_LINE) if found is None else found.end()
            records += _RECORD.pack(self._end + stop, now_ms)
            start = stop
        os.write(self._log, data)
        os.write(self._index, bytes(records))
        self._end += len(data)

    def close(self) -> None:
        os.close(self._log)
        os.close(self._index)


class LineBuffer:
    """Holds a stream's partial last line until its newline arrives."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        """The whole lines completed by ``chunk``; at EOF (empty chunk), whatever is left."""
        if not chunk:
            rest, self._pending = self._pending, b""
            return rest
        data = self._pending + chunk
        cut = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
        if cut == 0 and len(data) < _MAX_LINE:
            self._pending = data
            return b""
        cut = cut or len(data)
        self._pending = data[cut:]
        return data[:cut]


@dataclass(frozen=True)
class StampedEvent:
    timestamp: int
    message: str


def read_stamped(log_path: Path, start: int, limit: int) -> tuple[list[StampedEvent], int]:
    """Events ``start .. start+limit`` of a log and the number of events it has (blocking).

    ``([], 0)`` when there is no such log.
    """
    try:
        with open(index_path(log_path), "rb") as index:
            size = os.fstat(index.fileno()).st_size
            total = size // _RECORD.size
            first = max(0, min(start, total))
            stop = max(first, min(total, start + limit))
            if stop == first:
                return [], total
            index.seek(max(0, first - 1) * _RECORD.size)
            raw = index.read((stop - first + (1 if first else 0)) * _RECORD.size)
    except FileNotFoundError:
        return _unindexed(log_path, start, limit)
    records = [_RECORD.unpack_from(raw, at) for at in range(0, len(raw), _RECORD.size)]
    begin = records[0][0] if first else 0
    if first:
        records = records[1:]
    with open(log_path, "rb") as log:
        log.seek(begin)
        body = log.read(records[-1][0] - begin)
    events = []
    previous = begin
    for end, at in records:
        events.append(StampedEvent(at, _message(body[previous - begin : end - begin])))
        previous = end
    return events, total


def _unindexed(log_path: Path, start: int, limit: int) -> tuple[list[StampedEvent], int]:
    try:
        with open(log_path, "rb") as log:
            at = int(os.fstat(log.fileno()).st_mtime * 1000)
            lines = log.read().splitlines()
    except FileNotFoundError:
        return [], 0
    chosen = lines[max(0, start) : max(0, start + limit)]
    return [StampedEvent(at, _message(line)) for line in chosen], len(lines)


def _message(line: bytes) -> str:
    return line.rstrip(b"\r\n").decode("utf-8", "replace")

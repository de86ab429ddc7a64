"""Each line a local training job writes is kept with the time it was written, in order, so its
log reads as CloudWatch events (one per line) and pages without scanning the file."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from batchd.backends.local.stamped import LineBuffer, StampedLog, read_stamped
from tests.backends.conftest import new_backend, python_job, run_to_end, spec_for


def test_a_job_s_stdout_and_stderr_lines_are_events_with_the_time_they_were_written(
    data_dir: Path,
) -> None:
    code = (
        "import sys, time\n"
        "print('first', flush=True)\n"
        "time.sleep(0.3)\n"
        "print('oops', file=sys.stderr, flush=True)\n"
        "sys.stdout.write('no newline at the end')\n"
    )
    spec = spec_for(python_job(code))
    before = int(time.time() * 1000)

    async def scenario() -> tuple[list[tuple[int, str]], int]:
        local = new_backend(data_dir)
        await run_to_end(local, spec)
        events, total = await local.read_events(spec.training_job_name, "algo-1", 0, 100)
        await local.close()
        return [(e.timestamp, e.message) for e in events], total

    events, total = asyncio.run(scenario())
    messages = [message for _, message in events]
    assert messages[-3:] == ["first", "oops", "no newline at the end"]
    assert total == len(events)
    stamps = [at for at, _ in events]
    assert stamps == sorted(stamps) and stamps[0] >= before
    assert stamps[-2] - stamps[-3] >= 250  # the sleep shows between the two lines


def test_a_page_from_the_middle_reads_exactly_those_lines(tmp_path: Path) -> None:
    log = StampedLog(tmp_path / "algo-1.log")
    log.write_lines(b"".join(b"line %d\n" % i for i in range(1000)), 5)
    log.write_lines(b"late\n", 9)
    log.close()
    events, total = read_stamped(tmp_path / "algo-1.log", 998, 10)
    assert total == 1001
    assert [(e.timestamp, e.message) for e in events] == [
        (5, "line 998"),
        (5, "line 999"),
        (9, "late"),
    ]
    assert read_stamped(tmp_path / "algo-1.log", 2000, 10) == ([], 1001)
    assert read_stamped(tmp_path / "missing.log", 0, 10) == ([], 0)


def test_a_partial_line_waits_for_its_newline_or_the_end_of_the_stream() -> None:
    lines = LineBuffer()
    assert lines.feed(b"par") == b""
    assert lines.feed(b"tial\nnext") == b"partial\n"
    assert lines.feed(b"") == b"next"


def test_a_log_written_before_stamping_reads_one_event_per_line(tmp_path: Path) -> None:
    (tmp_path / "algo-1.log").write_bytes(b"a\nb\n")
    events, total = read_stamped(tmp_path / "algo-1.log", 1, 5)
    assert total == 2 and [e.message for e in events] == ["b"]


def test_a_progress_bar_s_carriage_returns_end_events_too(tmp_path: Path) -> None:
    lines = LineBuffer()
    written = lines.feed(b"10%\r20%\r30") + lines.feed(b"%\r\ndone\r\n")
    log = StampedLog(tmp_path / "algo-1.log")
    log.write_lines(written, 1)
    log.close()
    events, _ = read_stamped(tmp_path / "algo-1.log", 0, 10)
    assert [e.message for e in events] == ["10%", "20%", "30%", "done"]

"""Running jobs are polled when their backend says they may have moved, not at every cycle."""

from __future__ import annotations

from collections.abc import Sequence

from batchd.backends.base import Progress
from tests.support.harness import Harness


def _count_polls(h: Harness) -> list[str]:
    polled: list[str] = []
    poll = h.backend.poll

    async def counting(names: Sequence[str]) -> Sequence[Progress]:
        polled.extend(names)
        return await poll(names)

    h.backend.poll = counting  # type: ignore[method-assign, assignment]
    return polled


def test_a_running_job_is_polled_again_only_when_it_may_have_ended(h: Harness, fifo: str) -> None:
    job_id = h.submit(fifo, seconds=100)
    h.tick(times=3)  # SCHEDULED, STARTING, RUNNING: one phase a poll
    assert h.status(job_id) == "RUNNING"
    polled = _count_polls(h)
    h.tick(seconds=50, times=3)
    h.tick(seconds=49.999)
    assert (polled, h.status(job_id)) == ([], "RUNNING")
    h.tick(seconds=0.001)
    assert len(polled) == 1
    assert h.status(job_id) == "SUCCEEDED"


def test_a_running_job_asked_to_stop_is_polled_at_once(h: Harness, fifo: str) -> None:
    job_id = h.submit(fifo, seconds=100)
    h.tick(times=3)
    polled = _count_polls(h)
    h.call("TerminateServiceJob", jobId=job_id, reason="user asked")
    h.tick()
    assert len(polled) == 1
    assert h.status(job_id) == "FAILED"

"""A leader that lost its lock without noticing cannot write: every scheduling write is fenced
by the epoch of the leadership it began with, checked in the write's own transaction."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batchd.backends.fake import FakeBackend
from batchd.runtime.loop import Runtime
from batchd.storage.lease import Deposed
from batchd.storage.store import Store
from tests.support.databases import PG_URL, fresh_database
from tests.support.harness import CountingIds, Harness

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(fresh_database("postgres", tmp_path))
    try:
        yield harness
    finally:
        harness.close()


async def _cut_lock_connections() -> int:
    """What a network partition does to the leader: its lock connection is gone."""
    import asyncpg

    conn = await asyncpg.connect(PG_URL)
    try:
        pids = await conn.fetch("SELECT pid FROM pg_locks WHERE locktype = 'advisory'")
        for row in pids:
            await conn.execute("SELECT pg_terminate_backend($1)", row["pid"])
        return len(pids)
    finally:
        await conn.close()


def test_a_deposed_leaders_writes_fail_and_the_new_leader_acts_alone(pg: Harness) -> None:
    h = pg
    h.environment("env", {"NUM_INSTANCES": 4})
    h.queue("q", "env")
    first = h.submit("q", name="first", seconds=1000)
    h.tick(times=3)
    assert h.status(first) == "RUNNING"
    # Given the leader's lock connection is cut while it keeps running, and another replica
    # takes the lead
    assert h.run(_cut_lock_connections()) == 1
    store = h.run(Store.open(PG_URL))
    backend = FakeBackend(h.clock, lambda: None)
    other = Runtime(store, h.arns, h.clock, CountingIds(), {"fake": backend}, "fake")
    try:
        h.run(other.start(loop=False))
        assert other.leading and h.runtime.leading  # the old one has not noticed yet
        # When the old leader schedules a new job, its commit is refused
        second = h.submit("q", name="second", seconds=1000)
        with pytest.raises(Deposed):
            h.tick()
        assert h.status(second) == "SUBMITTED"
        # And a terminate it accepts is forwarded instead of applied
        h.call("TerminateServiceJob", jobId=first, reason="after the partition")
        assert not h.runtime.leading
        # Then the new leader dispatches the job once and applies the terminate
        for _ in range(4):
            h.run(other.tick(h.clock.now))
        assert h.status(second) == "RUNNING"
        # (the new leader adopted the running job from the fake backend and stopped it)
        job = h.job(first)
        assert job["status"] == "FAILED"
        assert job["statusReason"] == "after the partition"
        assert h.run(store.mailbox.read()) == []
    finally:
        h.run(other.close())
        h.run(store.close())


def test_each_new_leader_raises_the_epoch(pg: Harness) -> None:
    epoch = pg.store.lease.epoch
    assert epoch is not None
    pg.run(pg.store.lease.release())
    assert pg.store.lease.epoch is None
    assert pg.run(pg.store.lease.hold(0))
    assert pg.store.lease.epoch == epoch + 1

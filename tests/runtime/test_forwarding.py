"""Requests a follower replica forwards reach the leader at least once and act once: each is
removed only in the transaction that commits its effect."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from batchd.backends.fake import FakeBackend
from batchd.runtime import control
from batchd.runtime.loop import Runtime
from batchd.storage.store import Store
from tests.support.harness import CountingIds, Harness


@pytest.fixture
def follower(h: Harness, db_url: str) -> Iterator[Runtime]:
    """A second replica on the same database: the leader's lease keeps it a follower."""
    store = h.run(Store.open(db_url))
    runtime = Runtime(
        store, h.arns, h.clock, CountingIds(), {"fake": FakeBackend(h.clock, lambda: None)}, "fake"
    )
    h.run(runtime.start(loop=False))
    assert not runtime.leading
    yield runtime
    h.run(runtime.close())
    h.run(store.close())


def test_a_forwarded_terminate_survives_a_leader_that_dies_before_applying_it(
    h: Harness, fifo: str, follower: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a running job and a terminate accepted by the follower
    job_id = h.submit(fifo, name="victim", seconds=1000)
    h.tick(times=3)
    assert h.status(job_id) == "RUNNING"
    h.run(follower.terminate(job_id, "stopped from the follower"))

    # When the leader reads it and dies before its effect is committed
    def crash(*_: object) -> None:
        raise RuntimeError("leader died")

    monkeypatch.setattr(control, "apply", crash)
    with pytest.raises(RuntimeError):
        h.tick(1)
    monkeypatch.undo()
    assert len(h.run(h.store.mailbox.read())) == 1
    # Then the next leader applies it, and it is gone once its effect is written
    h.restart()
    h.tick(1, times=3)
    job = h.job(job_id)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "stopped from the follower"
    assert h.run(h.store.mailbox.read()) == []


def test_a_request_applied_twice_acts_once(h: Harness, fifo: str, follower: Runtime) -> None:
    queued = h.submit(fifo, name="queued", seconds=10, schedulingPriority=1)
    # Both requests arrive twice, as after a leader died between effect and removal
    for reason in ("first reason", "second reason"):
        h.run(follower.terminate(queued, reason))
    h.run(follower.update(queued, lambda j: j))  # no change: nothing forwarded
    h.tick(times=2)
    job = h.job(queued)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "first reason"
    assert h.run(h.store.mailbox.read()) == []


def test_a_deleted_queues_jobs_forwarded_by_a_follower_end_together(
    h: Harness, follower: Runtime
) -> None:
    # Given a queue with two running and three queued jobs
    h.environment("two", {"NUM_INSTANCES": 2})
    h.queue("doomed", "two")
    ids = [h.submit("doomed", name=f"j{i}", seconds=1000) for i in range(5)]
    h.tick(times=3)
    assert sorted(h.status(j) for j in ids) == ["RUNNABLE"] * 3 + ["RUNNING"] * 2
    # When a follower ends them all, as DeleteJobQueue does
    h.run(follower.terminate_queued("Job queue deleted", "doomed"))
    assert len(h.run(h.store.mailbox.read())) == 5
    h.tick(1, times=3)
    # Then the leader ended every one of them, and no request is left
    assert {h.job(j)["statusReason"] for j in ids} == {"Job queue deleted"}
    assert {h.status(j) for j in ids} == {"FAILED"}
    assert h.run(h.store.mailbox.read()) == []

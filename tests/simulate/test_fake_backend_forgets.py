"""The fake backend, in a simulation, forgets jobs once it has reported their end."""

from __future__ import annotations

import asyncio

import pytest

from batchd.backends.base import LaunchSpec, TrainingPhase
from batchd.backends.fake import FakeBackend
from batchd.clock import VirtualClock


def spec(name: str) -> LaunchSpec:
    return LaunchSpec(
        job_id="j",
        job_arn="arn",
        attempt_id="0" * 32,
        training_job_name=name,
        training_job_arn=f"arn:{name}",
        payload={"Environment": {"BATCHD_FAKE_DURATION_SECONDS": "5"}},
        tags={},
        region="us-east-1",
        account_id="123456789012",
    )


async def phases_after_end(forget: bool) -> list[TrainingPhase]:
    clock = VirtualClock(0)
    backend = FakeBackend(clock, lambda: None, timers=False, forget_ended=forget)
    await backend.start(spec("t"))
    for _ in range(3):  # to TRAINING, one phase a poll
        await backend.poll(["t"])
    clock.set(5000)
    seen = [p.phase for p in await backend.poll(["t"])]
    seen += [p.phase for p in await backend.poll(["t"])]
    assert backend.ended == 1
    return seen


@pytest.mark.parametrize(
    ("forget", "expected"),
    [
        (False, [TrainingPhase.COMPLETED, TrainingPhase.COMPLETED]),
        (True, [TrainingPhase.COMPLETED, TrainingPhase.LOST]),
    ],
)
def test_an_ended_job_is_kept_unless_asked_to_forget(
    forget: bool, expected: list[TrainingPhase]
) -> None:
    assert asyncio.run(phases_after_end(forget)) == expected

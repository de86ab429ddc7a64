"""Documented quotas, enforced with errors that say which limit was reached."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchd.errors import LimitExceeded
from batchd.operations.context import Limits
from tests.support.harness import Harness


def test_a_queue_refuses_jobs_beyond_its_submitted_limit(tmp_path: Path) -> None:
    h = Harness(f"sqlite:///{tmp_path / 'db.sqlite'}", Limits(max_submitted_per_queue=3))
    try:
        h.environment("env", {"NUM_INSTANCES": 1})
        h.queue("q", "env")
        for i in range(3):
            h.submit("q", name=f"j{i}")
        with pytest.raises(LimitExceeded, match="3 SUBMITTED jobs"):
            h.submit("q", name="one-too-many")
        h.tick()  # the scheduler admits them: SUBMITTED drains, and the queue accepts again
        h.submit("q", name="accepted")
    finally:
        h.close()


def test_active_share_identifiers_are_limited_per_queue(tmp_path: Path) -> None:
    h = Harness(f"sqlite:///{tmp_path / 'db.sqlite'}", Limits(max_active_shares=2))
    try:
        h.environment("env", {"NUM_INSTANCES": 1}, state="DISABLED")
        arn = h.call("CreateSchedulingPolicy", name="fs", fairsharePolicy={})["arn"]
        h.queue("q", "env", schedulingPolicyArn=arn)
        h.submit("q", name="a", shareIdentifier="a")
        h.submit("q", name="b", shareIdentifier="b")
        h.submit("q", name="a2", shareIdentifier="a")  # an active share may keep submitting
        with pytest.raises(LimitExceeded, match="2 active share identifiers"):
            h.submit("q", name="c", shareIdentifier="c")
    finally:
        h.close()

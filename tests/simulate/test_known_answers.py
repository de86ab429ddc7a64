"""The simulator runs batchd's own scheduler: cases whose answer is known by hand."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from batchd.simulate.run import simulate
from tests.simulate.support import (
    fairshare_config,
    fifo_config,
    job,
    quota_config,
    read_jobs,
    write,
)


def test_fifo_with_fixed_durations_starts_each_job_when_a_slot_frees(tmp_path: Path) -> None:
    # Given two instances and six 60-second jobs arriving 10 seconds apart
    config, workload = write(tmp_path, fifo_config(2), [job(10 * i, f"j{i}", 60) for i in range(6)])
    # When simulated
    assert simulate(config, workload, tmp_path / "out", progress=None) == 0
    # Then each starts when it arrives or when the job two ahead of it ends
    jobs = read_jobs(tmp_path / "out")
    assert [j["jobName"] for j in jobs] == [f"j{i}" for i in range(6)]
    assert [j["startedAt"] for j in jobs] == [0, 10, 60, 70, 120, 130]
    assert [j["stoppedAt"] for j in jobs] == [60, 70, 120, 130, 180, 190]
    assert {j["status"] for j in jobs} == {"SUCCEEDED"}
    assert {(j["attempts"], j["preemptions"]) for j in jobs} == {(1, 0)}


def test_two_equal_fair_shares_are_served_in_turn(tmp_path: Path) -> None:
    # Given one instance, shares a and b of equal weight, and four jobs of each queued at once
    jobs = [job(0, f"a{i}", 10, shareIdentifier="a") for i in range(4)]
    jobs += [job(0, f"b{i}", 10, shareIdentifier="b") for i in range(4)]
    config, workload = write(tmp_path, fairshare_config({"a": 1.0, "b": 1.0}), jobs)
    # When simulated
    simulate(config, workload, tmp_path / "out", progress=None)
    # Then they run one at a time, the shares taking turns
    ran = sorted(read_jobs(tmp_path / "out"), key=lambda j: j["startedAt"])
    assert [j["startedAt"] for j in ran] == [10 * i for i in range(8)]
    shares = [j["shareIdentifier"] for j in ran]
    assert all(x != y for x, y in itertools.pairwise(shares)), shares


def test_a_borrowing_quota_share_is_preempted_when_the_lender_returns(tmp_path: Path) -> None:
    # Given A lends its one instance and B borrows it with two long jobs
    config = quota_config(
        {
            "A": {"limit": 1, "sharing": {"strategy": "LEND"}},
            "B": {"limit": 1, "sharing": {"strategy": "LEND_AND_BORROW", "borrowLimit": 100}},
        },
        capacity=2,
    )
    jobs = [
        job(0, "b0", 1000, quotaShareName="B"),
        job(0, "b1", 1000, quotaShareName="B"),
        job(100, "a0", 50, quotaShareName="A"),
    ]
    config_path, workload = write(tmp_path, config, jobs)
    # When simulated
    simulate(config_path, workload, tmp_path / "out", progress=None)
    # Then A's job starts at once on its return, one of B's is preempted and runs again after
    by_name = {j["jobName"]: j for j in read_jobs(tmp_path / "out")}
    assert by_name["a0"]["startedAt"] == 100
    assert sorted(j["preemptions"] for j in by_name.values()) == [0, 0, 1]
    victim = next(j for j in by_name.values() if j["preemptions"] == 1)
    assert victim["startedAt"] == 0
    assert victim["stoppedAt"] == 150 + 1000  # restarted when A's job ended
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    shares = {s["quotaShareName"]: s for s in summary["shares"]}
    assert shares["B"]["preemptions"] == 1
    assert shares["B"]["borrowedInstanceHours"] > 0
    assert shares["A"]["lentInstanceHours"] > 0


def test_a_coarser_resolution_rounds_arrivals_and_run_times_up(tmp_path: Path) -> None:
    # Given the FIFO case above with 45-second jobs, simulated to the minute
    config, workload = write(tmp_path, fifo_config(2), [job(10 * i, f"j{i}", 45) for i in range(6)])
    simulate(config, workload, tmp_path / "out", resolution=60, progress=None)
    # Then j0 arrives at 0 and the others at 60, each runs a whole minute
    jobs = read_jobs(tmp_path / "out")
    assert [j["submittedAt"] for j in jobs] == [0, 60, 60, 60, 60, 60]
    assert [j["startedAt"] for j in jobs] == [0, 60, 60, 120, 120, 180]
    assert {j["stoppedAt"] - j["startedAt"] for j in jobs} == {60}

"""Jobs whose demand is ``NUM_INSTANCES`` (what SubmitServiceJob records for environments with a
NUM_INSTANCES limit) are planned exactly as the same number of typed instances would be.

Each test runs once per unit, so the NUM_INSTANCES case is checked against the instance-type one
that the planner has always handled; jobs of both kinds can share an environment (a database
written before the change holds typed demands).
"""

from __future__ import annotations

import pytest

from batchd.scheduling import NUM_INSTANCES, Block, BlockCode, FairsharePolicy, Queue
from batchd.scheduling.capacity import EnvironmentCapacity, can_ever_fit, project
from batchd.scheduling.queue_view import CapacityUsage, utilization

from .builders import G6, M5, Cluster, dispatched, env, job, running, state

UNITS = pytest.mark.parametrize("unit", [NUM_INSTANCES, M5])


def fifo() -> Queue:
    return Queue("q", 1, "env", "FIFO")


def fair() -> Queue:
    return Queue("q", 1, "env", "FAIRSHARE", fairshare=FairsharePolicy(600, 0, ()))


@pytest.mark.parametrize(
    ("held", "demand", "fits", "ever"),
    [
        ({}, {NUM_INSTANCES: 10}, True, True),
        ({}, {NUM_INSTANCES: 11}, False, False),
        ({NUM_INSTANCES: 7}, {NUM_INSTANCES: 3}, True, True),
        ({NUM_INSTANCES: 7}, {NUM_INSTANCES: 4}, False, True),
        # older jobs holding typed instances count against the same pool
        ({M5: 4, G6: 2}, {NUM_INSTANCES: 4}, True, True),
        ({M5: 4, NUM_INSTANCES: 2}, {NUM_INSTANCES: 5}, False, True),
        ({NUM_INSTANCES: 9}, {M5: 1}, True, True),
        ({NUM_INSTANCES: 9}, {M5: 2}, False, True),
        ({NUM_INSTANCES: 10}, {}, True, True),
    ],
)
def test_a_num_instances_demand_counts_against_the_num_instances_limit(
    held: dict[str, int], demand: dict[str, int], fits: bool, ever: bool
) -> None:
    pooled = env(limit=10)
    assert EnvironmentCapacity(pooled, held, {}).fits(demand) is fits
    assert can_ever_fit(pooled, demand) is ever


def test_a_num_instances_demand_is_projected_onto_the_pool_once() -> None:
    assert project({NUM_INSTANCES: 10}, {NUM_INSTANCES: 3}) == {NUM_INSTANCES: 3}
    assert project({NUM_INSTANCES: 10}, {NUM_INSTANCES: 3, M5: 2}) == {NUM_INSTANCES: 5}


def test_a_num_instances_demand_never_fits_an_environment_limited_per_instance_type() -> None:
    # SubmitServiceJob records typed usage there; this pins that the two must not be mixed.
    typed = env(limit=None, ml_m5_large=4)
    assert not can_ever_fit(typed, {NUM_INSTANCES: 1})


@UNITS
def test_fifo_dispatches_while_the_pool_has_room(unit: str) -> None:
    jobs = [running("r", demand={unit: 2})]
    jobs += [job(f"j{i}", at=i, demand={unit: 3}) for i in range(3)]
    cluster = Cluster(state([env(limit=8)], [fifo()]), jobs)
    assert dispatched(cluster.tick(now=1_000)) == ["j0", "j1"]
    assert sum(cluster.held().values()) == 8
    cluster.finish("j0", now=2_000)
    assert dispatched(cluster.tick(now=3_000)) == ["j2"]


@UNITS
def test_a_job_larger_than_the_pool_is_blocked_as_beyond_the_environment(unit: str) -> None:
    cluster = Cluster(state([env(limit=4)], [fifo()]), [job("big", demand={unit: 5})])
    [decision] = cluster.plan(now=1_000)
    assert isinstance(decision, Block)
    assert decision.code is BlockCode.ENVIRONMENT_MAX_RESOURCE


@UNITS
def test_fair_share_usage_counts_num_instances_as_instances(unit: str) -> None:
    # Given share "heavy" was dispatched 4 instances and "light" 1, a minute ago
    first = [job("hr", at=1, demand={unit: 4}, share_identifier="heavy")]
    first += [job("lr", at=2, demand={unit: 1}, share_identifier="light")]
    cluster = Cluster(state([env(limit=6)], [fair()]), first)
    assert sorted(dispatched(cluster.tick(now=0))) == ["hr", "lr"]
    # When each share queues one more job and only one fits
    cluster.submit(job("h", at=3, demand={unit: 1}, share_identifier="heavy"))
    cluster.submit(job("l", at=4, demand={unit: 1}, share_identifier="light"))
    # Then the share that used fewer instances goes first
    assert dispatched(cluster.plan(now=60_000)) == ["l"]
    assert cluster.ledger.usage("q", "heavy", 60_000) == pytest.approx(
        4 * cluster.ledger.usage("q", "light", 60_000)
    )
    top = utilization(cluster.state, cluster.index, "q").fairshare
    assert top is not None
    assert [(s.name, s.usage) for s in top.top] == [
        ("heavy", (CapacityUsage(unit, 4),)),
        ("light", (CapacityUsage(unit, 1),)),
    ]


def test_utilization_reports_num_instances_as_held() -> None:
    jobs = [running("a", demand={NUM_INSTANCES: 3}), running("b", demand={NUM_INSTANCES: 2})]
    cluster = Cluster(state([env(limit=8)], [fifo()]), jobs)
    used = utilization(cluster.state, cluster.index, "q")
    assert used.total == (CapacityUsage(NUM_INSTANCES, 5),)

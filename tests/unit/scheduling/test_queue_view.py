"""GetJobQueueSnapshot views (spec §3.14)."""

from __future__ import annotations

from batchd.scheduling import (
    CapacityUsage,
    FairsharePolicy,
    Queue,
    QueuePosition,
    QuotaShare,
    ShareUtilization,
    front_of_queue,
    front_of_quota_shares,
    utilization,
)

from .builders import G6, M5, Cluster, env, job, running, state


def _front(cluster: Cluster, limit: int = 100) -> list[QueuePosition]:
    return front_of_queue(cluster.state, cluster.index, cluster.ledger, "q", 1_000, limit=limit)


def test_fifo_front_is_submission_order_timed_by_arrival_or_last_departure() -> None:
    jobs = [job("c", at=30), job("a", at=10), job("b", at=20), job("d", at=40)]
    cluster = Cluster(state([env(limit=2)], [Queue("q", 1, "env")]), jobs)
    assert _front(cluster, limit=3) == [("a", 10), ("b", 20), ("c", 30)]
    # When the head is dispatched at 25, everyone behind moved up at 25
    cluster.tick(now=25)
    assert _front(cluster) == [("c", 30), ("d", 40)]
    cluster.index.remove("c", at=35)
    assert _front(cluster) == [("d", 40)]


def test_fair_share_front_follows_the_share_selection() -> None:
    queue = Queue("q", 1, "env", "FAIRSHARE", fairshare=FairsharePolicy(600, 0, (("b", 2.0),)))
    jobs = [job(f"a{i}", at=i, share_identifier="a") for i in range(4)]
    jobs += [job(f"b{i}", at=10 + i, share_identifier="b") for i in range(4)]
    cluster = Cluster(state([env(limit=0)], [queue]), jobs)
    order = [p.job_id for p in _front(cluster, limit=6)]
    assert order == ["a0", "b0", "a1", "a2", "b1", "a3"]
    # A later arrival listed ahead pushes the jobs behind it back to its arrival time
    assert [p.earliest_time_at_position for p in _front(cluster, limit=3)] == [0, 10, 10]


def _qm_cluster() -> Cluster:
    shares = (
        QuotaShare("a", True, {M5: 2}, "LEND", order=1),
        QuotaShare("b", True, {M5: 1}, "LEND_AND_BORROW", order=2),
        QuotaShare("c", True, {M5: 1}, "RESERVE", order=3),
        QuotaShare("off", False, {M5: 1}, "RESERVE", order=4),
    )
    queue = Queue("q", 1, "env", "QUOTA", quota_shares=shares)
    jobs = [job(f"b{i}", at=i, quota_share_name="b") for i in range(3)]
    jobs += [job(f"c{10 + i}", at=10 + i, quota_share_name="c") for i in range(2)]
    jobs += [job("off0", at=0, quota_share_name="off")]
    jobs += [running("a-run", quota_share_name="a", demand={M5: 1, G6: 1})]
    return Cluster(state([env(limit=None, ml_m5_large=5)], [queue]), jobs)


def test_quota_front_replays_own_quota_then_borrowing_then_the_rest() -> None:
    cluster = _qm_cluster()
    # in-quota: b0, c10; borrowing (a lends 1 idle): b1; then what waits: b2, c11
    assert [p.job_id for p in _front(cluster)] == ["b0", "c10", "b1", "b2", "c11"]


def test_front_of_quota_shares_lists_each_share_head_or_nothing() -> None:
    cluster = _qm_cluster()
    assert front_of_quota_shares(cluster.state, cluster.index, "q") == {
        "a": [],
        "b": [("b0", 0)],
        "c": [("c10", 10)],
        "off": [("off0", 0)],
    }


def test_utilization_counts_dispatched_capacity_by_instance_type() -> None:
    cluster = _qm_cluster()
    usage = utilization(cluster.state, cluster.index, "q")
    assert usage.total == (CapacityUsage(G6, 1), CapacityUsage(M5, 1))
    assert usage.fairshare is None
    assert usage.quota_shares is not None
    assert usage.quota_shares[0] == ShareUtilization(
        "a", (CapacityUsage(G6, 1), CapacityUsage(M5, 1))
    )
    assert [s.name for s in usage.quota_shares] == ["a", "b", "c", "off"]


def test_fair_share_utilization_reports_active_shares_and_the_top_twenty() -> None:
    queue = Queue("q", 1, "env", "FAIRSHARE")
    jobs = [running(f"r{i}", n=i + 1, share_identifier=f"s{i:02}") for i in range(25)]
    cluster = Cluster(state([env(limit=1_000)], [queue]), jobs)
    usage = utilization(cluster.state, cluster.index, "q")
    assert usage.fairshare is not None
    assert usage.fairshare.active_share_count == 25
    assert [s.name for s in usage.fairshare.top] == [f"s{i:02}" for i in range(24, 4, -1)]
    assert usage.total == (CapacityUsage(M5, sum(range(1, 26))),)

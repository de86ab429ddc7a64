"""Fair share between teams, and quota shares lending, borrowing and reclaiming."""

from __future__ import annotations

from typing import Any

from tests.support.harness import Harness

RECLAIM = "Cross-share preemption triggered to reclaim borrowed capacity"
IN_SHARE = "In-share preemption triggered by a higher priority job"


def fairshare_queue(h: Harness, weights: dict[str, float], capacity: int = 4) -> None:
    h.environment("env", {"NUM_INSTANCES": capacity})
    arn = h.call(
        "CreateSchedulingPolicy",
        name="teams",
        fairsharePolicy={
            "shareDecaySeconds": 3600,
            "shareDistribution": [
                {"shareIdentifier": k, "weightFactor": v} for k, v in weights.items()
            ],
        },
    )["arn"]
    h.queue("q", "env", schedulingPolicyArn=arn)


def test_two_teams_with_weights_one_to_three_share_capacity_three_to_one(h: Harness) -> None:
    # Given a 4-instance environment, team A with weight 1 and team B with weight 3
    # (a lower weight means more capacity) and a deep backlog for both
    fairshare_queue(h, {"teamA": 1.0, "teamB": 3.0})
    jobs: dict[str, list[str]] = {"teamA": [], "teamB": []}
    for i in range(60):
        for team, ids in jobs.items():
            ids.append(h.submit("q", name=f"{team}{i}", seconds=20, shareIdentifier=team))
    # When the scheduler runs for a while, sampling who holds the capacity
    held = {"teamA": 0, "teamB": 0}
    for step in range(150):
        h.tick(2)
        if step % 3:
            continue
        for team, ids in jobs.items():
            held[team] += sum(1 for j in ids if h.status(j) in ("SCHEDULED", "STARTING", "RUNNING"))
    # Then team A held about three times team B's capacity over time
    ratio = held["teamA"] / held["teamB"]
    assert 2.4 <= ratio <= 3.6, held


def test_priority_orders_jobs_within_a_share(h: Harness) -> None:
    fairshare_queue(h, {"teamA": 1.0}, capacity=1)
    h.submit("q", name="busy", seconds=100, shareIdentifier="teamA")
    h.tick()
    low = h.submit("q", name="low", shareIdentifier="teamA", schedulingPriority=1)
    high = h.submit("q", name="high", shareIdentifier="teamA", schedulingPriority=9)
    raised = h.submit("q", name="raised", shareIdentifier="teamA", schedulingPriority=1)
    h.call("UpdateServiceJob", jobId=raised, schedulingPriority=50)
    h.tick()
    front = h.call("GetJobQueueSnapshot", jobQueue="q")["frontOfQueue"]["jobs"]
    order = [j["jobArn"].rsplit("/", 1)[1] for j in front]
    assert order == [raised, high, low]


def quota_queue(h: Harness, shares: dict[str, dict[str, Any]], capacity: int = 4) -> None:
    h.environment("qm-env", {"ml.m5.large": capacity})
    arn = h.call(
        "CreateSchedulingPolicy",
        name="quota",
        quotaSharePolicy={"idleResourceAssignmentStrategy": "FIFO"},
    )["arn"]
    h.queue("qm", "qm-env", schedulingPolicyArn=arn)
    for name, config in shares.items():
        h.call(
            "CreateQuotaShare",
            quotaShareName=name,
            jobQueue="qm",
            capacityLimits=[{"maxCapacity": config["limit"], "capacityUnit": "ml.m5.large"}],
            resourceSharingConfiguration=config["sharing"],
            preemptionConfiguration={"inSharePreemption": config.get("in_share", "DISABLED")},
        )


def test_quota_share_lends_idle_capacity_and_reclaims_it_by_preemption(h: Harness) -> None:
    # Given A lends its 2 idle instances and B may borrow
    quota_queue(
        h,
        {
            "A": {"limit": 2, "sharing": {"strategy": "LEND"}},
            "B": {"limit": 2, "sharing": {"strategy": "LEND_AND_BORROW", "borrowLimit": 100}},
        },
    )
    b_jobs = [h.submit("qm", name=f"b{i}", seconds=1000, quotaShareName="B") for i in range(4)]
    h.tick(times=3)
    # Then B runs 4 jobs: 2 of its own and 2 borrowed from A
    assert [h.status(j) for j in b_jobs] == ["RUNNING"] * 4
    # When A's own job arrives
    a_job = h.submit("qm", name="a0", seconds=10, quotaShareName="A")
    h.tick()
    preempting = [j for j in b_jobs if h.job(j).get("statusReason", "").startswith("PREEMPTION")]
    assert len(preempting) == 1
    h.tick(times=3)
    # Then one borrowed B job went back to RUNNABLE with a preemption record, and A runs
    victim = h.job(preempting[0])
    assert victim["status"] in ("RUNNABLE", "SCHEDULED")
    assert victim["preemptionSummary"]["preemptedAttemptCount"] == 1
    [record] = victim["preemptionSummary"]["recentPreemptedAttempts"]
    assert record["statusReason"] == RECLAIM
    assert victim["attempts"] == []  # preemptions do not consume attempts
    counted = h.runtime.metrics_registry.get_sample_value
    assert counted("batchd_preemptions_total", {"queue": "qm", "kind": "cross_share"}) == 1
    assert h.status(a_job) in ("SCHEDULED", "STARTING", "RUNNING")


def test_preemption_retries_before_termination_fails_the_job(h: Harness) -> None:
    quota_queue(
        h,
        {
            "A": {"limit": 1, "sharing": {"strategy": "LEND"}},
            "B": {"limit": 1, "sharing": {"strategy": "LEND_AND_BORROW"}},
        },
        capacity=2,
    )
    h.submit("qm", name="own", seconds=1000, quotaShareName="B")
    borrower = h.submit(
        "qm",
        name="borrower",
        seconds=1000,
        quotaShareName="B",
        preemptionConfiguration={"preemptionRetriesBeforeTermination": 0},
    )
    h.tick(times=3)
    assert h.status(borrower) == "RUNNING"
    h.submit("qm", name="owner", seconds=10, quotaShareName="A")
    h.tick(times=3)
    job = h.job(borrower)
    assert job["status"] == "FAILED"
    assert job["isTerminated"] is True
    assert job["preemptionSummary"]["preemptedAttemptCount"] == 1


def test_reserve_share_never_lends(h: Harness) -> None:
    quota_queue(
        h,
        {
            "A": {"limit": 2, "sharing": {"strategy": "RESERVE"}},
            "B": {"limit": 2, "sharing": {"strategy": "LEND_AND_BORROW"}},
        },
    )
    b_jobs = [h.submit("qm", name=f"b{i}", seconds=1000, quotaShareName="B") for i in range(3)]
    h.tick()
    assert [h.status(j) for j in b_jobs] == ["SCHEDULED", "SCHEDULED", "RUNNABLE"]


def test_quota_snapshot_shows_each_share_front_and_usage(h: Harness) -> None:
    quota_queue(
        h,
        {
            "A": {"limit": 1, "sharing": {"strategy": "RESERVE"}},
            "B": {"limit": 1, "sharing": {"strategy": "RESERVE"}},
        },
        capacity=2,
    )
    h.submit("qm", name="a-run", seconds=100, quotaShareName="A")
    h.tick()
    waiting = h.submit("qm", name="a-wait", quotaShareName="A")
    h.tick()
    snap = h.call("GetJobQueueSnapshot", jobQueue="qm")
    fronts = snap["frontOfQuotaShares"]["quotaShares"]
    assert [j["jobArn"].rsplit("/", 1)[1] for j in fronts["A"]] == [waiting]
    assert fronts["B"] == []
    usage = {
        u["quotaShareName"]: u["capacityUsage"]
        for u in snap["queueUtilization"]["quotaShareUtilization"]["topCapacityUtilization"]
    }
    assert usage["A"] == [{"capacityUnit": "ml.m5.large", "quantity": 1.0}]
    assert snap["queueUtilization"]["totalCapacityUsage"] == [
        {"capacityUnit": "ml.m5.large", "quantity": 1.0}
    ]


def test_in_share_preemption_is_reported_as_in_share_not_as_a_reclaim(h: Harness) -> None:
    # Given share A (2 instances, in-share preemption on) full of low-priority jobs
    quota_queue(
        h,
        {"A": {"limit": 2, "sharing": {"strategy": "RESERVE"}, "in_share": "ENABLED"}},
        capacity=2,
    )
    low = [
        h.submit("qm", name=f"low{i}", seconds=1000, quotaShareName="A", schedulingPriority=1)
        for i in range(2)
    ]
    h.tick(times=3)
    assert [h.status(j) for j in low] == ["RUNNING", "RUNNING"]
    # When a higher-priority job of the same share arrives
    h.submit("qm", name="high", seconds=10, quotaShareName="A", schedulingPriority=9)
    h.tick()
    # Then the victim shows an in-share preemption in progress ...
    [victim] = [j for j in low if h.job(j).get("statusReason", "").startswith("PREEMPTION")]
    reason = h.job(victim)["statusReason"]
    assert reason == "PREEMPTION_IN_PROGRESS: " + IN_SHARE
    # ... and its preempted attempt records the same kind, without the prefix
    h.tick(times=3)
    [record] = h.job(victim)["preemptionSummary"]["recentPreemptedAttempts"]
    assert record["statusReason"] == IN_SHARE
    # And /metrics counts it by its kind
    counted = h.runtime.metrics_registry.get_sample_value
    assert counted("batchd_preemptions_total", {"queue": "qm", "kind": "in_share"}) == 1
    assert counted("batchd_preemptions_total", {"queue": "qm", "kind": "cross_share"}) is None

"""The Store's contract, the same on SQLite and PostgreSQL (real databases, no fakes)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import event

from batchd.domain.arns import Arns
from batchd.domain.codec import from_wire
from batchd.domain.jobs import ServiceJob
from batchd.domain.resources import (
    CapacityLimit,
    InSharePreemption,
    JobQueue,
    QuotaShare,
    QuotaSharePreemptionConfiguration,
    QuotaShareResourceSharingConfiguration,
    ResourceState,
    SchedulingPolicy,
    ServiceEnvironment,
    ServiceEnvironmentOrder,
    SharingStrategy,
)
from batchd.domain.status import JobStatus
from batchd.domain.training import TrainingJob
from batchd.errors import Conflict
from batchd.storage.job_reads import JobQuery
from batchd.storage.mailbox import Mail, MailKind
from batchd.storage.resources import CACHE_TTL_SECONDS, Resources
from batchd.storage.store import Store

ARNS = Arns("us-east-1", "123456789012")
_seq = itertools.count(1)


class FakeMonotonic:
    """A monotonic clock that moves only when told: a cache expires without sleeping."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def run(
    db_url: str,
    scenario: Callable[[Store], Awaitable[None]],
    monotonic: Callable[[], float] | None = None,
) -> None:
    async def main() -> None:
        store = await Store.open(db_url, monotonic=monotonic or FakeMonotonic())
        try:
            await scenario(store)
        finally:
            await store.close()

    asyncio.run(main())


async def page_of(store: Store, query: JobQuery) -> list[ServiceJob]:
    return [from_wire(ServiceJob, doc) for doc in await store.job_reads.page(query)]


async def active_jobs(store: Store, queue: str | None = None) -> list[ServiceJob]:
    return [job async for job in store.job_reads.stream_active(queue)]


def env(name: str, capacity: int = 5) -> ServiceEnvironment:
    return ServiceEnvironment(
        service_environment_name=name,
        service_environment_arn=ARNS.service_environment(name),
        capacity_limits=(CapacityLimit(capacity, "NUM_INSTANCES"),),
        tags={"k": "v"},
    )


def queue(name: str) -> JobQueue:
    return JobQueue(
        job_queue_name=name,
        job_queue_arn=ARNS.job_queue(name),
        priority=1,
        service_environment_order=(ServiceEnvironmentOrder(1, ARNS.service_environment("e")),),
    )


def share(queue_name: str, name: str) -> QuotaShare:
    return QuotaShare(
        quota_share_name=name,
        quota_share_arn=ARNS.quota_share(queue_name, name),
        job_queue_arn=ARNS.job_queue(queue_name),
        capacity_limits=(),
        resource_sharing_configuration=QuotaShareResourceSharingConfiguration(
            SharingStrategy.RESERVE
        ),
        preemption_configuration=QuotaSharePreemptionConfiguration(InSharePreemption.DISABLED),
    )


def job(
    name: str = "job",
    queue_name: str = "q",
    created_at: int = 1_000,
    token: str | None = None,
    status: JobStatus = JobStatus.SUBMITTED,
    **extra: Any,
) -> ServiceJob:
    job_id = str(uuid.uuid4())
    return ServiceJob(
        job_id=job_id,
        job_arn=ARNS.service_job(job_id),
        job_name=name,
        job_queue=ARNS.job_queue(queue_name),
        service_request_payload='{"TrainingJobName": "t"}',
        created_at=created_at,
        seq=next(_seq),
        status=status,
        client_token=token,
        **extra,
    )


# -- resources ---------------------------------------------------------------------------


def test_resources_are_created_read_saved_listed_and_deleted(db_url: str) -> None:
    async def scenario(store: Store) -> None:
        first, second = env("a"), env("b")
        await store.resources.create(ServiceEnvironment, "a", first, "Service environment")
        await store.resources.create(ServiceEnvironment, "b", second, "Service environment")
        assert await store.resources.get(ServiceEnvironment, "a") == first
        assert await store.resources.get(ServiceEnvironment, "missing") is None
        assert await store.resources.get(JobQueue, "a") is None, "kinds are separate name spaces"

        changed = dataclasses.replace(first, state=ResourceState.DISABLED, tags={})
        await store.resources.save(ServiceEnvironment, "a", changed)
        assert await store.resources.get(ServiceEnvironment, "a") == changed

        listed = await store.resources.list(ServiceEnvironment)
        assert [obj for _, obj in listed] == [changed, second], "creation order, not name order"
        positions = [pos for pos, _ in listed]
        assert positions == sorted(positions)
        assert await store.resources.count(ServiceEnvironment) == 2

        await store.resources.delete(ServiceEnvironment, "a")
        assert await store.resources.get(ServiceEnvironment, "a") is None
        assert [obj for _, obj in await store.resources.list(ServiceEnvironment)] == [second]
        await store.resources.create(ServiceEnvironment, "a", first, "Service environment")
        assert [
            o.service_environment_name for _, o in await store.resources.list(ServiceEnvironment)
        ] == [
            "b",
            "a",
        ], "a re-created resource is listed as new"

    run(db_url, scenario)


def test_a_name_is_unique_per_kind(db_url: str) -> None:
    async def scenario(store: Store) -> None:
        await store.resources.create(
            ServiceEnvironment, "same", env("same", 1), "Service environment"
        )
        with pytest.raises(Conflict, match="Service environment same already exists"):
            await store.resources.create(
                ServiceEnvironment, "same", env("same", 9), "Service environment"
            )
        assert await store.resources.get(ServiceEnvironment, "same") == env("same", 1)
        await store.resources.create(JobQueue, "same", queue("same"), "Job queue")
        policy = SchedulingPolicy(name="same", arn=ARNS.scheduling_policy("same"))
        await store.resources.create(SchedulingPolicy, "same", policy, "Scheduling policy")
        assert await store.resources.get(SchedulingPolicy, "same") == policy

    run(db_url, scenario)


def test_resource_listing_pages_and_prefixes_are_literal(db_url: str) -> None:
    async def scenario(store: Store) -> None:
        for q, s in [("a_b", "one"), ("axb", "two"), ("a_b", "three"), ("a%b", "four")]:
            await store.resources.create(QuotaShare, f"{q}/{s}", share(q, s), "Quota share")
        names = [
            o.quota_share_name for _, o in await store.resources.list(QuotaShare, prefix="a_b/")
        ]
        assert names == ["one", "three"], "_ in a prefix is not a wildcard"
        assert await store.resources.count(QuotaShare, prefix="a_b/") == 2
        assert await store.resources.count(QuotaShare, prefix="a%b/") == 1
        first = await store.resources.list(QuotaShare, limit=2)
        rest = await store.resources.list(QuotaShare, after=first[-1][0])
        assert [o for _, o in first + rest] == [
            o for _, o in await store.resources.list(QuotaShare)
        ]
        assert len(rest) == 2

    run(db_url, scenario)


def test_modify_is_atomic_and_writes_nothing_when_the_change_fails(db_url: str) -> None:
    async def scenario(store: Store) -> None:
        await store.resources.create(ServiceEnvironment, "e", env("e"), "Service environment")

        def add(key: str) -> Callable[[ServiceEnvironment], ServiceEnvironment]:
            return lambda e: dataclasses.replace(e, tags={**e.tags, key: "x"})

        await asyncio.gather(
            *(store.resources.modify(ServiceEnvironment, "e", add(f"t{i}")) for i in range(30))
        )
        found = await store.resources.get(ServiceEnvironment, "e")
        assert found is not None
        assert found.tags == {"k": "v", **{f"t{i}": "x" for i in range(30)}}

        def refuse(_: ServiceEnvironment) -> ServiceEnvironment:
            raise Conflict("no")

        with pytest.raises(Conflict):
            await store.resources.modify(ServiceEnvironment, "e", refuse)
        assert await store.resources.get(ServiceEnvironment, "e") == found
        assert await store.resources.modify(ServiceEnvironment, "missing", add("x")) is None
        assert await store.resources.get(ServiceEnvironment, "missing") is None

    run(db_url, scenario)


def test_another_replicas_resource_changes_show_once_the_cache_expires(db_url: str) -> None:
    clock = FakeMonotonic()

    async def scenario(store: Store) -> None:
        other = await Store.open(db_url)  # another replica on the same database
        what = "Service environment"
        try:
            assert await store.resources.get(ServiceEnvironment, "e") is None
            await other.resources.create(ServiceEnvironment, "e", env("e", 1), what)
            assert await store.resources.get(ServiceEnvironment, "e") is None, "absence cached"
            clock.now += CACHE_TTL_SECONDS
            assert await store.resources.get(ServiceEnvironment, "e") == env("e", 1)

            await other.resources.save(ServiceEnvironment, "e", env("e", 2))
            clock.now += CACHE_TTL_SECONDS / 2
            assert await store.resources.get(ServiceEnvironment, "e") == env("e", 1)
            clock.now += CACHE_TTL_SECONDS / 2
            assert await store.resources.get(ServiceEnvironment, "e") == env("e", 2)

            await store.resources.save(ServiceEnvironment, "e", env("e", 3))
            assert await store.resources.get(ServiceEnvironment, "e") == env("e", 3), (
                "its own writes show at once"
            )
        finally:
            await other.close()

    run(db_url, scenario, clock)


def test_looking_up_endless_missing_names_keeps_the_resource_cache_bounded(db_url: str) -> None:
    clock = FakeMonotonic()

    async def scenario(store: Store) -> None:
        cached = Resources(store.db, clock, capacity=50)  # the store's, at a smaller size
        await cached.create(ServiceEnvironment, "e", env("e", 1), "Service environment")
        assert await cached.get(ServiceEnvironment, "e") == env("e", 1)
        # Changed behind the cache's back: reading the old version shows it was cached.
        await store.resources.save(ServiceEnvironment, "e", env("e", 2))
        for start in range(0, 500, 10):
            probes = [cached.get(JobQueue, f"probe-{i}") for i in range(start, start + 10)]
            assert await asyncio.gather(*probes) == [None] * 10
            assert len(cached.cache) <= 50
            assert await cached.get(ServiceEnvironment, "e") == env("e", 1), "used, so kept"
        assert len(cached.cache) == 50
        clock.now += CACHE_TTL_SECONDS
        assert await cached.get(ServiceEnvironment, "e") == env("e", 2)

    run(db_url, scenario, clock)


# -- submitting jobs -----------------------------------------------------------------------


def test_a_followers_submitted_count_adds_its_own_submits_between_reads(db_url: str) -> None:
    clock = FakeMonotonic()

    async def scenario(store: Store) -> None:
        other = await Store.open(db_url)  # another replica on the same database
        reads = store.job_reads
        try:
            await other.job_writes.submit(job("a"))
            assert await reads.submitted_in("q") == 1
            await store.job_writes.submit(job("b"))
            assert await reads.submitted_in("q") == 2  # its own, counted without a read
            await other.job_writes.submit(job("c"))
            clock.now += CACHE_TTL_SECONDS / 2
            assert await reads.submitted_in("q") == 2  # another's shows at the next read
            clock.now += CACHE_TTL_SECONDS / 2
            assert await reads.submitted_in("q") == 3
            assert await reads.submitted_in("other") == 0
        finally:
            await other.close()

    run(db_url, scenario, clock)


def test_concurrent_submits_share_commits_and_are_each_stored_once(db_url: str) -> None:
    async def scenario(store: Store) -> None:
        commits = 0

        def count(_conn: Any) -> None:
            nonlocal commits
            commits += 1

        # Counting the write engine's commits is how group commit shows from outside.
        event.listen(store.db.write_engine, "commit", count)
        jobs = [job(f"j{i}", created_at=1_000 + i) for i in range(200)]
        stored = await asyncio.gather(*(store.job_writes.submit(j) for j in jobs))
        assert stored == jobs
        assert commits < 20, f"200 concurrent submits took {commits} commits"
        listed = await page_of(store, JobQuery(queue="q", limit=1_000))
        assert sorted(j.job_id for j in listed) == sorted(j.job_id for j in jobs)
        for original in jobs[:5]:
            assert await store.job_reads.get(original.job_id) == original

    run(db_url, scenario)


def test_an_admission_rides_along_with_the_submits_being_committed(db_url: str) -> None:
    async def scenario(store: Store) -> None:
        earlier = [job(f"a{i}") for i in range(50)]
        await asyncio.gather(*(store.job_writes.submit(j) for j in earlier))
        commits = 0

        def count(_conn: Any) -> None:
            nonlocal commits
            commits += 1

        event.listen(store.db.write_engine, "commit", count)
        later = [job(f"b{i}") for i in range(50)]
        await asyncio.gather(
            *(store.job_writes.submit(j) for j in later),
            store.job_writes.save([], admitted=[j.job_id for j in earlier]),
        )
        assert commits == 1, f"50 submits and an admission took {commits} commits"
        stored = await store.job_reads.get_many([j.job_id for j in earlier + later])
        assert {stored[j.job_id].status for j in earlier} == {JobStatus.RUNNABLE}
        assert {stored[j.job_id].status for j in later} == {JobStatus.SUBMITTED}

    run(db_url, scenario)


def test_a_client_token_repeated_in_one_batch_returns_the_first_job(db_url: str) -> None:
    async def scenario(store: Store) -> None:
        first, twin, other = job("a", token="t1"), job("b", token="t1"), job("c", token="t2")
        plain = job("d")
        stored = await asyncio.gather(
            *(store.job_writes.submit(j) for j in (first, twin, other, plain))
        )
        assert stored == [first, first, other, plain]
        assert await store.job_reads.get(twin.job_id) is None
        assert await store.job_reads.by_token("t1") == first
        assert await store.job_reads.by_token("t2") == other
        assert await store.job_reads.by_token("t3") is None

    run(db_url, scenario)


def test_a_client_token_repeated_in_a_later_batch_returns_the_first_job(db_url: str) -> None:
    async def scenario(store: Store) -> None:
        first = job("a", token="tok")
        assert await store.job_writes.submit(first) == first
        later = job("b", token="tok", created_at=2_000)
        assert await store.job_writes.submit(later) == first
        assert await store.job_reads.get(later.job_id) is None
        listed = await page_of(store, JobQuery(queue="q", limit=10))
        assert [j.job_id for j in listed] == [first.job_id]

    run(db_url, scenario)


def test_a_failed_batch_fails_each_of_its_submitters_and_the_next_batch_works(
    db_url: str,
) -> None:
    async def scenario(store: Store) -> None:
        good, other = job("good"), job("other")
        broken = dataclasses.replace(job("broken"), created_at=None)  # type: ignore[arg-type]
        results = await asyncio.gather(
            *(store.job_writes.submit(j) for j in (good, broken, other)), return_exceptions=True
        )
        assert all(isinstance(r, Exception) for r in results), results
        assert await store.job_reads.get(good.job_id) is None, "a failed batch stores nothing"
        assert await store.job_reads.get(other.job_id) is None
        assert await store.job_writes.submit(good) == good
        assert await store.job_reads.get(good.job_id) == good

    run(db_url, scenario)


# -- listing jobs --------------------------------------------------------------------------


def test_list_jobs_pages_newest_first_by_keyset_with_ties_broken_by_id(db_url: str) -> None:
    async def scenario(store: Store) -> None:
        jobs = [job(f"j{i}", created_at=1_000 + i // 4) for i in range(30)]
        jobs.append(job("elsewhere", queue_name="other"))
        await asyncio.gather(*(store.job_writes.submit(j) for j in jobs))
        expected = sorted(
            (j for j in jobs if j.queue_name == "q"),
            key=lambda j: (j.created_at, j.job_id),
            reverse=True,
        )
        pages: list[list[ServiceJob]] = []
        after: tuple[int, str] | None = None
        while True:
            page = await page_of(store, JobQuery(queue="q", limit=7, after=after))
            if not page:
                break
            pages.append(page)
            after = (page[-1].created_at, page[-1].job_id)
        assert [len(p) for p in pages] == [7, 7, 7, 7, 2]
        assert [j.job_id for p in pages for j in p] == [j.job_id for j in expected]

    run(db_url, scenario)


def test_list_jobs_filters(db_url: str) -> None:
    async def scenario(store: Store) -> None:
        made = {
            "Train_1": job("Train_1", created_at=100),
            "trainX1": job("trainX1", created_at=200, share_identifier="teamA"),
            "train_10": job("train_10", created_at=300, quota_share_name="red"),
            "other": job("other", created_at=400, status=JobStatus.RUNNABLE),
        }
        for j in made.values():
            await store.job_writes.submit(j)

        async def names(**query: Any) -> list[str]:
            return [
                j.job_name for j in await page_of(store, JobQuery(queue="q", limit=50, **query))
            ]

        assert await names() == ["other", "train_10", "trainX1", "Train_1"]
        assert await names(statuses=("RUNNABLE",)) == ["other"]
        assert await names(statuses=("SUBMITTED", "RUNNABLE")) == await names()
        assert await names(statuses=("RUNNING",)) == []
        assert await names(name="train_1") == ["Train_1"]
        assert await names(name="train_1", name_prefix=True) == ["train_10", "Train_1"]
        assert await names(name="train", name_prefix=True) == ["train_10", "trainX1", "Train_1"]
        assert await names(created_before=300) == ["trainX1", "Train_1"]
        assert await names(created_after=300) == ["other"]
        assert await names(created_after=100, created_before=400) == ["train_10", "trainX1"]
        assert await names(share_identifier="teamA") == ["trainX1"]
        assert await names(quota_share_name="red") == ["train_10"]
        assert await names(quota_share_name="red", statuses=("RUNNABLE",)) == []

    run(db_url, scenario)


# -- saving and recovering jobs --------------------------------------------------------------


def test_save_jobs_writes_status_and_document_together(db_url: str) -> None:
    async def scenario(store: Store) -> None:
        jobs = [job(f"j{i}") for i in range(3)]
        for j in jobs:
            await store.job_writes.submit(j)
        changed = [
            dataclasses.replace(jobs[0], status=JobStatus.RUNNABLE, status_reason="waiting"),
            dataclasses.replace(
                jobs[1], status=JobStatus.FAILED, is_terminated=True, stopped_at=5, tags={"a": "b"}
            ),
        ]
        await store.job_writes.save(changed)
        await store.job_writes.save([])
        assert await store.job_reads.get(jobs[0].job_id) == changed[0]
        assert await store.job_reads.get(jobs[1].job_id) == changed[1]
        assert await store.job_reads.get(jobs[2].job_id) == jobs[2]
        failed = await page_of(store, JobQuery(queue="q", limit=10, statuses=("FAILED",)))
        assert failed == [changed[1]]
        assert await store.job_reads.count(queue="q", status="SUBMITTED") == 1
        assert await store.job_reads.count(queue="q", status="RUNNABLE") == 1

    run(db_url, scenario)


def test_active_jobs_are_the_unfinished_ones_in_submission_order(db_url: str) -> None:
    async def scenario(store: Store) -> None:
        statuses = [
            JobStatus.SUBMITTED,
            JobStatus.RUNNABLE,
            JobStatus.SCHEDULED,
            JobStatus.STARTING,
            JobStatus.RUNNING,
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
        ]
        jobs = [
            job(s.value, status=s, share_identifier=f"s{i % 2}") for i, s in enumerate(statuses)
        ]
        for j in reversed(jobs):
            await store.job_writes.submit(j)
        active = await active_jobs(store)
        assert [j.job_name for j in active] == [s.value for s in statuses[:5]]
        assert await store.job_reads.count_active(queue="q") == 5
        assert await store.job_reads.count_active(queue="other") == 0
        assert await store.job_reads.active_share_identifiers("q", 10) == {"s0", "s1"}
        assert len(await store.job_reads.active_share_identifiers("q", 1)) == 1
        assert sorted(await store.job_reads.active_ids("q")) == sorted(j.job_id for j in active)
        assert await active_jobs(store, "other") == []
        assert await store.job_reads.submitted_ids() == [jobs[0].job_id]
        await store.job_writes.save([dataclasses.replace(active[0], status=JobStatus.FAILED)])
        assert [j.job_id for j in await active_jobs(store)] == [j.job_id for j in active[1:]]

    run(db_url, scenario)


def test_everything_stored_is_there_after_reopening(db_url: str) -> None:
    stored: dict[str, Any] = {}

    async def write(store: Store) -> None:
        await store.resources.create(ServiceEnvironment, "e", env("e"), "Service environment")
        stored["job"] = await store.job_writes.submit(job("durable", token="keep"))

    async def read(store: Store) -> None:
        assert await store.resources.get(ServiceEnvironment, "e") == env("e")
        assert await store.job_reads.get(stored["job"].job_id) == stored["job"]
        assert await store.job_reads.by_token("keep") == stored["job"]

    run(db_url, write)
    run(db_url, read)


# -- training jobs and mail ------------------------------------------------------------------


def training(name: str, job_id: str, created: int, status: str = "InProgress") -> TrainingJob:
    return TrainingJob(
        training_job_name=name,
        training_job_arn=f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        job_id=job_id,
        creation_time=created,
        last_modified_time=created,
        training_job_status=status,
    )


def test_training_jobs_are_saved_with_their_jobs_and_paged_newest_first(db_url: str) -> None:
    async def scenario(store: Store) -> None:
        owner = job("owner")
        await store.job_writes.submit(owner)
        made = [training(f"t-{i}", owner.job_id, 100 + i) for i in range(5)]
        running = dataclasses.replace(owner, status=JobStatus.RUNNING)
        await store.job_writes.save([running], trained=made)
        done = dataclasses.replace(made[1], training_job_status="Completed")
        await store.job_writes.save([], trained=[done])

        assert await store.job_reads.get(owner.job_id) == running
        assert await store.training_jobs.get("t-1") == done
        assert await store.training_jobs.get("absent") is None
        first = await store.training_jobs.page(limit=2)
        assert first == [made[4], made[3]]
        last = first[-1]
        rest = await store.training_jobs.page(
            limit=10, after=(last.creation_time, last.training_job_name)
        )
        assert rest == [made[2], done, made[0]]
        assert await store.training_jobs.page(limit=10, status="Completed") == [done]
        assert await store.training_jobs.page(limit=10, name_contains="-3") == [made[3]]
        between = await store.training_jobs.page(limit=10, created_after=101, created_before=104)
        assert between == [made[3], made[2]]

    run(db_url, scenario)


def test_mail_is_read_oldest_first_and_stays_until_its_effect_is_saved(db_url: str) -> None:
    async def scenario(store: Store) -> None:
        assert await store.mailbox.read() == []
        await store.mailbox.post(MailKind.TERMINATE, "j1", {"reason": "stop, \u00e9"})
        await store.mailbox.post(MailKind.RELOAD, None, {})
        await store.mailbox.post(MailKind.UPDATE, "j2", {"priority": 3, "tags": {"a": "b"}})
        first = await store.mailbox.read(limit=2)
        assert [(m.kind, m.job_id, m.body) for m in first] == [
            (MailKind.TERMINATE, "j1", {"reason": "stop, \u00e9"}),
            (MailKind.RELOAD, None, {}),
        ]
        assert first[0].id < first[1].id
        assert all(isinstance(m, Mail) for m in first)
        # Read again by a leader that did not apply it: still there
        assert await store.mailbox.read(limit=2) == first
        # Removed only by the write that commits its effect
        await store.job_writes.save([], done_mail=[m.id for m in first])
        rest = await store.mailbox.read()
        assert [(m.kind, m.job_id, m.body) for m in rest] == [
            (MailKind.UPDATE, "j2", {"priority": 3, "tags": {"a": "b"}})
        ]
        await store.job_writes.save([], done_mail=[rest[0].id, rest[0].id])
        assert await store.mailbox.read() == []

    run(db_url, scenario)

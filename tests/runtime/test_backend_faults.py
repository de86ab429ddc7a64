"""Whatever goes wrong with one job's backend stays with that job: the cycle goes on for the
others, and a configuration that is put right takes effect at once."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from batchd.backends.base import Backend, LaunchSpec, Progress
from batchd.domain.resources import BACKEND_TAG, ServiceEnvironment
from batchd.runtime.loop import Runtime
from tests.support.harness import Harness

RUNNING = ("SCHEDULED", "STARTING", "RUNNING")


class BrokenBackend:
    """A backend with a bug: every call raises."""

    name = "broken"

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def start(self, spec: LaunchSpec) -> None:
        self.calls.append("start")
        raise RuntimeError("start exploded")

    async def poll(self, training_job_names: Sequence[str]) -> Sequence[Progress]:
        self.calls.append("poll")
        raise RuntimeError("poll exploded")

    async def stop(self, training_job_name: str) -> None:
        self.calls.append("stop")
        raise RuntimeError("stop exploded")

    async def log_hosts(self, training_job_name: str) -> Sequence[str]:
        raise RuntimeError("logs exploded")

    async def read_log(self, training_job_name: str, host: str, offset: int, limit: int) -> bytes:
        raise RuntimeError("logs exploded")

    async def close(self) -> None:
        pass


def use_backends(h: Harness, extra: dict[str, Backend]) -> None:
    """A new runtime (as after a restart) over the harness's store, ids and fake backend,
    with ``extra`` backends too."""
    h.run(h.runtime.close())
    h.runtime = Runtime(
        h.store, h.arns, h.clock, h.runtime.ids, {"fake": h.backend, **extra}, "fake"
    )
    h.run(h.runtime.start(loop=False))
    h.ctx = h._context()


def tag_backend(h: Harness, environment: str, backend: str | None) -> None:
    """Set the backend tag in the store itself, as no API call can any more."""

    def retag(env: ServiceEnvironment) -> ServiceEnvironment:
        tags = {k: v for k, v in env.tags.items() if k != BACKEND_TAG}
        if backend is not None:
            tags[BACKEND_TAG] = backend
        return dataclasses.replace(env, tags=tags)

    h.run(h.store.resources.modify(ServiceEnvironment, environment, retag))
    h.run(h.runtime.configuration_changed())


def two_queues(h: Harness) -> None:
    h.environment("good-env", {"NUM_INSTANCES": 4})
    h.queue("good", "good-env")
    h.environment("bad-env", {"NUM_INSTANCES": 4})
    h.queue("bad", "bad-env")


def test_a_job_whose_backend_does_not_exist_fails_alone_with_a_reason(h: Harness) -> None:
    # Given an environment whose tag names a backend this server does not run
    two_queues(h)
    tag_backend(h, "bad-env", "nope")
    # When jobs are submitted to it and to a healthy queue
    bad = h.submit("bad", name="bad", seconds=5)
    good = h.submit("good", name="good", seconds=5)
    h.tick(times=2)
    # Then the healthy job runs and the other fails, saying what is wrong and how to fix it
    assert h.status(good) in RUNNING
    job = h.job(bad)
    assert job["status"] == "FAILED"
    assert "'nope'" in job["statusReason"] and BACKEND_TAG in job["statusReason"]
    assert "fake" in job["statusReason"]
    # And once the tag is removed, new jobs run there at once, without a restart
    tag_backend(h, "bad-env", None)
    again = h.submit("bad", name="again", seconds=5)
    h.tick()
    assert h.status(again) in RUNNING
    for _ in range(3):
        h.tick(10)
    assert h.status(good) == "SUCCEEDED"
    assert h.status(again) == "SUCCEEDED"


def test_a_backend_that_raises_fails_its_job_and_the_cycle_goes_on(h: Harness) -> None:
    broken = BrokenBackend()
    use_backends(h, {"broken": broken})
    two_queues(h)
    tag_backend(h, "bad-env", "broken")
    bad = h.submit("bad", name="bad", seconds=5)
    good = h.submit("good", name="good", seconds=5)
    h.tick(times=2)
    assert broken.calls == ["start"]
    job = h.job(bad)
    assert job["status"] == "FAILED"
    assert job["statusReason"].endswith("InternalServerError: start exploded")
    h.tick(10, times=2)
    assert h.status(good) == "SUCCEEDED"


def test_a_backend_whose_reports_fail_holds_its_jobs_and_the_others_finish(h: Harness) -> None:
    # Given a job running on the fake backend, in an environment then moved to a backend
    # whose poll and stop raise (so the runtime asks the broken one about a job it holds)
    broken = BrokenBackend()
    use_backends(h, {"broken": broken})
    two_queues(h)
    stuck = h.submit("bad", name="stuck", seconds=5)
    h.tick()
    assert h.status(stuck) in RUNNING
    job = h.run(h.store.job_reads.get(stuck))
    assert job is not None and job.current is not None
    moved = dataclasses.replace(job, current=dataclasses.replace(job.current, backend="broken"))
    h.run(h.store.job_writes.save([moved]))
    use_backends(h, {"broken": broken})
    # When cycles run, a job on a healthy backend still moves
    good = h.submit("good", name="good", seconds=5)
    h.tick(times=2)
    h.tick(10, times=2)
    assert h.status(good) == "SUCCEEDED"
    # Then the stuck job keeps its state while its backend cannot report, and a terminate
    # whose stop raises still records the request
    assert "poll" in broken.calls
    assert h.status(stuck) in RUNNING
    h.call("TerminateServiceJob", jobId=stuck, reason="operator")
    assert broken.calls[-1] == "stop"
    assert h.status(stuck) in RUNNING

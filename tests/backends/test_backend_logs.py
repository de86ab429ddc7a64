"""Log streams through the backends: the runtime's ``BackendLogs`` finds the backend with the
output, whether or not the caller knows which one ran the training job."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from batchd.backends.fake import FakeBackend
from batchd.clock import SystemClock
from batchd.runtime.logs import BackendLogs
from tests.backends.conftest import new_backend, python_job, run_to_end, spec_for


def _no_wake() -> None:
    return None


@pytest.mark.parametrize("ran_on", ["local", None, "fake", "gone"])
def test_the_backend_with_the_output_answers_whichever_is_named(
    data_dir: Path, ran_on: str | None
) -> None:
    spec = spec_for(python_job("print('from the job')"))
    name = spec.training_job_name

    async def scenario() -> tuple[Sequence[str], bytes, Sequence[str], bytes]:
        local = new_backend(data_dir)
        await run_to_end(local, spec)
        logs = BackendLogs({"fake": FakeBackend(SystemClock(), _no_wake), "local": local})
        hosts = await logs.log_hosts(name, ran_on)
        body = await logs.read_log(name, ran_on, "algo-1", 0, 1 << 20)
        unknown = "AWSBatchunknown" + "0" * 32
        return (
            hosts,
            body,
            await logs.log_hosts(unknown, ran_on),
            await logs.read_log(unknown, ran_on, "algo-1", 0, 100),
        )

    hosts, body, unknown_hosts, unknown_body = asyncio.run(scenario())
    assert list(hosts) == ["algo-1"]
    assert b"from the job" in body
    assert (list(unknown_hosts), unknown_body) == ([], b"")


def test_fake_training_jobs_have_no_output() -> None:
    spec = spec_for({"Environment": {"BATCHD_FAKE_DURATION_SECONDS": "0"}})

    async def scenario() -> tuple[Sequence[str], bytes]:
        fake = FakeBackend(SystemClock(), _no_wake)
        await fake.start(spec)
        name = spec.training_job_name
        hosts = await fake.log_hosts(name)
        body = await fake.read_log(name, "algo-1", 0, 100)
        await fake.close()
        return hosts, body

    assert asyncio.run(scenario()) == ((), b"")

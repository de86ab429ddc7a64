"""The test fixture (batchd.testing): setup per test, and a simulated day of a busy queue.

Part 1 times what every test pays before it starts: ``mock_batchd()`` entered and left (the
pytest fixture ``batchd`` does exactly this) on a server that the previous "test" left with
resources and jobs, so the reset has rows to delete. The peers are moto's suggested fixtures:
``ThreadedMotoServer`` with a ``POST /moto-api/reset`` per test, and ``mock_aws()`` entered and
left in process. Part 2 submits a day's work to one queue and runs ``advance`` through a
simulated day, hour by hour as a test would: the real time of that day is the number to read.
moto has no clock to advance, so part 2 has no peer.

    .venv/bin/python -m bench.fixture [--tests 200] [--jobs 5000] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from bench.benchlib.machine import describe_machine
from bench.benchlib.resources import moto_queue
from bench.benchlib.table import fmt, percentile, print_table

from batchd.testing import Batchd, Outcome, mock_batchd

DAY = 86_400


def _payload(name: str, seconds: float) -> str:
    return json.dumps(
        {
            "TrainingJobName": name,
            "RoleArn": "arn:aws:iam::123456789012:role/R",
            "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
            "OutputDataConfig": {"S3OutputPath": "s3://bench/out"},
            "Environment": {"BATCHD_FAKE_DURATION_SECONDS": str(seconds)},
        }
    )


def _queue(batch: Any, instances: int) -> None:
    batch.create_service_environment(
        serviceEnvironmentName="env",
        serviceEnvironmentType="SAGEMAKER_TRAINING",
        capacityLimits=[{"maxCapacity": instances, "capacityUnit": "NUM_INSTANCES"}],
    )
    batch.create_job_queue(
        jobQueueName="q",
        jobQueueType="SAGEMAKER_TRAINING",
        priority=1,
        serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "env"}],
    )


def _leave_behind(handle: Batchd) -> None:
    """What a typical test leaves for the next one's reset: a queue and a few jobs."""
    batch = handle.client()
    _queue(batch, 4)
    for n in range(5):
        batch.submit_service_job(
            jobName=f"left{n}",
            jobQueue="q",
            serviceJobType="SAGEMAKER_TRAINING",
            serviceRequestPayload=_payload("left", 60),
        )
    handle.advance(30)


def _time_setups(tests: int, setup: Callable[[], None], between: Callable[[], None]) -> list[float]:
    times = []
    for _ in range(tests):
        between()
        started = time.perf_counter()
        setup()
        times.append((time.perf_counter() - started) * 1000)
    return times


def batchd_setups(tests: int) -> tuple[float, list[float]]:
    started = time.perf_counter()
    with mock_batchd() as handle:  # the session's server starts here
        first = time.perf_counter() - started
        _leave_behind(handle)
    times = []
    for _ in range(tests):
        begun = time.perf_counter()
        handle = mock_batchd().start()
        times.append((time.perf_counter() - begun) * 1000)
        _leave_behind(handle)
        handle.stop()
    return first, times


def moto_setups(tests: int) -> dict[str, list[float]]:
    from moto import mock_aws
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"

    def reset() -> None:
        request = urllib.request.Request(f"{url}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def leave_behind() -> None:
        moto_queue(url)

    try:
        threaded = _time_setups(tests, reset, leave_behind)
    finally:
        server.stop()

    def in_process() -> None:
        mock = mock_aws()
        mock.start()
        mock.stop()

    return {
        "ThreadedMotoServer + /moto-api/reset": threaded,
        "mock_aws() start + stop": (_time_setups(tests, in_process, lambda: None)),
    }


def _name(n: int) -> str:
    return f"job-{n:06d}"  # a name no other is a prefix of, for the scripted rules


def simulated_day(jobs: int, instances: int, seed: int = 7) -> dict[str, float]:
    rng = random.Random(seed)
    with mock_batchd() as handle:
        batch = handle.client()
        _queue(batch, instances)
        # One job in twenty fails once with an internal error, and is retried (attempts 2).
        for n in range(0, jobs, 20):
            handle.script(Outcome.fail("InternalServerError: scripted"), name=_name(n))
        retry = {"attempts": 2}
        started = time.perf_counter()
        for n in range(jobs):
            batch.submit_service_job(
                jobName=_name(n),
                jobQueue="q",
                serviceJobType="SAGEMAKER_TRAINING",
                serviceRequestPayload=_payload(_name(n), rng.uniform(300, 3300)),
                retryStrategy=retry,
            )
        submitted = time.perf_counter() - started
        started = time.perf_counter()
        cycles = sum(handle.advance(3600) for _ in range(DAY // 3600))
        day = time.perf_counter() - started
        done = succeeded = 0
        for status in ("SUCCEEDED", "FAILED"):
            pages = batch.get_paginator("list_service_jobs").paginate(
                jobQueue="q", jobStatus=status
            )
            count = sum(len(page["jobSummaryList"]) for page in pages)
            done += count
            succeeded += count if status == "SUCCEEDED" else 0
    return {
        "jobs": jobs,
        "submit_s": submitted,
        "day_s": day,
        "cycles": cycles,
        "done": done,
        "succeeded": succeeded,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=200, help="setups timed per fixture")
    parser.add_argument("--jobs", type=int, default=5000, help="jobs submitted for the day")
    parser.add_argument("--instances", type=int, default=200, help="capacity of the queue")
    parser.add_argument("--no-moto", action="store_true", help="skip moto's setups")
    parser.add_argument("--smoke", action="store_true", help="20 setups, 100 jobs")
    args = parser.parse_args()
    if args.smoke:
        args.tests, args.jobs, args.instances = 20, 100, 10
    first, ours = batchd_setups(args.tests)
    peers = {} if args.no_moto else moto_setups(args.tests)
    day = simulated_day(args.jobs, args.instances)
    print(describe_machine())
    rows = [["batchd: mock_batchd() start + stop (reset)", *_summary(ours)]]
    rows += [[f"moto: {name}", *_summary(times)] for name, times in peers.items()]
    print_table(
        f"Fixture setup per test, ms ({args.tests} tests; batchd's server started once "
        f"in {first * 1000:.0f} ms)",
        ["fixture", "median", "p90", "max"],
        rows,
    )
    print_table(
        f"A simulated day: {args.jobs} jobs of 5-55 min on {args.instances} instances, "
        "advance(3600) x 24",
        ["jobs", "submit s", "real s per simulated day", "cycles", "done", "succeeded"],
        [
            [
                fmt(day["jobs"]),
                fmt(day["submit_s"], 2),
                fmt(day["day_s"], 2),
                fmt(day["cycles"]),
                fmt(day["done"]),
                fmt(day["succeeded"]),
            ]
        ],
    )


def _summary(times: list[float]) -> list[str]:
    return [fmt(statistics.median(times), 2), fmt(percentile(times, 90), 2), fmt(max(times), 2)]


if __name__ == "__main__":
    main()

"""The runtime driven by hand: real operations, store, planner and fake backend; a manual clock.

Every call goes through the operation's model validation and handler, exactly as over HTTP,
and returns the serialized output. ``tick`` runs one scheduling cycle at the current time, so
scenarios advance time explicitly and never sleep.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

from batchd.api import app as _app  # noqa: F401  (registers every operation)
from batchd.backends.fake import FakeBackend
from batchd.clock import VirtualClock
from batchd.domain.arns import Arns
from batchd.operations.context import Context, Limits
from batchd.operations.registry import HANDLERS
from batchd.protocol.model import batch_model
from batchd.protocol.serialize import serialize
from batchd.protocol.validate import validate
from batchd.runtime.logs import BackendLogs
from batchd.runtime.loop import Runtime
from batchd.storage.store import Store

T = TypeVar("T")

START_MS = 1_700_000_000_000


class ManualClock(VirtualClock):
    """batchd's virtual clock, starting at ``START_MS``; scenarios move ``now`` by hand."""

    def __init__(self, now_ms: int = START_MS) -> None:
        super().__init__(now_ms)


class CountingIds:
    def __init__(self) -> None:
        self._jobs = itertools.count(1)
        self._attempts = itertools.count(1)

    def job_id(self) -> str:
        return f"00000000-0000-4000-8000-{next(self._jobs):012d}"

    def attempt_id(self) -> str:
        return f"{next(self._attempts):032x}"


class Harness:
    def __init__(self, db_url: str, limits: Limits | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock()
        self.store = self.run(Store.open(db_url))
        self.arns = Arns("us-east-1", "123456789012")
        self.backend = FakeBackend(self.clock, lambda: None)
        self.runtime = Runtime(
            self.store, self.arns, self.clock, CountingIds(), {"fake": self.backend}, "fake"
        )
        self.run(self.runtime.start(loop=False))
        self.limits = limits or Limits()
        self.ctx = self._context()

    def _context(self) -> Context:
        return Context(
            store=self.store,
            arns=self.arns,
            clock=self.clock,
            ids=self.runtime.ids,
            control=self.runtime,
            logs=BackendLogs({"fake": self.backend}),
            limits=self.limits,
            backends=frozenset(self.runtime.core.backends),
        )

    def run(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.runtime.close())
        self.run(self.store.close())
        self.loop.close()

    def call(self, operation: str, **params: Any) -> Any:
        op = batch_model().operation_model(operation)
        validate(operation, op.input_shape, params)
        result: Any = self.run(HANDLERS[operation](self.ctx, params))
        return serialize(op.output_shape, result)

    def tick(self, seconds: float = 0.0, times: int = 1) -> None:
        """Advance the clock, then run ``times`` cycles."""
        self.clock.now += int(seconds * 1000)
        for _ in range(times):
            self.run(self.runtime.tick(self.clock.now))

    def restart(self) -> None:
        """A new runtime and backend over the same store, as after a server crash."""
        self.backend = FakeBackend(self.clock, lambda: None)
        self.runtime = Runtime(
            self.store, self.arns, self.clock, CountingIds(), {"fake": self.backend}, "fake"
        )
        self.run(self.runtime.start(loop=False))
        self.ctx = self._context()

    # -- conveniences ------------------------------------------------------------------------

    def job(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("DescribeServiceJob", jobId=job_id)
        return result

    def status(self, job_id: str) -> str:
        return str(self.job(job_id)["status"])

    def environment(self, name: str, limits: dict[str, int], state: str = "ENABLED") -> None:
        self.call(
            "CreateServiceEnvironment",
            serviceEnvironmentName=name,
            serviceEnvironmentType="SAGEMAKER_TRAINING",
            state=state,
            capacityLimits=[{"maxCapacity": n, "capacityUnit": u} for u, n in limits.items()],
        )

    def queue(self, name: str, env: str, priority: int = 1, **extra: Any) -> None:
        self.call(
            "CreateJobQueue",
            jobQueueName=name,
            jobQueueType="SAGEMAKER_TRAINING",
            priority=priority,
            serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": env}],
            **extra,
        )

    def submit(
        self,
        queue: str,
        name: str = "job",
        instances: int = 1,
        instance_type: str = "ml.m5.large",
        seconds: float = 10,
        outcome: str = "Completed",
        failure: str | None = None,
        launch_error: str | None = None,
        **extra: Any,
    ) -> str:
        env = {"BATCHD_FAKE_DURATION_SECONDS": str(seconds), "BATCHD_FAKE_OUTCOME": outcome}
        if failure:
            env["BATCHD_FAKE_FAILURE_REASON"] = failure
        if launch_error:
            env["BATCHD_FAKE_LAUNCH_ERROR"] = launch_error
        payload = {
            "TrainingJobName": name,
            "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
            "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
            "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": instances},
            "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
            "Environment": env,
        }
        out = self.call(
            "SubmitServiceJob",
            jobName=name,
            jobQueue=queue,
            serviceJobType="SAGEMAKER_TRAINING",
            serviceRequestPayload=json.dumps(payload),
            **extra,
        )
        return str(out["jobId"])


def harness_for(db_url: str, _tmp: Path) -> Harness:
    return Harness(db_url)

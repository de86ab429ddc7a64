"""Scripted outcomes: what the next matching training jobs of the fake backend do, set from
the test instead of the payload under test.

A rule matches a job by the start of its name (the service job's ``jobName`` or the payload's
``TrainingJobName``) and by tags; the first rule with uses left decides each start (every
attempt is a start), and the payload's ``BATCHD_FAKE_*`` variables decide when none matches.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from batchd.backends.base import LaunchSpec, TrainingPhase
from batchd.backends.fake import FakeRun

__all__ = ["Outcome", "Rule", "Rules"]

_CAPACITY = "CapacityError: Unable to provision requested ML compute capacity (scripted)"


class Outcome:
    """Constructors of what a training job does; each returns a FakeRun."""

    @staticmethod
    def succeed(after: float = 1.0) -> FakeRun:
        """Run ``after`` seconds, then complete."""
        return FakeRun(after)

    @staticmethod
    def fail(reason: str = "AlgorithmError: scripted failure", after: float = 0.0) -> FakeRun:
        """Run ``after`` seconds, then fail with SageMaker's FailureReason ``reason``
        (``"InternalServerError: ..."``, ``"AlgorithmError: ..."``); evaluateOnExit sees
        ``Received status from SageMaker: <reason>``."""
        return FakeRun(after, TrainingPhase.FAILED, reason)

    @staticmethod
    def capacity_error(after: float = 60.0, reason: str = _CAPACITY) -> FakeRun:
        """Wait ``after`` seconds Pending (SCHEDULED), then fail with a CapacityError: the
        job goes back to RUNNABLE and no attempt is used, as on SageMaker. It is dispatched
        again at once, so with ``times=None`` keep ``after`` above zero."""
        return FakeRun(after, TrainingPhase.FAILED, reason, early=True)

    @staticmethod
    def lost(
        after: float = 0.0,
        reason: str = "InternalServerError: the instance was lost (scripted)",
    ) -> FakeRun:
        """Vanish after ``after`` seconds of training (an instance reclaimed, a host gone):
        a failed attempt with ``reason``."""
        return FakeRun(after, TrainingPhase.LOST, reason)

    @staticmethod
    def stopped(after: float = 0.0) -> FakeRun:
        """Stop by itself after ``after`` seconds, nobody having asked: a failed attempt."""
        return FakeRun(after, TrainingPhase.STOPPED)

    @staticmethod
    def refused(code: str = "ResourceLimitExceeded", message: str = "scripted") -> FakeRun:
        """CreateTrainingJob refuses the job (``code: message``); ``CapacityError`` requeues
        it, any other code is a failed attempt."""
        return FakeRun(launch_error=(code, message))


@dataclass
class Rule:
    """One scripted outcome; ``remaining`` None means every matching start."""

    run: FakeRun
    name: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    remaining: int | None = 1
    used: int = 0

    def matches(self, job_name: str | None, spec: LaunchSpec) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.name is not None:
            names = (job_name or "", str(spec.payload.get("TrainingJobName") or ""))
            if not any(each.startswith(self.name) for each in names):
                return False
        return all(spec.tags.get(key) == value for key, value in self.tags.items())


class Rules:
    """The rules of one server, asked by its fake backend at each start. The test thread adds
    rules while the server's thread reads them: one lock."""

    def __init__(self, job_name: Callable[[str], str | None]) -> None:
        self._job_name = job_name  # service job id -> its jobName, from the runtime
        self._rules: list[Rule] = []
        self._lock = threading.Lock()

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def __call__(self, spec: LaunchSpec) -> FakeRun | None:
        job_name = self._job_name(spec.job_id)
        with self._lock:
            for rule in self._rules:
                if rule.matches(job_name, spec):
                    rule.used += 1
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    return rule.run
        return None

"""What an attempt's Jobs and pods say, in SageMaker's terms: pure functions over API objects.

Objects are the API's JSON (camelCase dicts). Each host is one Job and its pod; the pod runs
``stage`` and ``training`` as init containers and ``finish`` as its container, so where a host
is follows from which of those has started: bound to a node is SageMaker's Pending with
capacity found, ``stage`` running is Downloading, ``training`` started is Training.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from batchd.backends.local.artifacts import upload_failure
from batchd.backends.local.attempt import FAILURE_REASON_LIMIT, algorithm_error

__all__ = ["HostState", "HostView", "container_state", "view_host"]

Obj = Mapping[str, Any]


class HostState(enum.IntEnum):
    """Ordered: an attempt is as far as its least advanced host."""

    WAITING = 0  # no pod yet, or not bound to a node
    DOWNLOADING = 1
    TRAINING = 2
    UPLOADING = 3
    DONE = 4
    FAILED = 5
    DEADLINE = 6  # the Job's activeDeadlineSeconds passed


@dataclass(frozen=True)
class HostView:
    state: HostState
    reason: str | None = None  # set with FAILED: SageMaker's FailureReason text
    unschedulable: str | None = None  # the scheduler's message while it cannot place the pod
    training_exit_code: int | None = None  # so the caller can add the last line of stderr


def _condition(obj: Obj | None, kind: str) -> Obj | None:
    for found in ((obj or {}).get("status") or {}).get("conditions") or ():
        if found.get("type") == kind and found.get("status") == "True":
            return found  # type: ignore[no-any-return]
    return None


def container_state(pod: Obj, name: str) -> tuple[str, Obj] | None:
    """(``running`` | ``terminated`` | ``waiting``, details) of the named container."""
    status = pod.get("status") or {}
    for entry in (status.get("initContainerStatuses") or []) + (
        status.get("containerStatuses") or []
    ):
        if entry.get("name") == name:
            for kind in ("terminated", "running", "waiting"):
                details = (entry.get("state") or {}).get(kind)
                if details is not None:
                    return kind, details
    return None


def _exit(pod: Obj, name: str) -> tuple[int, str] | None:
    found = container_state(pod, name)
    if found is None or found[0] != "terminated":
        return None
    return int(found[1].get("exitCode", 0)), str(found[1].get("message") or "").strip()


def _failure(pod: Obj) -> HostView:
    """Why a failed pod failed, as SageMaker would word it."""
    stage = _exit(pod, "stage")
    if stage is not None and stage[0] != 0:
        fallback = f"ClientError: staging the input data failed, exit code: {stage[0]}"
        text = _last_line(stage[1]) or fallback
        return HostView(HostState.FAILED, text[:FAILURE_REASON_LIMIT])
    training = _exit(pod, "training")
    if training is not None and training[0] != 0:
        if training[1]:
            return HostView(HostState.FAILED, training[1][:FAILURE_REASON_LIMIT])
        return HostView(
            HostState.FAILED, algorithm_error(None, training[0]), training_exit_code=training[0]
        )
    finish = _exit(pod, "finish")
    if finish is not None and finish[0] != 0:
        detail = _last_line(finish[1]) or f"exit code: {finish[0]}"
        return HostView(HostState.FAILED, upload_failure(detail))
    status = pod.get("status") or {}
    detail = ": ".join(str(x) for x in (status.get("reason"), status.get("message")) if x)
    name = (pod.get("metadata") or {}).get("name")
    text = f"InternalServerError: pod {name} failed" + (f": {detail}" if detail else "")
    return HostView(HostState.FAILED, text[:FAILURE_REASON_LIMIT])


def _last_line(text: str) -> str:
    """A batchd step's message is the tail of its log; its reason is the last line."""
    return next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")


def _unschedulable(pod: Obj) -> str | None:
    for found in (pod.get("status") or {}).get("conditions") or ():
        if (
            found.get("type") == "PodScheduled"
            and found.get("status") == "False"
            and found.get("reason") == "Unschedulable"
        ):
            return str(found.get("message") or "Unschedulable")
    return None


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _past_deadline(job: Obj | None, at: object) -> bool:
    """Whether ``at`` (an API timestamp) is past the Job's activeDeadlineSeconds.

    When the deadline passes, the Job controller deletes the pod; the killed training then
    fails the pod, and 1.20 may record BackoffLimitExceeded rather than DeadlineExceeded."""
    deadline = ((job or {}).get("spec") or {}).get("activeDeadlineSeconds")
    started = _time(((job or {}).get("status") or {}).get("startTime"))
    when = _time(at)
    if not deadline or started is None or when is None:
        return False
    return (when - started).total_seconds() >= int(deadline) - 1


def view_host(job: Obj | None, pods: Sequence[Obj]) -> HostView:
    """One host from its Job and the Job's pods (normally one; newest last)."""
    failed = _condition(job, "Failed")
    if failed is not None and (
        failed.get("reason") == "DeadlineExceeded"
        or _past_deadline(job, failed.get("lastTransitionTime"))
    ):
        return HostView(HostState.DEADLINE)
    pod = pods[-1] if pods else None
    if pod is not None and (pod.get("status") or {}).get("phase") == "Failed":
        if _past_deadline(job, (pod.get("metadata") or {}).get("deletionTimestamp")):
            return HostView(HostState.DEADLINE)
        return _failure(pod)
    if failed is not None:
        text = f"{failed.get('reason', 'Failed')}: {failed.get('message', '')}".strip(": ")
        return HostView(HostState.FAILED, f"InternalServerError: {text}")
    if _condition(job, "Complete") is not None:
        return HostView(HostState.DONE)
    if pod is None:
        return HostView(HostState.WAITING)
    if (pod.get("status") or {}).get("phase") == "Succeeded":
        return HostView(HostState.DONE)
    if container_state(pod, "finish") is not None and _exit(pod, "training") is not None:
        return HostView(HostState.UPLOADING)
    if (found := container_state(pod, "training")) is not None and found[0] != "waiting":
        return HostView(HostState.TRAINING)
    if (pod.get("spec") or {}).get("nodeName"):
        return HostView(HostState.DOWNLOADING)
    return HostView(HostState.WAITING, unschedulable=_unschedulable(pod))


def attempt_state(hosts: Sequence[HostView]) -> HostView:
    """The attempt: the first failed host's failure; else the least advanced host."""
    for view in hosts:
        if view.state in (HostState.FAILED, HostState.DEADLINE):
            return view
    least = min(hosts, key=lambda view: view.state)
    if least.state is HostState.WAITING:
        message = next((view.unschedulable for view in hosts if view.unschedulable), None)
        return HostView(HostState.WAITING, unschedulable=message)
    return least

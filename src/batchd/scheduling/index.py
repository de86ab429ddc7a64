"""The runtime-owned, incrementally maintained index the planner reads.

RUNNABLE jobs wait in lanes: one lane per queue and ``Job.lane`` (quota share name, else share
identifier, else ``""``). A named lane is ordered by (-priority, created_at, seq); the unnamed lane
(FIFO queues) by (created_at, seq) only, since schedulingPriority has no effect there. Dispatched
jobs (SCHEDULED/STARTING/RUNNING) are grouped per environment, queue and lane, each group keeping
the instances it holds and the part of it already being stopped. Every operation is O(log n) in
the jobs of one lane plus the instance types of the job.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Final

from batchd.scheduling.lanes import Key, OrderedLane
from batchd.scheduling.model import DISPATCHED_STATUSES, Job

__all__ = ["JobIndex", "Tally"]

_STATUSES: Final = DISPATCHED_STATUSES | {"RUNNABLE"}
_EMPTY_LANES: Final[Mapping[str, OrderedLane[Job]]] = {}
_EMPTY_JOBS: Final[Mapping[str, Job]] = {}
_EMPTY_SET: Final[frozenset[str]] = frozenset()


class Tally(dict[str, int]):
    """Instances per instance type; zero counts are dropped so iteration stays short."""

    def add(self, demand: Mapping[str, int], sign: int = 1) -> None:
        for unit, count in demand.items():
            value = self.get(unit, 0) + sign * count
            if value:
                self[unit] = value
            else:
                self.pop(unit, None)


class _Group:
    """Dispatched jobs of one environment, queue or lane, and what they hold."""

    __slots__ = ("held", "jobs", "releasing")

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.held = Tally()
        self.releasing = Tally()

    def add(self, job: Job, sign: int) -> None:
        if sign > 0:
            self.jobs[job.job_id] = job
        else:
            del self.jobs[job.job_id]
        self.held.add(job.demand, sign)
        if job.stopping:
            self.releasing.add(job.demand, sign)


def _lane_key(job: Job) -> Key:
    if job.lane:
        return (-job.priority, job.created_at, job.seq)
    return (0, job.created_at, job.seq)


def _deadline(job: Job) -> int | None:
    if job.scheduled_at is None or job.attempt_timeout_seconds is None:
        return None
    return job.scheduled_at + job.attempt_timeout_seconds * 1000


class JobIndex:
    """Jobs the planner may act on, by id, by lane, and by where they hold capacity."""

    def __init__(self, jobs: Iterable[Job] = ()) -> None:
        self._jobs: dict[str, Job] = {}
        self._lanes: dict[str, dict[str, OrderedLane[Job]]] = {}
        self._blocked: dict[tuple[str, str], set[str]] = {}
        self._by_env: dict[str, _Group] = {}
        self._by_queue: dict[str, _Group] = {}
        self._by_share: dict[str, dict[str, _Group]] = {}
        self._deadlines: OrderedLane[Job] = OrderedLane()
        self._last_left: dict[str, int] = {}
        for job in jobs:
            self.add(job)

    # -- mutation -------------------------------------------------------------------------------

    def add(self, job: Job) -> None:
        if job.job_id in self._jobs:
            raise ValueError(f"job {job.job_id} is already indexed")
        if job.status not in _STATUSES:
            raise ValueError(f"job {job.job_id} has status {job.status}, not one the planner uses")
        self._jobs[job.job_id] = job
        if job.is_dispatched:
            self._add_dispatched(job, 1)
        else:
            self._add_runnable(job)

    def remove(self, job_id: str, at: int | None = None) -> Job:
        """Forget a job; ``at`` (when it left a lane) feeds ``earliestTimeAtPosition``."""
        job = self._jobs.pop(job_id)
        if job.is_dispatched:
            self._add_dispatched(job, -1)
        else:
            self._remove_runnable(job)
            if at is not None:
                self._note_left(job.queue, at)
        return job

    def replace(self, job: Job) -> None:
        """Swap in a new version of an indexed job (status, priority, blocking, stopping...)."""
        old = self._jobs[job.job_id]
        if job.status not in _STATUSES:
            raise ValueError(f"job {job.job_id} has status {job.status}, not one the planner uses")
        if not old.is_dispatched and not job.is_dispatched and old.lane == job.lane:
            self._jobs[job.job_id] = job
            self._lane(job.queue, job.lane).put(job.job_id, _lane_key(job), job)
            self._track_blocked(job)
            return
        self.remove(job.job_id)
        self.add(job)
        if not old.is_dispatched and job.is_dispatched and job.scheduled_at is not None:
            self._note_left(job.queue, job.scheduled_at)

    # -- reading --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self) -> Iterator[Job]:
        return iter(self._jobs.values())

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._jobs

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def __getitem__(self, job_id: str) -> Job:
        return self._jobs[job_id]

    def lanes(self, queue: str) -> Mapping[str, OrderedLane[Job]]:
        """The non-empty RUNNABLE lanes of a queue, by lane name."""
        return self._lanes.get(queue, _EMPTY_LANES)

    def blocked_in_lane(self, queue: str, lane: str) -> frozenset[str] | set[str]:
        """RUNNABLE jobs of a lane that currently show a blocking reason."""
        return self._blocked.get((queue, lane), _EMPTY_SET)

    def dispatched_in_environment(self, environment: str) -> Mapping[str, Job]:
        group = self._by_env.get(environment)
        return group.jobs if group else _EMPTY_JOBS

    def dispatched_in_queue(self, queue: str) -> Mapping[str, Job]:
        group = self._by_queue.get(queue)
        return group.jobs if group else _EMPTY_JOBS

    def dispatched_in_lane(self, queue: str, lane: str) -> Mapping[str, Job]:
        group = self._by_share.get(queue, {}).get(lane)
        return group.jobs if group else _EMPTY_JOBS

    def held_in_environment(self, environment: str) -> Mapping[str, int]:
        group = self._by_env.get(environment)
        return group.held if group else Tally()

    def releasing_in_environment(self, environment: str) -> Mapping[str, int]:
        group = self._by_env.get(environment)
        return group.releasing if group else Tally()

    def held_by_queue(self, queue: str) -> Mapping[str, int]:
        group = self._by_queue.get(queue)
        return group.held if group else Tally()

    def held_by_lanes(self, queue: str) -> Mapping[str, Mapping[str, int]]:
        """Instances held per lane of a queue, for lanes with dispatched jobs."""
        return {name: group.held for name, group in self._by_share.get(queue, {}).items()}

    def releasing_by_lanes(self, queue: str) -> Mapping[str, Mapping[str, int]]:
        return {name: group.releasing for name, group in self._by_share.get(queue, {}).items()}

    def expired_attempts(self, now: int) -> Iterator[Job]:
        """Dispatched jobs whose attempt deadline is at or before ``now``, earliest first."""
        for job in self._deadlines:
            deadline = _deadline(job)
            if deadline is None or deadline > now:
                return
            yield job

    def next_deadline(self) -> int | None:
        """The earliest attempt deadline of a dispatched job, if any has one."""
        for job in self._deadlines:
            return _deadline(job)
        return None

    def last_left_at(self, queue: str) -> int | None:
        """When a RUNNABLE job last left the queue's lanes (dispatched or removed), if known."""
        return self._last_left.get(queue)

    # -- internals ------------------------------------------------------------------------------

    def _lane(self, queue: str, lane: str) -> OrderedLane[Job]:
        lanes = self._lanes.setdefault(queue, {})
        found = lanes.get(lane)
        if found is None:
            found = lanes[lane] = OrderedLane()
        return found

    def _add_runnable(self, job: Job) -> None:
        self._lane(job.queue, job.lane).put(job.job_id, _lane_key(job), job)
        self._track_blocked(job)

    def _remove_runnable(self, job: Job) -> None:
        lanes = self._lanes[job.queue]
        lane = lanes[job.lane]
        lane.discard(job.job_id)
        if not lane:
            del lanes[job.lane]
            if not lanes:
                del self._lanes[job.queue]
        self._track_blocked(job, present=False)

    def _track_blocked(self, job: Job, present: bool = True) -> None:
        key = (job.queue, job.lane)
        if present and job.blocked_reason is not None:
            self._blocked.setdefault(key, set()).add(job.job_id)
            return
        blocked = self._blocked.get(key)
        if blocked is not None:
            blocked.discard(job.job_id)
            if not blocked:
                del self._blocked[key]

    def _add_dispatched(self, job: Job, sign: int) -> None:
        groups = [self._group(self._by_queue, job.queue), self._share_group(job)]
        if job.environment is not None:
            groups.append(self._group(self._by_env, job.environment))
        for group in groups:
            group.add(job, sign)
        if sign < 0:
            self._prune_empty(job)
        deadline = _deadline(job)
        if deadline is not None:
            if sign > 0:
                self._deadlines.put(job.job_id, (deadline, job.seq, 0), job)
            else:
                self._deadlines.discard(job.job_id)

    @staticmethod
    def _group(groups: dict[str, _Group], name: str) -> _Group:
        group = groups.get(name)
        if group is None:
            group = groups[name] = _Group()
        return group

    def _share_group(self, job: Job) -> _Group:
        return self._group(self._by_share.setdefault(job.queue, {}), job.lane)

    def _prune_empty(self, job: Job) -> None:
        if not self._by_queue[job.queue].jobs:
            del self._by_queue[job.queue]
        shares = self._by_share[job.queue]
        if not shares[job.lane].jobs:
            del shares[job.lane]
            if not shares:
                del self._by_share[job.queue]
        if job.environment is not None and not self._by_env[job.environment].jobs:
            del self._by_env[job.environment]

    def _note_left(self, queue: str, at: int) -> None:
        self._last_left[queue] = max(at, self._last_left.get(queue, at))

"""``KubernetesBackend``: each attempt runs as pods of a Kubernetes cluster.

batchd stays the queue; Kubernetes only runs what batchd dispatched. ``start`` creates the
attempt's Service and one Job per host (all or none), ``poll`` reads a watched copy of the
namespace (``informer``) without I/O, ``stop`` deletes the attempt's objects with foreground
propagation and reports the attempt stopped once they are gone. The cluster holds everything a
new leader needs: it adopts the attempts by their labels.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from batchd.backends.base import LaunchError, LaunchSpec, Progress, TrainingPhase, Wake
from batchd.backends.kubernetes import observe
from batchd.backends.kubernetes.informer import Informer, Obj
from batchd.backends.kubernetes.instance_types import UnknownInstanceType
from batchd.backends.kubernetes.manifests import (
    HOST,
    PodSettings,
    attempt_objects,
    host_job_name,
    service_name,
)
from batchd.backends.kubernetes.observe import HostState, HostView
from batchd.backends.kubernetes.orphans import orphans
from batchd.backends.kubernetes.pod_logs import PodLogs, label
from batchd.backends.kubernetes.state import (
    CAPACITY,
    PHASES,
    AttemptState,
    api_message,
)
from batchd.backends.local.artifacts import output_prefix
from batchd.backends.local.attempt import MAX_RUNTIME_REASON, STOPPED_REASON, algorithm_error
from batchd.backends.local.payload import InvalidRequest, TrainingRequest, parse_request

__all__ = ["KubernetesBackend"]

_log = logging.getLogger(__name__)
_SYNC_SECONDS = 30.0
_WATCH_LAG_SECONDS = 30.0  # how long a just-created attempt may be missing from the watch
_REDELETE_SECONDS = 10.0


class KubernetesBackend:
    """Runs SageMaker training jobs as batch/v1 Jobs in one namespace."""

    name = "kubernetes"

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        pod_settings: PodSettings,
        *,
        wake: Wake,
        unschedulable_seconds: float = 300.0,
        orphan_sweep_seconds: float = 60.0,
        keep_finished: int = 4096,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.namespace = namespace
        self.pod_settings = pod_settings
        self.unschedulable_seconds = unschedulable_seconds
        self.orphan_sweep_seconds = orphan_sweep_seconds
        self._last_sweep = time.monotonic()  # adoption comes first: sweep a period later
        self._finished: collections.deque[str] = collections.deque()
        self._keep_finished = keep_finished
        self._api = api
        self._batch = client.BatchV1Api(api)
        self._core = client.CoreV1Api(api)
        self._wake = wake
        self._clock_ms = clock_ms
        self._attempts: dict[str, AttemptState] = {}
        self._informer: Informer | None = None
        self._logs = PodLogs(self._core, namespace)

    async def _watching(self) -> Informer:
        if self._informer is None:
            loop, wake = asyncio.get_running_loop(), self._wake

            def changed() -> None:  # called from the watch threads
                if not loop.is_closed():
                    loop.call_soon_threadsafe(wake)

            self._informer = Informer(self._api, self.namespace, changed)
            self._informer.start()
        if not self._informer.synced() and not await asyncio.to_thread(
            self._informer.wait_synced, _SYNC_SECONDS
        ):
            _log.warning(
                "no list of namespace %s after %.0f s: is the API server reachable, and may "
                "batchd list Jobs and pods there (see the RBAC manifest)?",
                self.namespace,
                _SYNC_SECONDS,
            )
        return self._informer

    # -- starting ----------------------------------------------------------------------------

    async def start(self, spec: LaunchSpec) -> None:
        request = self._parse(spec)
        await self._watching()
        try:
            service, jobs = attempt_objects(spec, request, self.pod_settings)
        except UnknownInstanceType as err:
            raise LaunchError(
                "ValidationException",
                f"instance type {err} is not in the kubernetes backend's table of instance "
                "types; add it with --kubernetes-instance-types FILE",
            ) from err
        self._attempts[spec.training_job_name] = AttemptState(spec, request, time.monotonic())
        try:
            await asyncio.to_thread(self._create, service, jobs)
        except ApiException as err:
            # All hosts or none: take back what was created before the failure.
            self._attempts.pop(spec.training_job_name, None)
            await asyncio.to_thread(self._delete, spec.attempt_id, request.cluster.hosts)
            code = "ValidationException" if err.status in (400, 422) else "InternalFailure"
            raise LaunchError(code, f"Kubernetes API: {api_message(err)}") from err

    def _parse(self, spec: LaunchSpec) -> TrainingRequest:
        try:
            request = parse_request(spec.training_job_name, spec.payload)
        except InvalidRequest as err:
            raise LaunchError(err.code, err.message) from err
        if not request.image:
            raise LaunchError(
                "ValidationException",
                "AlgorithmSpecification.TrainingImage is required: the kubernetes backend runs "
                "the training as a container of that image",
            )
        return request

    def _create(self, service: dict[str, Any], jobs: list[dict[str, Any]]) -> None:
        """The attempt's objects; one already there (a create repeated after a crash) is
        the same attempt, so a 409 is not an error."""
        creates = [(self._core.create_namespaced_service, service)]
        creates += [(self._batch.create_namespaced_job, job) for job in jobs]
        for create, body in creates:
            try:
                # Unparsed: the newest client's models do not always read an old server's
                # answers, and batchd needs only the status.
                create(self.namespace, body, _preload_content=False)
            except ApiException as err:
                if err.status != 409:
                    raise

    async def adopt(self, spec: LaunchSpec, scheduled_at: int, started_at: int | None) -> None:
        request = self._parse(spec)
        attempt = AttemptState(spec, request, time.monotonic())
        self._attempts[spec.training_job_name] = attempt
        informer = await self._watching()
        jobs, _ = informer.attempt(spec.training_job_name)
        if not jobs and started_at is None and informer.synced():
            # The dispatch was committed, then the process died before creating the objects.
            await self.start(spec)

    # -- observing ---------------------------------------------------------------------------

    async def poll(self, training_job_names: Sequence[str]) -> Sequence[Progress]:
        informer = await self._watching()
        found = []
        for name in training_job_names:
            attempt = self._attempts.get(name)
            if attempt is None:
                reason = "InternalServerError: the kubernetes backend has no record of it"
                found.append(Progress(name, TrainingPhase.LOST, failure_reason=reason))
                continue
            if attempt.final is None:
                attempt.final = await self._observe(attempt, informer)
                if attempt.final is not None:
                    self._forget_later(name)
            found.append(attempt.final or self._progress(attempt, attempt.phase))
        await self._sweep(informer)
        return found

    def _forget_later(self, name: str) -> None:
        """Keep the newest finished attempts, so a late poll still sees their outcome."""
        self._finished.append(name)
        while len(self._finished) > self._keep_finished:
            self._attempts.pop(self._finished.popleft(), None)

    async def _sweep(self, informer: Informer) -> None:
        now = time.monotonic()
        if now - self._last_sweep < self.orphan_sweep_seconds or not informer.synced():
            return
        self._last_sweep = now
        for attempt_id, hosts in orphans(informer.jobs_by_training_job(), self._attempts):
            _log.warning(
                "deleting attempt %s in %s: it runs under batchd's labels but no job owns it",
                attempt_id,
                self.namespace,
            )
            await asyncio.to_thread(self._delete, attempt_id, hosts)

    async def _observe(self, attempt: AttemptState, informer: Informer) -> Progress | None:
        """The attempt's terminal progress once it has one; None while it goes on."""
        jobs, pods = informer.attempt(attempt.name)
        if attempt.ending is not None:
            if jobs or pods:
                await self._delete_again(attempt)
                return None
            return attempt.ending
        if not jobs:
            if time.monotonic() - attempt.created < _WATCH_LAG_SECONDS or not informer.synced():
                return None
            reason = f"InternalServerError: the Kubernetes Jobs of training job {attempt.name} "
            return self._ended(attempt, TrainingPhase.LOST, reason + "were deleted outside batchd")
        hosts = self._hosts(attempt, jobs, pods)
        view = observe.attempt_state([view for _, view in hosts])
        match view.state:
            case HostState.FAILED:
                host = next(host for host, each in hosts if each is view)
                reason = await self._failure_reason(
                    view, [p for p in pods if label(p, HOST) == host]
                )
                await self._end(attempt, TrainingPhase.FAILED, reason)
                return None
            case HostState.DEADLINE:
                await self._end(attempt, TrainingPhase.STOPPED, MAX_RUNTIME_REASON)
                return None
            case HostState.DONE:
                return self._completed(attempt)
        if self._unschedulable_too_long(attempt, view.unschedulable):
            await self._end(attempt, TrainingPhase.FAILED, CAPACITY + str(view.unschedulable))
            return None
        self._enter(attempt, PHASES[view.state])
        if view.state is HostState.UPLOADING and attempt.uploading_at is None:
            attempt.uploading_at = self._clock_ms()
        if self._over_max_runtime(attempt):
            await self._end(attempt, TrainingPhase.STOPPED, MAX_RUNTIME_REASON)
        return None

    def _hosts(
        self, attempt: AttemptState, jobs: list[Obj], pods: list[Obj]
    ) -> list[tuple[str, HostView]]:
        return [
            (
                host,
                observe.view_host(
                    next((job for job in jobs if label(job, HOST) == host), None),
                    [pod for pod in pods if label(pod, HOST) == host],
                ),
            )
            for host in attempt.request.cluster.hosts
        ]

    def _enter(self, attempt: AttemptState, phase: TrainingPhase) -> None:
        attempt.phase = phase
        if phase not in attempt.entered:
            attempt.entered[phase] = self._clock_ms()

    def _unschedulable_too_long(self, attempt: AttemptState, message: str | None) -> bool:
        """A pod the scheduler cannot place: its message shows, and past the limit the attempt
        ends in a capacity error (requeued without using an attempt)."""
        attempt.status_message = message
        if message is None:
            attempt.unschedulable_since = None
            return False
        now = time.monotonic()
        if attempt.unschedulable_since is None:
            attempt.unschedulable_since = now
        return now - attempt.unschedulable_since >= self.unschedulable_seconds

    def _over_max_runtime(self, attempt: AttemptState) -> bool:
        limit = attempt.request.max_runtime_seconds
        began = attempt.entered.get(TrainingPhase.DOWNLOADING)
        # Kubernetes' activeDeadlineSeconds normally ends it first; this is the backstop.
        return bool(limit and began and self._clock_ms() - began > (limit + 30) * 1000)

    def _completed(self, attempt: AttemptState) -> Progress:
        prefix = output_prefix(attempt.request)
        child = "model.tar.gz" if attempt.request.compress_model else "model/"
        progress = self._progress(attempt, TrainingPhase.COMPLETED)
        return dataclasses.replace(progress, model_artifacts=str(prefix.child(child)))

    async def _failure_reason(self, view: HostView, pods: list[Obj]) -> str:
        """The pod's failure; for training that wrote no failure file, with the last line it
        printed, as the local backend reports it."""
        reason = view.reason or "AlgorithmError: the training job failed without a reason"
        if view.training_exit_code is None:
            return reason
        return algorithm_error(
            await self._logs.last_line(pods, "training"), view.training_exit_code
        )

    # -- ending ------------------------------------------------------------------------------

    def _progress(
        self, attempt: AttemptState, phase: TrainingPhase, reason: str | None = None
    ) -> Progress:
        return Progress(
            attempt.name,
            phase,
            failure_reason=reason,
            at_ms=attempt.entered.get(phase, self._clock_ms()),
            uploading_at_ms=attempt.uploading_at,
            status_message=attempt.status_message,
        )

    def _ended(self, attempt: AttemptState, phase: TrainingPhase, reason: str) -> Progress:
        """The terminal report; until it is given, polls go on reporting the last phase."""
        attempt.entered.setdefault(phase, self._clock_ms())
        attempt.status_message = None
        return self._progress(attempt, phase, reason)

    def _begin_end(
        self, attempt: AttemptState, phase: TrainingPhase, reason: str, by_request: bool = False
    ) -> None:
        ending = self._ended(attempt, phase, reason)
        attempt.ending = dataclasses.replace(ending, stopped_by_request=by_request)

    async def _end(self, attempt: AttemptState, phase: TrainingPhase, reason: str) -> None:
        self._begin_end(attempt, phase, reason)
        await self._delete_again(attempt)

    async def _delete_again(self, attempt: AttemptState) -> None:
        now = time.monotonic()
        if attempt.deleted_at is not None and now - attempt.deleted_at < _REDELETE_SECONDS:
            return
        attempt.deleted_at = now
        await asyncio.to_thread(
            self._delete, attempt.spec.attempt_id, attempt.request.cluster.hosts
        )

    def _delete(self, attempt_id: str, hosts: Iterable[str]) -> None:
        """Foreground deletes: a Job goes only after its pods have."""
        body = client.V1DeleteOptions(propagation_policy="Foreground")
        deletes = [
            (self._batch.delete_namespaced_job, host_job_name(attempt_id, host)) for host in hosts
        ]
        deletes.append((self._core.delete_namespaced_service, service_name(attempt_id)))
        for delete, name in deletes:
            try:
                delete(name, self.namespace, body=body, _preload_content=False)
            except ApiException as err:
                if err.status != 404:
                    _log.warning("deleting %s in %s: %s", name, self.namespace, api_message(err))

    async def stop(self, training_job_name: str) -> None:
        attempt = self._attempts.get(training_job_name)
        if attempt is None or attempt.final is not None or attempt.ending is not None:
            return
        self._begin_end(attempt, TrainingPhase.STOPPED, STOPPED_REASON, by_request=True)
        await self._delete_again(attempt)

    # -- logs --------------------------------------------------------------------------------

    async def log_hosts(self, training_job_name: str) -> Sequence[str]:
        informer = await self._watching()
        _, pods = informer.attempt(training_job_name)
        return self._logs.hosts(pods)

    async def read_log(self, training_job_name: str, host: str, offset: int, limit: int) -> bytes:
        informer = await self._watching()
        _, pods = informer.attempt(training_job_name)
        text = await self._logs.read(pods, host)
        return text[offset : offset + limit]

    async def close(self) -> None:
        """Stop watching. The pods go on: the next leader adopts them."""
        if self._informer is not None:
            self._informer.stop()

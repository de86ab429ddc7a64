"""``GET /metrics`` in Prometheus' text format, and the per-request accounting behind it.

Two kinds of series:

- read from the store at scrape time (jobs by queue and status, capacity limits), so every
  worker process and every replica answers the same, and the series of a deleted queue or
  environment disappear with it;
- counted by each process (requests and their latency). Under ``serve --workers N`` the
  supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` (under the data dir) before the workers start:
  prometheus_client then keeps those counters in files there and a scrape of any worker sums
  every worker's, also of workers that died.

Labels never carry job ids: the operation label is the model's operation name, or
``unknown`` for a request that names none.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from batchd import __version__
from batchd.api.share_metrics import share_families
from batchd.domain.resources import JobQueue, ServiceEnvironment
from batchd.domain.status import JobStatus
from batchd.operations.context import Context
from batchd.protocol.model import Router
from batchd.storage.job_counts import capacity_in_use, job_counts, leader

__all__ = ["CONTENT_TYPE", "RequestMetrics", "operation_name", "render"]

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RequestMetrics:
    """This process's request counters (one per app: tests run many apps in one process)."""

    def __init__(self) -> None:
        self.request_log = False  # also log one line per request (``--request-log``)
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "batchd_api_requests",
            "API requests answered, by operation and HTTP status code.",
            ["operation", "code"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "batchd_api_request_seconds",
            "Time to answer an API request, by operation.",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

        # labels() costs ~25 us for a histogram: the children are kept, a bounded set
        # (operations of the models times status codes).
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}

    def observe(self, operation: str, status: int, seconds: float) -> None:
        children = self._children.get((operation, status))
        if children is None:
            children = (
                self.requests.labels(operation, str(status)),
                self.seconds.labels(operation),
            )
            self._children[(operation, status)] = children
        children[0].inc()
        children[1].observe(seconds)


def operation_name(router: Router, method: str, raw_path: str, target: bytes | None) -> str:
    """A bounded label for the request: never a path or an id."""
    if target:
        service, _, name = target.decode("latin-1").partition(".")
        service = "Logs" if service.startswith("Logs_") else service
        return f"{service}.{name}" if name.isalnum() and len(name) < 64 else "unknown"
    if raw_path.startswith("/batchd/"):
        return "batchd.ReadLogs"
    found = router.match(method, raw_path)
    return found[0].name if found is not None else "unknown"


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


async def _store_families(ctx: Context) -> list[Metric]:
    queues = [queue for _, queue in await ctx.store.resources.list(JobQueue)]
    environments = [env for _, env in await ctx.store.resources.list(ServiceEnvironment)]
    counts = await job_counts(ctx.store.db)
    jobs = GaugeMetricFamily(
        "batchd_service_jobs",
        "Service jobs in the store, by job queue and status (zeros included).",
        labels=["queue", "status"],
    )
    for queue in sorted(q.job_queue_name for q in queues):
        for status in JobStatus:
            jobs.add_metric([queue, status.value], counts.get((queue, status.value), 0))
    limits = GaugeMetricFamily(
        "batchd_capacity_limit_instances",
        "The capacity limit of each service environment, in instances.",
        labels=["service_environment"],
    )
    for env in sorted(environments, key=lambda e: e.service_environment_name):
        limit = sum(each.max_capacity for each in env.capacity_limits)
        limits.add_metric([env.service_environment_name], limit)
    used = GaugeMetricFamily(
        "batchd_capacity_used_instances",
        "Instances held by dispatched jobs in each service environment.",
        labels=["service_environment"],
    )
    in_use, by_share = await capacity_in_use(ctx.store.db)
    for env in sorted(environments, key=lambda e: e.service_environment_name):
        used.add_metric([env.service_environment_name], in_use.get(env.service_environment_name, 0))
    leading = GaugeMetricFamily(
        "batchd_scheduler_leader",
        "1 for the replica that schedules (host:pid), as the database records it.",
        labels=["replica"],
    )
    holder = await leader(ctx.store.db)
    if holder is not None:
        leading.add_metric([holder], 1)
    info = GaugeMetricFamily("batchd_build_info", "batchd's version.", labels=["version"])
    info.add_metric([__version__], 1)
    shares = await share_families(ctx, queues, by_share)
    return [jobs, limits, used, leading, info, *shares]


async def render(ctx: Context, own: RequestMetrics) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    path = os.environ.get(MULTIPROCESS_ENV)
    if path:
        multiprocess.MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Own(own.registry))
        registry.register(_Own(ctx.control.metrics_registry))
    registry.register(_Families(await _store_families(ctx)))
    return generate_latest(registry)


class _Own(Collector):
    """Series this process counted (used without the multiprocess directory)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        return iter(self._registry.collect())

"""summary.json: per queue and share, waits, instance-hours, borrowing and preemptions; per
service environment, utilization. Borrowed and lent are counted on the plots' time bins
(each bin's average use against the quota share's limit), so they are close, not exact."""

from __future__ import annotations

from typing import Any

from batchd.simulate.results import BINS, Results, percentile

__all__ = ["summarize"]


def _name(value: Any) -> str:
    return str(value).rsplit("/", 1)[-1]


def _instances(limits: Any) -> float | None:
    # Instances, or instances of one type: either way the first limit counts what jobs use.
    for limit in limits or ():
        return float(limit["maxCapacity"])
    return None


def _borrowing(config: dict[str, Any], results: Results) -> dict[str, tuple[float, float]]:
    """(borrowed, lent) instance-hours of each quota share, keyed "queue/share"."""
    limits: dict[str, tuple[str, float]] = {}
    for share in config.get("quotaShares") or ():
        limit = _instances(share.get("capacityLimits"))
        if limit is not None:
            label = f"{_name(share['jobQueue'])}/{share['quotaShareName']}"
            limits[label] = (_name(share["jobQueue"]), limit)
    hours = results.capacity.bin_seconds / 3600
    totals = {label: [0.0, 0.0] for label in limits}
    for index in range(BINS):
        over: dict[str, float] = {}
        idle: dict[str, dict[str, float]] = {}
        for label, (queue, limit) in limits.items():
            use = results.capacity.values.get(label, [0.0] * BINS)[index]
            over[queue] = over.get(queue, 0.0) + max(0.0, use - limit)
            idle.setdefault(queue, {})[label] = max(0.0, limit - use)
            totals[label][0] += max(0.0, use - limit) * hours
        for queue, spare in idle.items():
            free = sum(spare.values())
            for label, amount in spare.items():
                if free > 0:
                    totals[label][1] += min(over[queue] * amount / free, amount) * hours
    return {label: (borrowed, lent) for label, (borrowed, lent) in totals.items()}


def summarize(config: dict[str, Any], results: Results, **run: Any) -> dict[str, Any]:
    borrowing = _borrowing(config, results)
    shares = []
    for (queue, share), group in sorted(results.groups.items(), key=lambda kv: str(kv[0])):
        waits = group.waits
        waits_sorted = type(waits)("d", sorted(waits))
        borrowed, lent = borrowing.get(f"{queue}/{share}", (0.0, 0.0))
        entry: dict[str, Any] = {
            "jobQueue": queue,
            "jobs": group.jobs,
            "statuses": dict(sorted(group.statuses.items())),
            "waitSeconds": {
                name: percentile(waits_sorted, fraction)
                for name, fraction in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
            },
            "instanceHours": round(group.instance_seconds / 3600, 6),
            "borrowedInstanceHours": round(borrowed, 6),
            "lentInstanceHours": round(lent, 6),
            "preemptions": group.preemptions,
        }
        if group.kind != "none":
            entry[group.kind] = share
        shares.append(entry)
    environment_of = {
        _name(queue["jobQueueName"]): _name(
            min(queue["serviceEnvironmentOrder"], key=lambda o: o["order"])["serviceEnvironment"]
        )
        for queue in config.get("jobQueues") or ()
    }
    environments = []
    for env in config.get("serviceEnvironments") or ():
        name = env["serviceEnvironmentName"]
        capacity = _instances(env.get("capacityLimits"))
        used = sum(
            group.instance_seconds
            for group in results.groups.values()
            if environment_of.get(group.queue) == name
        )
        environments.append(
            {
                "serviceEnvironment": name,
                "maxInstances": capacity,
                "instanceHours": round(used / 3600, 6),
                "utilization": (
                    round(used / (capacity * results.end_seconds), 6) if capacity else None
                ),
            }
        )
    return {
        "simulatedSeconds": results.end_seconds,
        "shares": shares,
        "serviceEnvironments": environments,
        **run,
    }

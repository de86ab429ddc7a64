"""Capacity a training job asks for, read from its CreateTrainingJob payload."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchd.domain.jobs import CapacityUsage
from batchd.domain.resources import NUM_INSTANCES

__all__ = ["capacity_usage"]


def capacity_usage(
    payload: Mapping[str, Any], *, per_instance_type: bool
) -> tuple[CapacityUsage, ...]:
    """What the job holds while it runs, in the units of its environment's limits.

    AWS reports ``NUM_INSTANCES`` with the payload's instance count for service jobs; an
    environment whose limits are per instance type (quota management) needs the count of each
    type, so there, and only there, the usage is per instance type. Empty for serverless jobs
    (spec §12 #28).
    """
    counts = _instances(payload)
    if per_instance_type:
        return tuple(CapacityUsage(k, float(v)) for k, v in sorted(counts.items()))
    total = sum(counts.values())
    return (CapacityUsage(NUM_INSTANCES, float(total)),) if total else ()


def _instances(payload: Mapping[str, Any]) -> dict[str, int]:
    """Instances per instance type.

    Malformed members count as nothing: Batch passes the payload through unvalidated and
    SageMaker would reject it at dispatch, which surfaces as a failed attempt.
    """
    config = payload.get("ResourceConfig")
    if not isinstance(config, Mapping):
        return {}
    counts: dict[str, int] = {}
    groups = config.get("InstanceGroups")
    entries = groups if isinstance(groups, list) and groups else [config]
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        kind, count = entry.get("InstanceType"), entry.get("InstanceCount", 1)
        if isinstance(kind, str) and type(count) is int and count > 0:
            counts[kind] = counts.get(kind, 0) + count
    return counts

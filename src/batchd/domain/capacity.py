"""Capacity a training job asks for, read from its CreateTrainingJob payload."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchd.domain.jobs import CapacityUsage

__all__ = ["capacity_usage"]


def capacity_usage(payload: Mapping[str, Any]) -> tuple[CapacityUsage, ...]:
    """Instances per instance type; empty for serverless jobs (spec §12 #28).

    Malformed members count as nothing: Batch passes the payload through unvalidated and
    SageMaker would reject it at dispatch, which surfaces as a failed attempt.
    """
    config = payload.get("ResourceConfig")
    if not isinstance(config, Mapping):
        return ()
    counts: dict[str, int] = {}
    groups = config.get("InstanceGroups")
    entries = groups if isinstance(groups, list) and groups else [config]
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        kind, count = entry.get("InstanceType"), entry.get("InstanceCount", 1)
        if isinstance(kind, str) and type(count) is int and count > 0:
            counts[kind] = counts.get(kind, 0) + count
    return tuple(CapacityUsage(k, float(v)) for k, v in sorted(counts.items()))

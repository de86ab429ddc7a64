"""The statusReason texts the planner produces (spec §4.3), in one reviewable place."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ATTEMPT_TIMEOUT",
    "CROSS_SHARE_PREEMPTION",
    "ENVIRONMENT_MAX_RESOURCE",
    "INSUFFICIENT_CAPACITY",
    "IN_SHARE_PREEMPTION",
    "PREEMPTION_PREFIX",
    "QUOTA_BORROWABLE_CAPACITY",
    "QUOTA_BORROW_LIMIT",
    "QUOTA_SHARE_LIMIT",
    "BlockCode",
    "BlockReason",
    "time_limit_reason",
]


class BlockCode(enum.StrEnum):
    """The code part of a blocking statusReason; what ``jobStateTimeLimitActions`` match on."""

    INSUFFICIENT_CAPACITY = "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"
    ENVIRONMENT_MAX_RESOURCE = "MISCONFIGURATION:SERVICE_ENVIRONMENT_MAX_RESOURCE"
    QUOTA_LIMIT_EXCEEDED = "MISCONFIGURATION:QUOTA_MANAGEMENT_LIMIT_EXCEEDED"


@dataclass(frozen=True, slots=True)
class BlockReason:
    code: BlockCode
    message: str

    @property
    def text(self) -> str:
        return f"{self.code} - {self.message}"


INSUFFICIENT_CAPACITY: Final = BlockReason(
    BlockCode.INSUFFICIENT_CAPACITY, "Unable to provision requested compute resources"
)
ENVIRONMENT_MAX_RESOURCE: Final = BlockReason(
    BlockCode.ENVIRONMENT_MAX_RESOURCE,
    "Service environment(s) associated with the job queue cannot meet the capacity requirement"
    " of the job.",
)
QUOTA_SHARE_LIMIT: Final = BlockReason(
    BlockCode.QUOTA_LIMIT_EXCEEDED, "Job requirements exceed quota share capacity limits."
)
QUOTA_BORROW_LIMIT: Final = BlockReason(
    BlockCode.QUOTA_LIMIT_EXCEEDED,
    "Job requirements exceed quota share capacity limits and borrow limits.",
)
QUOTA_BORROWABLE_CAPACITY: Final = BlockReason(
    BlockCode.QUOTA_LIMIT_EXCEEDED,
    "Job requires borrowing that exceeds all configured borrowable capacity.",
)

PREEMPTION_PREFIX: Final = "PREEMPTION_IN_PROGRESS: "
CROSS_SHARE_PREEMPTION: Final = (
    PREEMPTION_PREFIX + "Cross-share preemption triggered to reclaim borrowed capacity"
)
# Emulator-specific: the docs only show the cross-share text.
IN_SHARE_PREEMPTION: Final = (
    PREEMPTION_PREFIX + "In-share preemption triggered by a higher priority job"
)
ATTEMPT_TIMEOUT: Final = "Job attempt duration exceeded timeout"


def time_limit_reason(code: str) -> str:
    return f"Terminated by JobStateTimeLimit action due to reason: {code}"

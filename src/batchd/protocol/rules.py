"""Documented constraints that botocore's model does not carry (spec §1.6, §2, §3).

Keys are member paths: ``Operation.member.sub`` with ``[]`` for list items and ``{}`` for
map values; a leading ``*`` applies to every operation. The validator consults this table
after the model's own checks, so each rule lives in exactly one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["BODY_LIMITS", "DEFAULT_BODY_LIMIT", "RULES", "Rule"]

NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
NAME_HINT = "up to 128 letters (uppercase and lowercase), numbers, hyphens and underscores"
SHARE_ID = re.compile(r"^[A-Za-z0-9]{1,255}\*?$")
PRINTABLE = re.compile(r"^[\x20-\x7e]*$")


@dataclass(frozen=True)
class Rule:
    minimum: float | None = None
    maximum: float | None = None
    min_items: int | None = None
    max_items: int | None = None
    max_bytes: int | None = None
    pattern: re.Pattern[str] | None = None
    hint: str = ""
    enum_ignores_case: bool = False


_name = Rule(pattern=NAME, hint=NAME_HINT)
_max_results = Rule(minimum=1, maximum=100)

RULES: dict[str, Rule] = {
    "SubmitServiceJob.jobName": _name,
    "SubmitServiceJob.serviceRequestPayload": Rule(max_bytes=10 * 1024),
    "SubmitServiceJob.schedulingPriority": Rule(minimum=0, maximum=9999),
    "SubmitServiceJob.shareIdentifier": Rule(
        pattern=re.compile(r"^[A-Za-z0-9]{1,255}$"), hint="up to 255 letters and numbers"
    ),
    "SubmitServiceJob.quotaShareName": _name,
    "SubmitServiceJob.retryStrategy.attempts": Rule(minimum=1, maximum=10),
    "SubmitServiceJob.retryStrategy.evaluateOnExit": Rule(max_items=5),
    # AWS's own example sends "Retry": the action is matched without regard to case.
    "SubmitServiceJob.retryStrategy.evaluateOnExit[].action": Rule(enum_ignores_case=True),
    "SubmitServiceJob.retryStrategy.evaluateOnExit[].onStatusReason": Rule(
        pattern=re.compile(r"^[\x20-\x7e]{0,512}$"), hint="up to 512 printable characters"
    ),
    "SubmitServiceJob.preemptionConfiguration.preemptionRetriesBeforeTermination": Rule(minimum=0),
    "SubmitServiceJob.timeoutConfig.attemptDurationSeconds": Rule(minimum=1),
    "UpdateServiceJob.schedulingPriority": Rule(minimum=0, maximum=9999),
    # One rule per path: an operation's own rule replaces the "*." one, so it repeats it.
    "TerminateServiceJob.reason": Rule(
        max_bytes=1024, pattern=PRINTABLE, hint="printable characters"
    ),
    "CreateServiceEnvironment.serviceEnvironmentName": _name,
    "*.capacityLimits": Rule(min_items=1, max_items=5),
    "*.capacityLimits[].maxCapacity": Rule(minimum=1),
    "CreateJobQueue.jobQueueName": _name,
    "*.priority": Rule(minimum=0, maximum=1000),
    "*.serviceEnvironmentOrder": Rule(max_items=1),
    "*.jobStateTimeLimitActions[].maxTimeSeconds": Rule(minimum=600, maximum=86400),
    "*.jobStateTimeLimitActions": Rule(max_items=3),
    "CreateSchedulingPolicy.name": _name,
    "*.fairsharePolicy.shareDecaySeconds": Rule(minimum=0, maximum=604800),
    "*.fairsharePolicy.computeReservation": Rule(minimum=0, maximum=99),
    "*.fairsharePolicy.shareDistribution[].shareIdentifier": Rule(
        pattern=SHARE_ID,
        hint="up to 255 letters and numbers, optionally followed by a single '*'",
    ),
    "*.fairsharePolicy.shareDistribution[].weightFactor": Rule(minimum=0.0001, maximum=999.9999),
    "CreateQuotaShare.quotaShareName": _name,
    "*.resourceSharingConfiguration.borrowLimit": Rule(minimum=-1),
    "*.maxResults": _max_results,
    "DescribeJobQueues.jobQueues": Rule(max_items=100),
    "DescribeServiceEnvironments.serviceEnvironments": Rule(max_items=100),
    "DescribeSchedulingPolicies.arns": Rule(min_items=1, max_items=100),
    "ListServiceJobs.filters": Rule(max_items=1),
    "*.tags": Rule(max_items=50),
    "*.reason": Rule(pattern=PRINTABLE, hint="printable characters"),
}

# Request bodies larger than this are refused before parsing (AWS: 30 KiB for submit).
BODY_LIMITS: dict[str, int] = {"SubmitServiceJob": 30 * 1024}
DEFAULT_BODY_LIMIT = 256 * 1024

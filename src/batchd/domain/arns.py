"""ARN formats of the resources batchd issues, and parsing of name-or-ARN inputs."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ArnParts", "Arns", "parse_arn"]

_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):"
    r"(?P<account>\d{12}|):(?P<resource>.+)$"
)


@dataclass(frozen=True)
class ArnParts:
    partition: str
    service: str
    region: str
    account: str
    resource: str  # e.g. "job-queue/q1" or "job-queue/q1/quota-share/s1"


def parse_arn(text: str) -> ArnParts | None:
    match = _ARN.match(text)
    if match is None:
        return None
    return ArnParts(**match.groupdict())


@dataclass(frozen=True)
class Arns:
    """Builds ARNs for one configured region and account."""

    region: str
    account_id: str
    partition: str = "aws"

    def _batch(self, resource: str) -> str:
        return f"arn:{self.partition}:batch:{self.region}:{self.account_id}:{resource}"

    def service_environment(self, name: str) -> str:
        return self._batch(f"service-environment/{name}")

    def job_queue(self, name: str) -> str:
        return self._batch(f"job-queue/{name}")

    def scheduling_policy(self, name: str) -> str:
        return self._batch(f"scheduling-policy/{name}")

    def quota_share(self, queue: str, name: str) -> str:
        return self._batch(f"job-queue/{queue}/quota-share/{name}")

    def service_job(self, job_id: str) -> str:
        return self._batch(f"service-job/{job_id}")

    def training_job(self, name: str) -> str:
        return f"arn:{self.partition}:sagemaker:{self.region}:{self.account_id}:training-job/{name}"

    def resource_of(self, arn: str, kind: str) -> str | None:
        """The resource path after ``kind/`` if ``arn`` is one of ours of that kind."""
        parts = parse_arn(arn)
        if (
            parts is None
            or parts.service != "batch"
            or parts.region != self.region
            or parts.account != self.account_id
            or parts.partition != self.partition
        ):
            return None
        prefix = kind + "/"
        if not parts.resource.startswith(prefix):
            return None
        return parts.resource[len(prefix) :]

    def name_of(self, name_or_arn: str, kind: str) -> str | None:
        """Accept a bare name or one of our ARNs of ``kind``; None when it is neither."""
        if name_or_arn.startswith("arn:"):
            rest = self.resource_of(name_or_arn, kind)
            return rest if rest and "/" not in rest else None
        return name_or_arn

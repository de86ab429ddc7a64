"""Closed sets of strings in the domain are StrEnums: read from the wire as members, written
back as the plain strings, and covering every value the AWS model allows there."""

from __future__ import annotations

import enum
import json
from typing import Any

import pytest

from batchd import jsontext
from batchd.domain.codec import camel, from_wire, to_wire
from batchd.domain.jobs import RetryAction, ServiceJob, ServiceResourceId, ServiceResourceIdName
from batchd.domain.resources import (
    IdleResourceAssignment,
    InSharePreemption,
    JobQueue,
    JobStateTimeLimitAction,
    PolicyKind,
    QuotaShare,
    QuotaSharePolicy,
    ResourceState,
    ResourceStatus,
    SchedulingPolicy,
    ServiceEnvironment,
    ServiceType,
    SharingStrategy,
    TimeLimitActionState,
    TimeLimitActionType,
)
from batchd.protocol.model import batch_model

ENV = {
    "serviceEnvironmentName": "e",
    "serviceEnvironmentArn": "arn:e",
    "capacityLimits": [{"maxCapacity": 1, "capacityUnit": "NUM_INSTANCES"}],
    "serviceEnvironmentType": "SAGEMAKER_TRAINING",
    "state": "DISABLED",
    "status": "INVALID",
}
QUEUE = {
    "jobQueueName": "q",
    "jobQueueArn": "arn:q",
    "priority": 1,
    "serviceEnvironmentOrder": [],
    "state": "DISABLED",
    "status": "UPDATING",
    "jobQueueType": "SAGEMAKER_TRAINING",
}
SHARE = {
    "quotaShareName": "s",
    "quotaShareArn": "arn:s",
    "jobQueueArn": "arn:q",
    "capacityLimits": [],
    "resourceSharingConfiguration": {"strategy": "LEND_AND_BORROW", "borrowLimit": 50},
    "preemptionConfiguration": {"inSharePreemption": "ENABLED"},
    "state": "ENABLED",
    "status": "VALID",
}
JOB = {
    "jobId": "j",
    "jobArn": "arn:j",
    "jobName": "n",
    "jobQueue": "arn:q",
    "serviceRequestPayload": "{}",
    "createdAt": 1,
    "serviceJobType": "SAGEMAKER_TRAINING",
}


def _at(obj: Any, path: str) -> Any:
    for name in path.split("."):
        obj = getattr(obj, name)
    return obj


@pytest.mark.parametrize(
    ("cls", "wire", "path", "member"),
    [
        (ServiceEnvironment, ENV, "state", ResourceState.DISABLED),
        (ServiceEnvironment, ENV, "status", ResourceStatus.INVALID),
        (ServiceEnvironment, ENV, "service_environment_type", ServiceType.SAGEMAKER_TRAINING),
        (JobQueue, QUEUE, "state", ResourceState.DISABLED),
        (JobQueue, QUEUE, "status", ResourceStatus.UPDATING),
        (JobQueue, QUEUE, "job_queue_type", ServiceType.SAGEMAKER_TRAINING),
        (QuotaShare, SHARE, "state", ResourceState.ENABLED),
        (QuotaShare, SHARE, "status", ResourceStatus.VALID),
        (
            QuotaShare,
            SHARE,
            "resource_sharing_configuration.strategy",
            SharingStrategy.LEND_AND_BORROW,
        ),
        (
            QuotaShare,
            SHARE,
            "preemption_configuration.in_share_preemption",
            InSharePreemption.ENABLED,
        ),
        (
            QuotaSharePolicy,
            {"idleResourceAssignmentStrategy": "FIFO"},
            "idle_resource_assignment_strategy",
            IdleResourceAssignment.FIFO,
        ),
        (
            JobStateTimeLimitAction,
            {"reason": "r", "state": "RUNNABLE", "maxTimeSeconds": 600, "action": "TERMINATE"},
            "action",
            TimeLimitActionType.TERMINATE,
        ),
        (
            JobStateTimeLimitAction,
            {"reason": "r", "state": "RUNNABLE", "maxTimeSeconds": 600, "action": "TERMINATE"},
            "state",
            TimeLimitActionState.RUNNABLE,
        ),
        (ServiceJob, JOB, "service_job_type", ServiceType.SAGEMAKER_TRAINING),
        (
            ServiceResourceId,
            {"name": "TrainingJobArn", "value": "arn:t"},
            "name",
            ServiceResourceIdName.TRAINING_JOB_ARN,
        ),
    ],
)
def test_a_closed_set_is_read_as_its_enum_member_and_written_as_the_plain_string(
    cls: type[Any], wire: dict[str, Any], path: str, member: enum.StrEnum
) -> None:
    obj = from_wire(cls, wire)
    assert _at(obj, path) is member
    written = to_wire(obj)
    leaf: Any = written
    for name in path.split("."):
        leaf = leaf[camel(name)]
    assert type(leaf) is str and leaf == member.value
    assert json.loads(jsontext.dumps_text(written)) == json.loads(json.dumps(written))


def test_defaults_are_members_too() -> None:
    required = ("serviceEnvironmentName", "serviceEnvironmentArn", "capacityLimits")
    env = from_wire(ServiceEnvironment, {k: v for k, v in ENV.items() if k in required})
    assert env.state is ResourceState.ENABLED and env.status is ResourceStatus.VALID
    assert env.service_environment_type is ServiceType.SAGEMAKER_TRAINING
    assert from_wire(ServiceJob, JOB).service_job_type is ServiceType.SAGEMAKER_TRAINING


@pytest.mark.parametrize(
    ("quota", "kind"),
    [({"idleResourceAssignmentStrategy": "FIFO"}, PolicyKind.QUOTA), (None, PolicyKind.FAIRSHARE)],
)
def test_a_policy_kind_is_a_member_that_still_equals_its_string(
    quota: dict[str, str] | None, kind: PolicyKind
) -> None:
    wire: dict[str, Any] = {"name": "p", "arn": "arn:p"}
    if quota is not None:
        wire["quotaSharePolicy"] = quota
    policy = from_wire(SchedulingPolicy, wire)
    assert policy.kind is kind
    assert policy.kind == kind.value  # what code comparing with literals relies on
    assert f"{policy.kind}" == kind.value


# The model's enum behind each domain enum: a value the protocol layer lets through must
# always convert, or a valid request would fail while being read.
MODEL_ENUMS: list[tuple[type[enum.StrEnum], str]] = [
    (ResourceState, "ServiceEnvironmentState"),
    (ResourceState, "JQState"),
    (ResourceState, "QuotaShareState"),
    (ResourceStatus, "ServiceEnvironmentStatus"),
    (ResourceStatus, "JQStatus"),
    (ResourceStatus, "QuotaShareStatus"),
    (SharingStrategy, "QuotaShareResourceSharingStrategy"),
    (InSharePreemption, "QuotaShareInSharePreemptionState"),
    (IdleResourceAssignment, "QuotaShareIdleResourceAssignmentStrategy"),
    (TimeLimitActionState, "JobStateTimeLimitActionsState"),
    (TimeLimitActionType, "JobStateTimeLimitActionsAction"),
    (ServiceType, "ServiceEnvironmentType"),
    (ServiceType, "ServiceJobType"),
    (RetryAction, "ServiceJobRetryAction"),
    (ServiceResourceIdName, "ServiceResourceIdName"),
]


@pytest.mark.parametrize(("domain", "shape"), MODEL_ENUMS)
def test_every_value_the_model_allows_is_a_member(domain: type[enum.StrEnum], shape: str) -> None:
    allowed = set(batch_model().shape_for(shape).enum)
    assert allowed <= {m.value for m in domain}

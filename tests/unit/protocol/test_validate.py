"""Input validation against the model and the documented rules: one row per constraint.

Each row breaks one member of an otherwise valid request and names the message the caller
must see: the path of the member and the constraint, in AWS's wording.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from batchd.errors import InvalidParameter
from batchd.protocol.model import batch_model
from batchd.protocol.validate import validate

VALID: dict[str, dict[str, Any]] = {
    "SubmitServiceJob": {
        "jobName": "job",
        "jobQueue": "q",
        "serviceJobType": "SAGEMAKER_TRAINING",
        "serviceRequestPayload": "{}",
        "retryStrategy": {
            "attempts": 2,
            "evaluateOnExit": [{"action": "RETRY", "onStatusReason": "Received*"}],
        },
        "schedulingPriority": 5,
        "timeoutConfig": {"attemptDurationSeconds": 60},
        "tags": {"k": "v"},
    },
    "CreateServiceEnvironment": {
        "serviceEnvironmentName": "env",
        "serviceEnvironmentType": "SAGEMAKER_TRAINING",
        "capacityLimits": [{"maxCapacity": 5, "capacityUnit": "NUM_INSTANCES"}],
    },
    "CreateJobQueue": {
        "jobQueueName": "q",
        "jobQueueType": "SAGEMAKER_TRAINING",
        "priority": 1,
        "serviceEnvironmentOrder": [{"order": 1, "serviceEnvironment": "env"}],
        "jobStateTimeLimitActions": [
            {
                "reason": "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
                "state": "RUNNABLE",
                "maxTimeSeconds": 600,
                "action": "TERMINATE",
            }
        ],
    },
    "CreateSchedulingPolicy": {
        "name": "p",
        "fairsharePolicy": {
            "shareDecaySeconds": 60,
            "computeReservation": 10,
            "shareDistribution": [{"shareIdentifier": "team*", "weightFactor": 0.5}],
        },
    },
    "ListServiceJobs": {"jobQueue": "q", "maxResults": 10},
    "TerminateServiceJob": {"jobId": "j", "reason": "done"},
}


def _check(operation: str, params: dict[str, Any]) -> None:
    validate(operation, batch_model().operation_model(operation).input_shape, params)


def _broken(operation: str, path: str, value: Any) -> dict[str, Any]:
    """The valid request with the member at ``path`` (dots; ``[0]`` for items) set or removed."""
    params = copy.deepcopy(VALID[operation])
    *parents, last = path.split(".")
    target: Any = params
    for part in parents:
        name, _, index = part.partition("[")
        target = target[name]
        if index:
            target = target[int(index.rstrip("]"))]
    if value is _REMOVE:
        del target[last]
    else:
        target[last] = value
    return params


_REMOVE = object()


@pytest.mark.parametrize("operation", sorted(VALID))
def test_the_valid_requests_pass(operation: str) -> None:
    _check(operation, VALID[operation])


def at(path: str, constraint: str) -> str:
    """The message for the member at ``path``: ``Member must`` + ``constraint``."""
    return f"'{path}' failed to satisfy constraint: Member must {constraint}"


CASES: list[tuple[str, str, Any, str]] = [
    # required members
    ("SubmitServiceJob", "jobName", _REMOVE, at("jobName", "not be null")),
    (
        "SubmitServiceJob",
        "jobQueue",
        None,
        "at 'jobQueue' failed to satisfy constraint: Member must not be null",
    ),
    (
        "CreateJobQueue",
        "serviceEnvironmentOrder[0].order",
        _REMOVE,
        at("serviceEnvironmentOrder[].order", "not be null"),
    ),
    ("SubmitServiceJob", "retryStrategy.attempts", _REMOVE, "'retryStrategy.attempts'"),
    # types
    ("CreateJobQueue", "priority", "1", at("priority", "be of type integer")),
    ("CreateJobQueue", "priority", True, "Member must be of type integer"),
    ("CreateJobQueue", "priority", 1.5, "Member must be of type integer"),
    ("CreateJobQueue", "priority", 2**31, "Member must be of type integer"),
    ("SubmitServiceJob", "jobName", 7, at("jobName", "be of type string")),
    ("SubmitServiceJob", "tags", ["k"], at("tags", "be of type object")),
    ("SubmitServiceJob", "retryStrategy", "twice", "Member must be of type object"),
    (
        "CreateServiceEnvironment",
        "capacityLimits",
        {"maxCapacity": 1},
        "Member must be of type list",
    ),
    (
        "CreateSchedulingPolicy",
        "fairsharePolicy.shareDistribution[0].weightFactor",
        "1",
        "Member must be of type float",
    ),
    (
        "CreateSchedulingPolicy",
        "fairsharePolicy.shareDistribution[0].weightFactor",
        float("nan"),
        "Member must be a finite number",
    ),
    (
        "CreateSchedulingPolicy",
        "fairsharePolicy.shareDistribution[0].weightFactor",
        float("inf"),
        "Member must be a finite number",
    ),
    # enums
    (
        "SubmitServiceJob",
        "serviceJobType",
        "ECS",
        at("serviceJobType", "satisfy enum value set: [SAGEMAKER_TRAINING]"),
    ),
    (
        "SubmitServiceJob",
        "serviceJobType",
        "sagemaker_training",
        "Member must satisfy enum value set",
    ),
    (
        "CreateServiceEnvironment",
        "state",
        "PAUSED",
        at("state", "satisfy enum value set: [ENABLED, DISABLED]"),
    ),
    (
        "CreateJobQueue",
        "jobStateTimeLimitActions[0].state",
        "RUNNING",
        "'jobStateTimeLimitActions[].state'",
    ),
    (
        "SubmitServiceJob",
        "retryStrategy.evaluateOnExit[0].action",
        "RETRY_LATER",
        "'retryStrategy.evaluateOnExit[].action'",
    ),
    # ranges
    ("CreateJobQueue", "priority", 1001, at("priority", "have value less than or equal to 1000")),
    ("CreateJobQueue", "priority", -1, "Member must have value greater than or equal to 0"),
    ("SubmitServiceJob", "schedulingPriority", 10000, "less than or equal to 9999"),
    (
        "SubmitServiceJob",
        "retryStrategy.attempts",
        0,
        at("retryStrategy.attempts", "have value greater than or equal to 1"),
    ),
    ("SubmitServiceJob", "retryStrategy.attempts", 11, "less than or equal to 10"),
    ("SubmitServiceJob", "timeoutConfig.attemptDurationSeconds", 0, "greater than or equal to 1"),
    (
        "CreateServiceEnvironment",
        "capacityLimits[0].maxCapacity",
        0,
        at("capacityLimits[].maxCapacity", "have value greater than or equal to 1"),
    ),
    (
        "CreateJobQueue",
        "jobStateTimeLimitActions[0].maxTimeSeconds",
        599,
        "greater than or equal to 600",
    ),
    (
        "CreateJobQueue",
        "jobStateTimeLimitActions[0].maxTimeSeconds",
        86401,
        "less than or equal to 86400",
    ),
    (
        "CreateSchedulingPolicy",
        "fairsharePolicy.computeReservation",
        100,
        "less than or equal to 99",
    ),
    (
        "CreateSchedulingPolicy",
        "fairsharePolicy.shareDecaySeconds",
        604801,
        "less than or equal to 604800",
    ),
    (
        "CreateSchedulingPolicy",
        "fairsharePolicy.shareDistribution[0].weightFactor",
        0.0,
        "greater than or equal to 0.0001",
    ),
    ("ListServiceJobs", "maxResults", 0, at("maxResults", "have value greater than or equal to 1")),
    ("ListServiceJobs", "maxResults", 101, "less than or equal to 100"),
    # lengths and item counts
    ("SubmitServiceJob", "jobName", "x" * 129, "'jobName'"),
    ("SubmitServiceJob", "jobName", "", "'jobName'"),
    (
        "CreateServiceEnvironment",
        "capacityLimits",
        [],
        at("capacityLimits", "have at least 1 item(s)"),
    ),
    (
        "CreateServiceEnvironment",
        "capacityLimits",
        [{"maxCapacity": 1, "capacityUnit": f"ml.m5.x{i}"} for i in range(6)],
        "Member must have at most 5 item(s)",
    ),
    (
        "SubmitServiceJob",
        "tags",
        {f"k{i}": "v" for i in range(51)},
        at("tags", "have at most 50 item(s)"),
    ),
    ("SubmitServiceJob", "tags", {"k" * 129: "v"}, "'tags.key'"),
    ("SubmitServiceJob", "tags", {"k": "v" * 257}, "'tags{}'"),
    (
        "SubmitServiceJob",
        "retryStrategy.evaluateOnExit",
        [{"action": "EXIT"}] * 6,
        "Member must have at most 5 item(s)",
    ),
    (
        "CreateJobQueue",
        "serviceEnvironmentOrder",
        [{"order": 1, "serviceEnvironment": "a"}] * 2,
        at("serviceEnvironmentOrder", "have at most 1 item(s)"),
    ),
    (
        "SubmitServiceJob",
        "serviceRequestPayload",
        "x" * (10 * 1024 + 1),
        at("serviceRequestPayload", "be at most 10240 bytes long"),
    ),
    (
        "SubmitServiceJob",
        "serviceRequestPayload",
        "\u00e9" * (5 * 1024 + 1),
        "at most 10240 bytes long",
    ),
    # patterns and characters
    ("SubmitServiceJob", "jobName", "has space", at("jobName", "be up to 128 letters")),
    ("SubmitServiceJob", "jobName", "dot.ted", "Member must be up to 128 letters"),
    (
        "CreateSchedulingPolicy",
        "fairsharePolicy.shareDistribution[0].shareIdentifier",
        "a**",
        "optionally followed by a single '*'",
    ),
    (
        "SubmitServiceJob",
        "retryStrategy.evaluateOnExit[0].onStatusReason",
        "tab\there",
        "up to 512 printable characters",
    ),
    ("TerminateServiceJob", "reason", "line\nbreak", at("reason", "be printable characters")),
    ("TerminateServiceJob", "reason", "x" * 1025, "at most 1024 bytes long"),
    (
        "SubmitServiceJob",
        "jobQueue",
        "nul\x00",
        "Member must be Unicode text without NUL characters",
    ),
    (
        "SubmitServiceJob",
        "jobQueue",
        "lone\ud800",
        "Member must be Unicode text without NUL characters",
    ),
    # the request itself
]


@pytest.mark.parametrize(
    ("operation", "path", "value", "message"),
    CASES,
    ids=[f"{op}.{path}={str(value)[:20]!r}" for op, path, value, _ in CASES],
)
def test_one_broken_member_is_one_error_naming_it(
    operation: str, path: str, value: Any, message: str
) -> None:
    with pytest.raises(InvalidParameter) as info:
        _check(operation, _broken(operation, path, value))
    # A value can break two constraints at once (an infinite number is neither finite nor
    # under the maximum): the member's own message is what must be there.
    assert re.match(r"^[12] validation errors? detected: ", info.value.message), info.value
    assert message in info.value.message


@pytest.mark.parametrize("action", ["Retry", "retry", "EXIT", "Exit", "eXiT"])
def test_retry_actions_are_accepted_in_any_case(action: str) -> None:
    _check(
        "SubmitServiceJob",
        _broken("SubmitServiceJob", "retryStrategy.evaluateOnExit[0].action", action),
    )


@pytest.mark.parametrize("body", [[], "text", 3, None])
def test_a_body_that_is_not_an_object_is_refused(body: Any) -> None:
    with pytest.raises(InvalidParameter, match="Member must be a structure"):
        _check("ListServiceJobs", body)


def test_several_errors_are_counted_and_the_first_five_shown() -> None:
    params: dict[str, Any] = {"jobName": 1, "jobQueue": 2, "serviceJobType": 3}
    params["serviceRequestPayload"] = 4
    params |= {"schedulingPriority": "x", "shareIdentifier": 6, "quotaShareName": 7}
    with pytest.raises(InvalidParameter) as info:
        _check("SubmitServiceJob", params)
    message = info.value.message
    assert message.startswith("7 validation errors detected: ")
    assert message.count("failed to satisfy constraint") == 5


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (1001, "Value 1001 at 'priority'"),
        ("x" * 200, "Value '" + "x" * 76),  # long values are cut
        ({"a": 1}, "Value at 'priority'"),  # structures are not echoed
    ],
)
def test_the_offending_value_is_echoed_briefly(value: Any, shown: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        _check("CreateJobQueue", _broken("CreateJobQueue", "priority", value))
    assert shown in info.value.message
    assert len(info.value.message) < 300


def test_unknown_members_are_ignored() -> None:
    _check("ListServiceJobs", {**VALID["ListServiceJobs"], "notAMember": object()})

"""The wire codec: every domain dataclass survives to_wire -> JSON text -> from_wire."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import types
import typing
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchd import jsontext
from batchd.domain import jobs, resources, training
from batchd.domain.codec import camel, from_wire, snake, to_wire
from batchd.domain.jobs import CapacityUsage, ServiceJob, ServiceJobRetryStrategy
from batchd.domain.resources import (
    CapacityLimit,
    ResourceState,
    ServiceEnvironment,
    SharingStrategy,
)
from batchd.domain.status import JobStatus

# What is stored and sent: the dataclasses of the modules whose objects go over the wire.
WIRE_CLASSES = sorted(
    (
        cls
        for module in (jobs, resources, training)
        for _, cls in inspect.getmembers(module, dataclasses.is_dataclass)
        if inspect.isclass(cls) and cls.__module__ == module.__name__
    ),
    key=lambda cls: cls.__name__,
)

_TEXT = st.text(max_size=12)
_INT = st.integers(min_value=-(2**63), max_value=2**63 - 1)  # what SQL BIGINT and JSON hold
_FLOAT = st.floats(allow_nan=False, allow_infinity=False)


def _strategy(hint: Any) -> st.SearchStrategy[Any]:
    """Values of a field's type hint; dataclasses recursively, field by field."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(_strategy(a) for a in args if a is not type(None))) | st.none()
    if origin is tuple:
        return st.lists(_strategy(args[0]), max_size=3).map(tuple)
    if origin is dict:
        return st.dictionaries(_strategy(args[0]), _strategy(args[1]), max_size=3)
    if dataclasses.is_dataclass(hint):
        return instances(hint)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return st.sampled_from(list(hint))
    simple: dict[Any, st.SearchStrategy[Any]] = {
        str: _TEXT,
        int: _INT,
        float: _FLOAT,
        bool: st.booleans(),
    }
    return simple[hint]


def instances(cls: Any) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: _strategy(hints[f.name]) for f in dataclasses.fields(cls)}
    return st.builds(cls, **fields)


def through_json(obj: Any) -> Any:
    return jsontext.loads(jsontext.dumps_text(to_wire(obj)))


@pytest.mark.parametrize("cls", WIRE_CLASSES, ids=lambda cls: cls.__name__)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_domain_dataclass_round_trips_through_the_wire(cls: Any, data: st.DataObject) -> None:
    obj = data.draw(instances(cls))
    assert from_wire(cls, to_wire(obj)) == obj
    assert from_wire(cls, through_json(obj)) == obj


def test_the_wire_classes_are_all_found() -> None:
    # A guard on the discovery above: a module or naming change must not empty the test.
    names = {cls.__name__ for cls in WIRE_CLASSES}
    assert {"ServiceJob", "ServiceEnvironment", "JobQueue", "QuotaShare", "TrainingJob"} <= names
    assert len(names) >= 25


ENV = ServiceEnvironment(
    service_environment_name="e",
    service_environment_arn="arn:e",
    capacity_limits=(CapacityLimit(5, "NUM_INSTANCES"),),
    state=ResourceState.DISABLED,
    tags={"team_name": "a", "camelCase": ""},
)


@pytest.mark.parametrize(
    ("obj", "wire"),
    [
        (
            ENV,
            {
                "serviceEnvironmentName": "e",
                "serviceEnvironmentArn": "arn:e",
                "capacityLimits": [{"maxCapacity": 5, "capacityUnit": "NUM_INSTANCES"}],
                "serviceEnvironmentType": "SAGEMAKER_TRAINING",
                "state": "DISABLED",
                "status": "VALID",
                # map keys are user data: never renamed
                "tags": {"team_name": "a", "camelCase": ""},
            },
        ),
        (CapacityUsage("ml.m5.large", 2.0), {"capacityUnit": "ml.m5.large", "quantity": 2.0}),
        # None members are omitted; empty tuples are kept as lists
        (ServiceJobRetryStrategy(attempts=2), {"attempts": 2, "evaluateOnExit": []}),
        (
            resources.QuotaShareResourceSharingConfiguration(SharingStrategy.LEND),
            {"strategy": "LEND"},
        ),
    ],
)
def test_to_wire_writes_camel_case_members_and_plain_values(obj: Any, wire: Any) -> None:
    assert to_wire(obj) == wire
    assert from_wire(type(obj), wire) == obj


def test_a_job_status_is_written_as_its_value_and_read_back_as_the_member() -> None:
    job = ServiceJob("j", "arn:j", "n", "arn:q", "{}", 1, status=JobStatus.RUNNING)
    wire = to_wire(job)
    assert wire["status"] == "RUNNING" and type(wire["status"]) is str
    assert from_wire(ServiceJob, wire).status is JobStatus.RUNNING


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        # unknown keys are ignored; integral quantities read as floats
        ({"capacityUnit": "NUM_INSTANCES", "quantity": 3, "extra": 1}, 3.0),
        ({"capacityUnit": "NUM_INSTANCES", "quantity": 0.5}, 0.5),
    ],
)
def test_from_wire_ignores_unknown_members_and_reads_floats(wire: Any, expected: float) -> None:
    usage = from_wire(CapacityUsage, wire)
    assert usage.quantity == expected and type(usage.quantity) is float


@pytest.mark.parametrize(
    ("snake_name", "camel_name"),
    [
        ("state", "state"),
        ("job_id", "jobId"),
        ("service_environment_arn", "serviceEnvironmentArn"),
        ("max_time_seconds", "maxTimeSeconds"),
    ],
)
def test_member_names_convert_both_ways(snake_name: str, camel_name: str) -> None:
    assert camel(snake_name) == camel_name
    assert snake(camel_name) == snake_name

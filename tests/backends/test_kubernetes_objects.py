"""The kubernetes backend's pure parts: the objects of an attempt, and what pods say."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from batchd import jsontext
from batchd.backends.base import LaunchSpec
from batchd.backends.kubernetes.instance_types import GPU, InstanceTypes, UnknownInstanceType
from batchd.backends.kubernetes.manifests import PodSettings, attempt_objects, deadline_seconds
from batchd.backends.kubernetes.observe import HostState, attempt_state, view_host
from batchd.backends.local.payload import parse_request

ATTEMPT = "0123456789abcdef0123456789abcdef"


def _spec(payload: dict[str, Any], queue: str = "gpu-queue") -> LaunchSpec:
    return LaunchSpec(
        job_id="7d1e1b9c-0000-4000-8000-000000000001",
        job_arn="arn:aws:batch:us-east-1:123456789012:service-job/7d1e",
        attempt_id=ATTEMPT,
        training_job_name="AWSBatchtrain" + ATTEMPT,
        training_job_arn="arn:aws:sagemaker:us-east-1:123456789012:training-job/x",
        payload=payload,
        tags={},
        region="eu-west-1",
        account_id="123456789012",
        queue=queue,
    )


def _payload(count: int = 1, instance_type: str = "ml.m5.xlarge", **extra: Any) -> dict[str, Any]:
    return {
        "TrainingJobName": "train",
        "AlgorithmSpecification": {
            "TrainingImage": "trainer:1",
            "TrainingInputMode": "File",
            "ContainerEntrypoint": ["python3", "train.py"],
            "ContainerArguments": ["--epochs", "2"],
        },
        "RoleArn": "arn:aws:iam::123456789012:role/r",
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {
            "InstanceType": instance_type,
            "InstanceCount": count,
            "VolumeSizeInGB": 10,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "Environment": {"MY_VAR": "1"},
        **extra,
    }


def _objects(
    payload: dict[str, Any], attempt_seconds: int | None = None
) -> tuple[dict[str, Any], list[Any]]:
    spec = dataclasses.replace(_spec(payload), attempt_duration_seconds=attempt_seconds)
    return attempt_objects(spec, parse_request(spec.training_job_name, payload), PodSettings())


def test_one_job_per_host_named_after_the_attempt_with_hostname_and_subdomain() -> None:
    service, jobs = _objects(_payload(count=3))
    assert service["metadata"]["name"] == f"bd-{ATTEMPT}"
    assert service["spec"]["clusterIP"] == "None"
    assert [job["metadata"]["name"] for job in jobs] == [
        f"bd-{ATTEMPT}-algo-{i}" for i in (1, 2, 3)
    ]
    for i, job in enumerate(jobs, 1):
        pod = job["spec"]["template"]["spec"]
        assert (pod["hostname"], pod["subdomain"]) == (f"algo-{i}", f"bd-{ATTEMPT}")
        assert job["spec"]["backoffLimit"] == 0
        assert pod["restartPolicy"] == "Never"
        labels = job["spec"]["template"]["metadata"]["labels"]
        assert labels["batchd.io/attempt-id"] == ATTEMPT
        assert labels["batchd.io/host"] == f"algo-{i}"
        assert labels["batchd.io/queue"] == "gpu-queue"
        assert service["spec"]["selector"].items() <= labels.items()
        assert pod["dnsConfig"]["searches"] == [f"bd-{ATTEMPT}.default.svc.cluster.local"]


def test_the_pod_stages_trains_and_packs_in_that_order() -> None:
    _, jobs = _objects(_payload())
    pod = jobs[0]["spec"]["template"]["spec"]
    stage, training = pod["initContainers"]
    (finish,) = pod["containers"]
    assert stage["command"] == ["batchd", "container", "stage"]
    assert finish["command"] == ["batchd", "container", "finish"]
    assert stage["image"] == finish["image"] == PodSettings().batchd_image
    assert training["image"] == "trainer:1"
    assert training["command"] == ["python3", "train.py"]
    assert training["args"] == ["--epochs", "2"]
    assert training["terminationMessagePath"] == "/opt/ml/output/failure"
    assert training["resources"]["requests"] == {"cpu": "4", "memory": "16Gi"}
    env = {e["name"]: e["value"] for e in training["env"]}
    assert env["CURRENT_HOST"] == "algo-1"
    assert env["AWS_REGION"] == "eu-west-1"
    assert env["MY_VAR"] == "1"
    assert env["TRAINING_JOB_NAME"] == "AWSBatchtrain" + ATTEMPT
    assert jsontext.loads(env["BATCHD_TRAINING_REQUEST"])["ResourceConfig"]["InstanceCount"] == 1
    assert jsontext.loads(env["SM_HOSTS"]) == ["algo-1"]


@pytest.mark.parametrize(
    ("max_runtime", "attempt", "expected"),
    [(3600, None, 3600), (3600, 60, 60), (None, 90, 90), (None, None, None)],
)
def test_the_deadline_is_the_earlier_limit(
    max_runtime: int | None, attempt: int | None, expected: int | None
) -> None:
    extra = (
        {} if max_runtime is None else {"StoppingCondition": {"MaxRuntimeInSeconds": max_runtime}}
    )
    payload = _payload()
    payload.pop("StoppingCondition")
    payload.update(extra)
    request = parse_request("x", payload)
    assert deadline_seconds(request, attempt) == expected
    _, jobs = _objects(payload, attempt_seconds=attempt)
    assert jobs[0]["spec"].get("activeDeadlineSeconds") == expected


def test_gpu_types_ask_for_gpus_and_tolerate_the_gpu_taint() -> None:
    placement = InstanceTypes().placement("ml.g5.12xlarge")
    assert placement.requests == {"cpu": "48", "memory": "192Gi", GPU: "4"}
    assert placement.resources()["limits"] == {GPU: "4"}
    assert placement.tolerations[0]["key"] == GPU
    assert InstanceTypes().placement("ml.c5.2xlarge").requests == {"cpu": "8", "memory": "16Gi"}
    assert InstanceTypes().placement("ml.m5.large").requests == {"cpu": "2", "memory": "8Gi"}
    with pytest.raises(UnknownInstanceType):
        InstanceTypes().placement("ml.zz9.large")


def test_a_file_overrides_the_table(tmp_path: Path) -> None:
    path = tmp_path / "types.json"
    path.write_text(
        '{"ml.g5.xlarge": {"requests": {"cpu": "3", "nvidia.com/gpu": 1},'
        ' "nodeSelector": {"pool": "a10"}, "tolerations": [{"key": "k", "operator": "Exists"}]}}'
    )
    types = InstanceTypes.load(path)
    found = types.placement("ml.g5.xlarge")
    assert found.requests == {"cpu": "3", GPU: "1"}
    assert found.node_selector == {"pool": "a10"}
    assert types.placement("ml.m5.large").requests["cpu"] == "2"  # the table still answers
    path.write_text('{"ml.g5.xlarge": {"nodeSelector": {}}}')
    with pytest.raises(ValueError, match=r"ml\.g5\.xlarge: expected an object with a 'requests'"):
        InstanceTypes.load(path)


def _pod(phase: str = "Pending", node: str | None = "n1", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "labels": {"batchd.io/host": "algo-1"}},
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase, **status},
    }


def _terminated(name: str, code: int, message: str = "") -> dict[str, Any]:
    return {"name": name, "state": {"terminated": {"exitCode": code, "message": message}}}


def _running(name: str) -> dict[str, Any]:
    return {"name": name, "state": {"running": {"startedAt": "2026-12-04T00:00:00Z"}}}


def test_where_a_host_is_follows_from_its_containers() -> None:
    assert view_host(None, []).state is HostState.WAITING
    assert view_host({}, [_pod(node=None)]).state is HostState.WAITING
    assert view_host({}, [_pod(initContainerStatuses=[_running("stage")])]).state is (
        HostState.DOWNLOADING
    )
    training = [_terminated("stage", 0), _running("training")]
    assert view_host({}, [_pod(initContainerStatuses=training)]).state is HostState.TRAINING
    uploading = _pod(
        "Running",
        initContainerStatuses=[_terminated("stage", 0), _terminated("training", 0)],
        containerStatuses=[_running("finish")],
    )
    assert view_host({}, [uploading]).state is HostState.UPLOADING
    complete = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    assert view_host(complete, []).state is HostState.DONE


def test_failure_reasons_read_as_sagemaker_words_them() -> None:
    written = _pod(
        "Failed",
        initContainerStatuses=[
            _terminated("stage", 0),
            _terminated("training", 2, "ValueError: bad lr\n"),
        ],
    )
    assert view_host({}, [written]).reason == "ValueError: bad lr"
    silent = _pod(
        "Failed", initContainerStatuses=[_terminated("stage", 0), _terminated("training", 3)]
    )
    view = view_host({}, [silent])
    assert view.training_exit_code == 3
    assert view.reason is not None and view.reason.endswith("exit code: 3")
    staging = _pod(
        "Failed", initContainerStatuses=[_terminated("stage", 1, "ClientError: no such key")]
    )
    assert view_host({}, [staging]).reason == "ClientError: no such key"
    deadline = {
        "status": {
            "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]
        }
    }
    assert view_host(deadline, [written]).state is HostState.DEADLINE
    # 1.20 may call it a backoff failure: the killed pod failed before the deadline was noted.
    backoff = {
        "spec": {"activeDeadlineSeconds": 3},
        "status": {
            "startTime": "2026-12-04T10:00:00Z",
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "lastTransitionTime": "2026-12-04T10:00:03Z",
                }
            ],
        },
    }
    assert view_host(backoff, []).state is HostState.DEADLINE
    backoff["status"]["conditions"][0]["lastTransitionTime"] = "2026-12-04T10:00:01Z"  # type: ignore[index]
    assert view_host(backoff, []).state is HostState.FAILED


def test_an_unschedulable_pod_gives_the_schedulers_message() -> None:
    message = "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."
    pod = _pod(
        node=None,
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
            }
        ],
    )
    assert view_host({}, [pod]).unschedulable == message
    both = attempt_state(
        [view_host({}, [_pod(initContainerStatuses=[_running("stage")])]), view_host({}, [pod])]
    )
    assert (both.state, both.unschedulable) == (HostState.WAITING, message)


def test_the_attempt_is_its_first_failure_else_its_least_advanced_host() -> None:
    failed = view_host({}, [_pod("Failed", initContainerStatuses=[_terminated("stage", 1, "x")])])
    running = view_host(
        {}, [_pod(initContainerStatuses=[_terminated("stage", 0), _running("training")])]
    )
    done = view_host({"status": {"conditions": [{"type": "Complete", "status": "True"}]}}, [])
    assert attempt_state([running, failed]) is failed
    assert attempt_state([done, running]).state is HostState.TRAINING
    assert attempt_state([done, done]).state is HostState.DONE

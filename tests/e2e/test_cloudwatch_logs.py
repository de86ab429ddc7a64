"""CloudWatch Logs over real local training jobs: boto3's ``logs`` client and the AWS CLI v2
read every host's output, with times, through batchd's port."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import botocore.exceptions
import httpx
import pytest

from tests.e2e.test_local_training import ended, local, submit, training_payload  # noqa: F401
from tests.support.builders import fifo_queue
from tests.support.server import CREDENTIALS, RunningServer, payload, serve, settings_for, wait_for

GROUP = "/aws/sagemaker/TrainingJobs"

# Each host waits for ``go`` before writing anything, so its stream is seen empty first.
CHATTY = """
import json, os, pathlib, time
base = pathlib.Path(os.environ["SAGEMAKER_BASE_DIR"])
host = json.loads((base / "input/config/resourceconfig.json").read_text())["current_host"]
go = pathlib.Path(__file__).with_name("go")
while not go.exists():
    time.sleep(0.05)
lines = int(json.loads((base / "input/config/hyperparameters.json").read_text())["lines"])
for i in range(lines):
    print(f"{host} line {i:05d} " + "x" * 480)
print(f"{host} done", flush=True)
"""


def _payload(tmp: Path, lines: int, hosts: int) -> str:
    (tmp / "train.py").write_text(CHATTY)
    body = json.loads(training_payload(tmp, "chatty", lines=str(lines)))
    body["ResourceConfig"]["InstanceCount"] = hosts
    return json.dumps(body)


def _training_job(server: RunningServer, job_id: str) -> str:
    def started() -> str | None:
        job = server.client().describe_service_job(jobId=job_id)
        attempt = job.get("latestAttempt", {}).get("serviceResourceId")
        return None if attempt is None else str(attempt["value"].rsplit("/", 1)[1])

    found: str = wait_for(started, timeout=60)
    return found


def _run(server: RunningServer, tmp: Path, lines: int, hosts: int) -> tuple[str, list[str]]:
    """Start a job, check its streams exist before any output, then let it finish."""
    job_id = submit(server, _payload(tmp, lines, hosts))
    name = _training_job(server, job_id)
    logs = server.client("logs")
    streams = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=name + "/")
    names = [s["logStreamName"] for s in streams["logStreams"]]
    assert len(names) == hosts and "nextToken" not in streams
    assert all(n.startswith(f"{name}/algo-") for n in names)
    assert all("firstEventTimestamp" not in s for s in streams["logStreams"])
    (tmp / "go").touch()
    job = wait_for(lambda: ended(server, job_id), timeout=120)
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    return name, names


def test_boto3_pages_a_log_larger_than_one_page_in_order_with_stable_tokens(
    local: RunningServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    name, (stream, *_) = _run(local, tmp_path, lines=2500, hosts=1)
    logs = local.client("logs")
    messages: list[str] = []
    stamps: list[int] = []
    pages = 0
    token: str | None = None
    while True:
        extra = {"nextToken": token} if token else {}
        page = logs.get_log_events(
            logGroupName=GROUP, logStreamName=stream, startFromHead=True, **extra
        )
        if page["nextForwardToken"] == token:  # the end: the same token comes back
            assert page["events"] == []
            break
        pages += 1
        messages += [e["message"] for e in page["events"]]
        stamps += [e["timestamp"] for e in page["events"]]
        token = page["nextForwardToken"]
    ours = [m for m in messages if not m.startswith("[batchd]")]
    assert ours == [f"algo-1 line {i:05d} " + "x" * 480 for i in range(2500)] + ["algo-1 done"]
    assert pages >= 2  # 1.2 MB of output does not fit one 1 MB page
    assert stamps == sorted(stamps)
    # Without startFromHead the newest events come first, and the backward token walks back.
    tail = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, limit=3)
    assert [e["message"] for e in tail["events"]][-1] == "algo-1 done"
    before = logs.get_log_events(
        logGroupName=GROUP, logStreamName=stream, limit=3, nextToken=tail["nextBackwardToken"]
    )
    assert [e["message"] for e in before["events"]] == messages[-6:-3]
    # Resuming by time, as SDK v2 does, starts at the first event of that millisecond.
    since = logs.get_log_events(
        logGroupName=GROUP, logStreamName=stream, startFromHead=True, startTime=stamps[-1]
    )
    assert since["events"][-1]["message"] == "algo-1 done"
    described = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=name)
    (only,) = described["logStreams"]
    assert only["lastEventTimestamp"] == stamps[-1]
    assert only["logStreamName"].endswith(f"-{only['creationTime'] // 1000}")
    filtered = logs.get_paginator("filter_log_events").paginate(
        logGroupName=GROUP, logStreamNamePrefix=name, filterPattern='"line 0249"'
    )
    found = [e["message"][:17] for page in filtered for e in page["events"]]
    assert found == [f"algo-1 line 0249{i}" for i in range(10)]


def test_every_host_has_its_stream_and_filter_interleaves_them_by_time(
    local: RunningServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    name, streams = _run(local, tmp_path, lines=3, hosts=2)
    logs = local.client("logs")
    events = [
        e
        for page in logs.get_paginator("filter_log_events").paginate(
            logGroupName=GROUP, logStreamNamePrefix=name, limit=2
        )
        for e in page["events"]
    ]
    by_stream = {s: [e["message"] for e in events if e["logStreamName"] == s] for s in streams}
    for stream, host in zip(sorted(streams), ("algo-1", "algo-2"), strict=True):
        assert [m for m in by_stream[stream] if not m.startswith("[batchd]")][-1] == f"{host} done"
    keys = [(e["timestamp"], e["logStreamName"]) for e in events]
    assert keys == sorted(keys)
    assert len({e["eventId"] for e in events}) == len(events)
    # Two streams, pages of one: the first page has a token, the last has none.
    first = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=name, limit=1)
    second = logs.describe_log_streams(
        logGroupName=GROUP, logStreamNamePrefix=name, limit=1, nextToken=first["nextToken"]
    )
    assert [first["logStreams"][0]["logStreamName"], second["logStreams"][0]["logStreamName"]] == (
        sorted(streams)
    )
    assert "nextToken" not in second


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (
            {"logGroupName": "/aws/other", "logStreamName": "x/algo-1-1"},
            "ResourceNotFoundException",
        ),
        ({"logGroupName": GROUP, "logStreamName": "nosuch/algo-1-1"}, "ResourceNotFoundException"),
        ({"logGroupName": GROUP, "logStreamName": "not a stream"}, "ResourceNotFoundException"),
    ],
)
def test_unknown_groups_and_streams_are_not_found(
    local: RunningServer,  # noqa: F811
    call: dict[str, Any],
    code: str,
) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        local.client("logs").get_log_events(**call)
    assert caught.value.response["Error"]["Code"] == code


@pytest.mark.parametrize(
    ("target", "body", "field"),
    [
        ("GetLogEvents", {"logGroupName": GROUP, "logStreamName": "a", "limit": 0}, "limit"),
        ("GetLogEvents", {"logGroupName": GROUP}, "logStreamName"),
        ("DescribeLogStreams", {"logGroupName": GROUP, "limit": 51}, "limit"),
        ("FilterLogEvents", {"logGroupName": GROUP, "filterPattern": "{ $.a = 1 }"}, "pattern"),
    ],
)
def test_bad_requests_are_invalid_parameter_errors_naming_the_field(
    local: RunningServer,  # noqa: F811
    target: str,
    body: dict[str, Any],
    field: str,
) -> None:
    answer = httpx.post(
        local.url,
        content=json.dumps(body),
        headers={
            "X-Amz-Target": f"Logs_20140328.{target}",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    assert answer.status_code == 400
    assert answer.json()["__type"] == "InvalidParameterException"
    assert field in answer.json()["message"]


def _aws_cli_v2() -> str:
    found = shutil.which("aws", path="/usr/bin")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("the AWS CLI v2 is missing: .ci/run must apt-get install awscli")
        pytest.skip("needs the AWS CLI v2 at /usr/bin/aws: apt-get install -y awscli")
    return found


def test_aws_cli_v2_tails_and_gets_a_training_job_s_log(
    local: RunningServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    aws = _aws_cli_v2()
    name, streams = _run(local, tmp_path, lines=3, hosts=2)
    env = {
        **os.environ,
        **CREDENTIALS,
        "AWS_PAGER": "",
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": local.url,
    }
    tail = subprocess.run(
        [
            aws,
            "logs",
            "tail",
            GROUP,
            "--log-stream-name-prefix",
            name,
            "--format",
            "short",
            "--endpoint-url",
            local.url,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "algo-1 done" in tail.stdout and "algo-2 done" in tail.stdout
    assert "algo-1 line 00002" in tail.stdout
    got = subprocess.run(
        [
            aws,
            "logs",
            "get-log-events",
            "--log-group-name",
            GROUP,
            "--log-stream-name",
            sorted(streams)[1],
            "--start-from-head",
            "--endpoint-url",
            local.url,
            "--output",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    messages = [e["message"] for e in json.loads(got.stdout)["events"]]
    assert messages[-1] == "algo-2 done"


@pytest.mark.parametrize("descending", [False, True])
def test_describe_log_streams_pages_every_host_of_every_job_in_name_order(
    tmp_path: Path, descending: bool
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path)
    with serve(settings) as running:
        batch = running.client()
        fifo_queue(batch, "q", max_capacity=20)
        ids = [
            batch.submit_service_job(
                jobName=f"job{i}",
                jobQueue="q",
                serviceJobType="SAGEMAKER_TRAINING",
                serviceRequestPayload=payload(instances=2),
            )["jobId"]
            for i in range(5)
        ]
        names = [_training_job(running, job_id) for job_id in ids]
        expected = sorted((f"{n}/algo-{h}-" for n in names for h in (1, 2)), reverse=descending)
        logs = running.client("logs")
        seen: list[str] = []
        pages: list[dict[str, Any]] = []
        token: dict[str, str] = {}
        while True:
            page = logs.describe_log_streams(
                logGroupName=GROUP,
                logStreamNamePrefix="AWSBatch",
                limit=3,
                descending=descending,
                **token,
            )
            pages.append(page)
            seen += [s["logStreamName"] for s in page["logStreams"]]
            if "nextToken" not in page:
                break
            token = {"nextToken": page["nextToken"]}
    assert [s.rsplit("-", 1)[0] + "-" for s in seen] == expected
    assert [len(p["logStreams"]) for p in pages] == [3, 3, 3, 1]

"""The pytest plugin as a user meets it: test files of their own, run by pytest, asking for
the ``batchd`` fixture; nothing of this project's test support is used."""

from __future__ import annotations

import os
import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import batchd

pytest_plugins = ["pytester"]


def _plugin_registered() -> bool:
    return any(ep.value == "batchd.testing.plugin" for ep in entry_points(group="pytest11"))


def _plugin_args() -> list[str]:
    # An installed batchd brings the plugin by its entry point; a source tree on PYTHONPATH
    # (an editable install of another checkout) names it.
    return [] if _plugin_registered() else ["-p", "batchd.testing.plugin"]


PIPELINE = '''
"""A user's pipeline: submit a training job through AWS Batch, wait for it."""
import json
import time

import boto3

RETRY_INTERNAL_ERRORS = {
    "attempts": 3,
    "evaluateOnExit": [
        {"onStatusReason": "Received status from SageMaker: InternalServerError*",
         "action": "RETRY"},
        {"onStatusReason": "*", "action": "EXIT"},
    ],
}


def submit_training(queue, name, hours=1.0):
    payload = {
        "TrainingJobName": name,
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "AlgorithmSpecification": {"TrainingImage": "my/train:1", "TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                           "VolumeSizeInGB": 10},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        "Environment": {"BATCHD_FAKE_DURATION_SECONDS": str(hours * 3600)},
    }
    return boto3.client("batch").submit_service_job(
        jobName=name, jobQueue=queue, serviceJobType="SAGEMAKER_TRAINING",
        serviceRequestPayload=json.dumps(payload), retryStrategy=RETRY_INTERNAL_ERRORS,
    )["jobId"]


def wait(job_id, sleep=time.sleep, every=60):
    batch = boto3.client("batch")
    while True:
        job = batch.describe_service_job(jobId=job_id)
        if job["status"] in ("SUCCEEDED", "FAILED"):
            return job
        sleep(every)
'''

CONFTEST = """
import boto3
import pytest


@pytest.fixture
def queue(batchd):
    batch = boto3.client("batch")
    batch.create_service_environment(
        serviceEnvironmentName="training", serviceEnvironmentType="SAGEMAKER_TRAINING",
        capacityLimits=[{"maxCapacity": 4, "capacityUnit": "NUM_INSTANCES"}])
    batch.create_job_queue(
        jobQueueName="ml", jobQueueType="SAGEMAKER_TRAINING", priority=1,
        serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "training"}])
    return "ml"
"""


@pytest.fixture(autouse=True)
def _batchd_importable_in_subprocesses(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child Python finds this batchd, wherever the parent found it (an absolute path:
    the child runs in a temporary directory)."""
    source = str(Path(batchd.__file__).resolve().parents[1])
    paths = [source, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))


@pytest.fixture
def user_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(pipeline=PIPELINE)
    pytester.makeconftest(CONFTEST)
    return pytester


def test_a_failed_training_job_retried_per_evaluate_on_exit_succeeds_in_well_under_a_second(
    user_project: pytest.Pytester,
) -> None:
    user_project.makepyfile(
        test_retry="""
import time
from batchd.testing import Outcome
from pipeline import submit_training, wait


def test_retries_an_internal_error(batchd, queue):
    batchd.script(Outcome.fail("InternalServerError: We encountered an internal error."),
                  name="nightly", times=1)
    started = time.perf_counter()
    job = wait(submit_training(queue, "nightly", hours=0.25), sleep=batchd.advance)
    assert job["status"] == "SUCCEEDED"
    assert [a["statusReason"] for a in job["attempts"]] == [
        "Received status from SageMaker: InternalServerError: We encountered an internal error.",
        "Received status from SageMaker: Training job completed",
    ]
    assert time.perf_counter() - started < 1.0
"""
    )
    result = user_project.runpytest(*_plugin_args())
    result.assert_outcomes(passed=1)


def test_a_one_hour_job_finishes_after_advancing_an_hour_in_milliseconds(
    user_project: pytest.Pytester,
) -> None:
    user_project.makepyfile(
        test_hour="""
import time
import boto3
from pipeline import submit_training


def test_an_hour(batchd, queue):
    batch = boto3.client("batch")
    job_id = submit_training(queue, "hour", hours=1)
    batchd.advance()
    assert batch.describe_service_job(jobId=job_id)["status"] == "RUNNING"
    started = time.perf_counter()
    batchd.advance(3599)
    assert batch.describe_service_job(jobId=job_id)["status"] == "RUNNING"
    batchd.advance(1)
    assert batch.describe_service_job(jobId=job_id)["status"] == "SUCCEEDED"
    assert time.perf_counter() - started < 0.5
"""
    )
    user_project.runpytest(*_plugin_args()).assert_outcomes(passed=1)


def test_without_advance_time_stands_still_and_each_step_shows_the_next_status(
    user_project: pytest.Pytester,
) -> None:
    user_project.makepyfile(
        test_steps="""
import time
import boto3
from pipeline import submit_training


def test_steps(batchd, queue):
    batch = boto3.client("batch")
    job_id = submit_training(queue, "steps")
    time.sleep(0.3)  # wall time passes; batchd's does not
    seen = [batch.describe_service_job(jobId=job_id)["status"]]
    while batchd.step():
        seen.append(batch.describe_service_job(jobId=job_id)["status"])
    assert seen == ["SUBMITTED", "SCHEDULED", "STARTING", "RUNNING"]
"""
    )
    user_project.runpytest(*_plugin_args()).assert_outcomes(passed=1)


def test_every_test_starts_with_an_empty_server_and_setup_takes_milliseconds(
    user_project: pytest.Pytester,
) -> None:
    user_project.makepyfile(
        test_isolation="""
import time
import boto3
import pytest
from batchd.testing import Outcome
from pipeline import submit_training

@pytest.mark.parametrize("run", range(3))
def test_leaves_things_behind(batchd, queue, run):
    batch = boto3.client("batch")
    assert [q["jobQueueName"] for q in batch.describe_job_queues()["jobQueues"]] == ["ml"]
    assert batch.list_service_jobs(jobQueue="ml")["jobSummaryList"] == []
    batchd.script(Outcome.fail("AlgorithmError: left behind"), name="x", times=None)
    submit_training(queue, "x")
    batchd.advance(60)


def test_scripts_of_earlier_tests_are_gone(batchd, queue):
    batch = boto3.client("batch")
    job_id = submit_training(queue, "x", hours=0)
    batchd.advance(1)
    assert batch.describe_service_job(jobId=job_id)["status"] == "SUCCEEDED"


def test_setup_is_fast(request):
    started = time.perf_counter()
    request.getfixturevalue("batchd")
    assert time.perf_counter() - started < 0.2
"""
    )
    user_project.runpytest(*_plugin_args(), "-p", "no:randomly").assert_outcomes(passed=5)


def test_the_environment_points_at_batchd_during_a_test_and_is_restored_after(
    user_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_BATCH", "http://elsewhere:1")
    user_project.makepyfile(
        test_env="""
import os


def test_dummy_credentials_and_a_region(batchd):
    for name in ("BATCH", "SAGEMAKER", "CLOUDWATCH_LOGS"):
        assert os.environ["AWS_ENDPOINT_URL_" + name] == batchd.endpoint_url
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert os.environ["AWS_DEFAULT_REGION"] == "us-east-1"


def test_the_tests_own_are_kept(monkeypatch, request):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "mine")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "mine-too")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    batchd = request.getfixturevalue("batchd")
    assert os.environ["AWS_ACCESS_KEY_ID"] == "mine"
    assert os.environ["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert batchd.client().describe_job_queues()["jobQueues"] == []
"""
    )
    user_project.runpytest(*_plugin_args()).assert_outcomes(passed=2)
    assert os.environ["AWS_ENDPOINT_URL_BATCH"] == "http://elsewhere:1"
    assert "AWS_ENDPOINT_URL_SAGEMAKER" not in os.environ
    assert "AWS_ACCESS_KEY_ID" not in os.environ


def test_mock_batchd_works_as_decorator_and_context_manager_in_unittest(
    user_project: pytest.Pytester,
) -> None:
    user_project.makepyfile(
        test_unittest="""
import unittest
import boto3
from batchd.testing import mock_batchd
from pipeline import submit_training

mock = mock_batchd()


class PipelineTest(unittest.TestCase):
    @mock
    def test_decorated(self):
        batch = boto3.client("batch")
        self.assertEqual(batch.describe_job_queues()["jobQueues"], [])

    def test_with(self):
        with mock_batchd() as batchd:
            batch = boto3.client("batch")
            batch.create_service_environment(
                serviceEnvironmentName="e", serviceEnvironmentType="SAGEMAKER_TRAINING",
                capacityLimits=[{"maxCapacity": 1, "capacityUnit": "NUM_INSTANCES"}])
            batch.create_job_queue(
                jobQueueName="q", jobQueueType="SAGEMAKER_TRAINING", priority=1,
                serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": "e"}])
            job_id = submit_training("q", "t", hours=2)
            batchd.advance(7200)
            self.assertEqual(batch.describe_service_job(jobId=job_id)["status"], "SUCCEEDED")
"""
    )
    # unittest, with no plugin at all: mock_batchd is the whole interface.
    result = user_project.runpython_c(
        "import sys, unittest; sys.path.insert(0, '.');"
        "r = unittest.main(module='test_unittest', exit=False).result;"
        "sys.exit(not r.wasSuccessful())"
    )
    assert result.ret == 0, result.stderr.str()


def test_moto_mocks_s3_while_batchd_serves_batch(user_project: pytest.Pytester) -> None:
    pytest.importorskip("moto")
    user_project.makepyfile(
        test_moto="""
import boto3
from moto import mock_aws
from pipeline import submit_training, wait


@mock_aws
def test_both(batchd, queue):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="bucket")
    s3.put_object(Bucket="bucket", Key="data/train.csv", Body=b"1,2,3")
    job = wait(submit_training(queue, "with-s3", hours=0.5), sleep=batchd.advance)
    assert job["status"] == "SUCCEEDED"
    assert s3.get_object(Bucket="bucket", Key="data/train.csv")["Body"].read() == b"1,2,3"
"""
    )
    user_project.runpytest(*_plugin_args()).assert_outcomes(passed=1)


def test_a_realtime_test_runs_on_the_wall_clock(user_project: pytest.Pytester) -> None:
    user_project.makepyfile(
        test_realtime="""
import time
import boto3
import pytest
from pipeline import submit_training, wait


@pytest.mark.batchd(realtime=True)
def test_real(batchd, queue):
    started = time.monotonic()
    job = wait(submit_training(queue, "real", hours=0.3 / 3600), every=0.05)
    assert job["status"] == "SUCCEEDED"
    assert time.monotonic() - started >= 0.3
"""
    )
    user_project.runpytest(*_plugin_args()).assert_outcomes(passed=1)


def test_the_plugin_is_installed_as_a_pytest11_entry_point() -> None:
    if not _plugin_registered():
        if os.environ.get("CI"):
            pytest.fail("the pytest11 entry point is missing: pip install -e '.[test]'")
        pytest.skip("batchd is not installed from this tree; run: pip install -e '.[test]'")


def test_a_suite_that_never_asks_for_batchd_starts_no_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
import sys

def test_plain():
    assert "batchd.testing.server" not in sys.modules
"""
    )
    started = time.perf_counter()
    pytester.runpytest_subprocess(*_plugin_args()).assert_outcomes(passed=1)
    assert time.perf_counter() - started < 30


def _readme_block(first_line: str) -> str:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("```python\n" + first_line) + len("```python\n")
    return readme[start : readme.index("```", start)]


def test_the_readme_example_passes_as_written(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(pipeline=_readme_block("# pipeline.py"))
    pytester.makepyfile(test_pipeline=_readme_block("# test_pipeline.py"))
    pytester.runpytest(*_plugin_args()).assert_outcomes(passed=1)

"""Screenshots of every dashboard page for the README: python -m tests.dashboard.screenshots

Builds a small scene on a fresh server (fake backend): a full FIFO queue with a blocked head,
a fair-share queue, a quota-share queue and a failed job; signs in; photographs each page
into docs/dashboard-*.png with Debian's chromium.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.dashboard.browser import ARGS, CHROMIUM
from tests.dashboard.helpers import status
from tests.support.builders import environment, fairshare_policy, quota_policy, quota_share
from tests.support.server import payload, serve, settings_for, wait_for

DOCS = Path(__file__).resolve().parents[2] / "docs"
KEY, SECRET = "AKIDDASHBOARD", "dashboard-secret"
LONG = {"BATCHD_FAKE_DURATION_SECONDS": "3600"}


def _queue(batch: Any, name: str, env: str, policy: str | None = None, **extra: Any) -> None:
    if policy:
        extra["schedulingPolicyArn"] = policy
    batch.create_job_queue(
        jobQueueName=name,
        jobQueueType="SAGEMAKER_TRAINING",
        priority=1,
        serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": env}],
        **extra,
    )


def _job(batch: Any, queue: str, name: str, instances: int = 1, **extra: Any) -> str:
    env = {**LONG, **extra.pop("env", {})}
    body = payload(instances, environment=env, instance_type=extra.pop("kind", "ml.m5.large"))
    out = batch.submit_service_job(
        jobName=name,
        jobQueue=queue,
        serviceJobType="SAGEMAKER_TRAINING",
        serviceRequestPayload=body,
        **extra,
    )
    return str(out["jobId"])


def scene(batch: Any) -> dict[str, str]:
    environment(batch, "gpu-pool", state="ENABLED", limits=[(4, "NUM_INSTANCES")])
    _queue(
        batch,
        "training",
        "gpu-pool",
        jobStateTimeLimitActions=[
            {
                "reason": "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
                "state": "RUNNABLE",
                "maxTimeSeconds": 3600,
                "action": "TERMINATE",
            }
        ],
    )
    jobs = {"resnet": _job(batch, "training", "resnet-50-full", 2)}
    wait_for(lambda: status(batch, jobs["resnet"]) == "RUNNING")
    jobs["bert"] = _job(batch, "training", "bert-finetune", 1)
    failed = _job(
        batch,
        "training",
        "tokenizer-check",
        env={
            "BATCHD_FAKE_DURATION_SECONDS": "0",
            "BATCHD_FAKE_OUTCOME": "Failed",
            "BATCHD_FAKE_FAILURE_REASON": "AlgorithmError: loss is NaN at step 1200",
        },
    )
    wait_for(lambda: status(batch, failed) == "FAILED")
    wait_for(lambda: status(batch, jobs["bert"]) == "RUNNING")
    jobs["llama"] = _job(batch, "training", "llama-pretrain", 2)
    for i in range(3):
        jobs[f"sweep{i}"] = _job(batch, "training", f"lr-sweep-{i}", 1)

    environment(batch, "research-pool", state="ENABLED", limits=[(3, "NUM_INSTANCES")])
    policy = fairshare_policy(
        batch,
        "research-fair",
        shareDecaySeconds=3600,
        shareDistribution=[
            {"shareIdentifier": "alice", "weightFactor": 1.0},
            {"shareIdentifier": "bob", "weightFactor": 0.5},
        ],
    )
    _queue(batch, "research", "research-pool", policy)
    for share, count in (("alice", 3), ("bob", 2)):
        for i in range(count):
            _job(batch, "research", f"{share}-exp-{i}", shareIdentifier=share)

    environment(batch, "quota-pool", state="ENABLED", limits=[(8, "ml.m5.large")])
    _queue(batch, "teams", "quota-pool", quota_policy(batch, "teams-quota"))
    quota_share(batch, "teams", "vision", limits=[(4, "ml.m5.large")], strategy="LEND_AND_BORROW")
    quota_share(batch, "teams", "speech", limits=[(4, "ml.m5.large")], strategy="LEND")
    for i in range(3):
        _job(batch, "teams", f"vision-{i}", 2, quotaShareName="vision")
    _job(batch, "teams", "speech-0", 1, quotaShareName="speech")
    time.sleep(2)  # let the scheduler settle every queue
    return jobs


def main() -> None:
    from playwright.sync_api import sync_playwright

    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(
            f"sqlite:///{tmp}/b.db", Path(tmp) / "data", access_keys={KEY: SECRET}
        )
        with serve(settings) as server, sync_playwright() as playwright:
            import boto3

            batch = boto3.client(
                "batch",
                endpoint_url=server.url,
                region_name="us-east-1",
                aws_access_key_id=KEY,
                aws_secret_access_key=SECRET,
            )
            jobs = scene(batch)
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.goto(server.url + "/signin")
            page.screenshot(path=str(DOCS / "dashboard-signin.png"))
            page.get_by_label("Access key id").fill(KEY)
            page.get_by_label("Secret access key").fill(SECRET)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(server.url + "/")
            shots = {
                "overview": "/",
                "queue": "/queues/training",
                "quota": "/queues/teams",
                "fairshare": "/queues/research",
                "jobs": "/jobs",
                "job": f"/jobs/{jobs['sweep1']}",
            }
            for name, path in shots.items():
                page.goto(server.url + path)
                page.screenshot(path=str(DOCS / f"dashboard-{name}.png"), full_page=True)
                print(f"docs/dashboard-{name}.png", file=sys.stderr)
            browser.close()


if __name__ == "__main__":
    main()

"""A real server on the fake backend and the simulator agree; export feeds simulate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from batchd.cli import main
from tests.simulate.support import fairshare_config, read_jobs
from tests.support.server import RunningServer, payload, statuses, wait_for

# Two teams of equal weight on one instance, jobs submitted in this order; b1 fails. Team b's
# jobs last longer, so that no choice of the fair share hangs on the real server's timing,
# and a0 outlasts the submission of the others even on a loaded machine.
JOBS = [("a0", "a"), ("a1", "a"), ("a2", "a"), ("b0", "b"), ("b1", "b"), ("b2", "b")]
SECONDS = {"a": 0.6, "b": 2.0}


def configure(batch: Any, config: dict[str, Any]) -> None:
    for entry in config["serviceEnvironments"]:
        batch.create_service_environment(**entry)
    for entry in config["schedulingPolicies"]:
        batch.create_scheduling_policy(**entry)
    for entry in config["jobQueues"]:
        batch.create_job_queue(**entry)


def run_on_server(server: RunningServer) -> dict[str, dict[str, Any]]:
    batch = server.client()
    configure(batch, fairshare_config({"a": 1.0, "b": 1.0}))
    ids = []
    for name, share in JOBS:
        env = {"BATCHD_FAKE_DURATION_SECONDS": str(SECONDS[share])}
        if name == "b1":
            env |= {
                "BATCHD_FAKE_OUTCOME": "Failed",
                "BATCHD_FAKE_FAILURE_REASON": "AlgorithmError: x",
            }
        submitted = batch.submit_service_job(
            jobName=name,
            jobQueue="q",
            serviceJobType="SAGEMAKER_TRAINING",
            shareIdentifier=share,
            serviceRequestPayload=payload(name=name, environment=env),
        )
        ids.append(submitted["jobId"])
    wait_for(lambda: set(statuses(batch, ids)) <= {"SUCCEEDED", "FAILED"}, timeout=60, interval=0.1)
    jobs = [batch.describe_service_job(jobId=i) for i in ids]
    return {job["jobName"]: job for job in jobs}


def test_simulating_an_exported_server_dispatches_in_the_same_order(
    server: RunningServer, tmp_path: Path
) -> None:
    # Given jobs of two equal fair shares that ran on a real server, one instance at a time
    served = run_on_server(server)
    served_order = sorted(served, key=lambda n: served[n]["attempts"][0]["startedAt"])
    assert served_order == ["a0", "b0", "a1", "a2", "b1", "b2"]  # as worked out by hand
    # When its configuration and finished jobs are exported and simulated
    config, workload, out = tmp_path / "c.json", tmp_path / "w.jsonl", tmp_path / "out"
    export = ["export", "--endpoint-url", server.url, "--config", str(config)]
    assert main([*export, "--workload", str(workload)]) == 0
    lines = [json.loads(line) for line in workload.read_text().splitlines()]
    assert [line["jobName"] for line in lines] == [name for name, _ in JOBS]
    assert {line["jobName"]: line["outcome"] for line in lines}["b1"] == "Failed"
    # measured from RUNNING as batchd saw it, a poll or more after the backend began counting:
    # on a loaded machine a tenth of a second or two short, hence b's margin above
    assert all(
        abs(line["durationSeconds"] - SECONDS[line["shareIdentifier"]]) < 0.5 for line in lines
    ), lines
    exported = json.loads(config.read_text())
    assert [q["jobQueueName"] for q in exported["jobQueues"]] == ["q"]
    assert main(["simulate", "--config", str(config), "--workload", str(workload),
                 "--out", str(out)]) == 0  # fmt: skip
    # Then the simulation started the jobs in the order the server did, with the same outcomes
    simulated = read_jobs(out)
    simulated_order = [j["jobName"] for j in sorted(simulated, key=lambda j: j["startedAt"])]
    assert simulated_order == served_order, (lines, simulated)
    assert {j["jobName"]: j["status"] for j in simulated} == {
        name: job["status"] for name, job in served.items()
    }
    assert {j["shareIdentifier"] for j in simulated} == {"a", "b"}

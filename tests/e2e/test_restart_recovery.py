"""SIGKILL the server while jobs are SCHEDULED, STARTING and RUNNING; restart; nothing is lost.

One ``batchd serve`` process (``ServerProcess``) runs jobs on the local backend (real training
scripts) and, through environments tagged ``batchd:backend=fake``, on the fake backend. It is
killed with SIGKILL while local jobs are held in SCHEDULED (``docker info`` never answers),
STARTING (the S3 endpoint never answers) and RUNNING (scripts that sleep, with a child in
their process group and one in a session of their own), fake jobs are RUNNING, and a burst of
just-submitted jobs is wherever it is. Then it is restarted on the same data directory and
database, without the hanging endpoint and runtime, and the test checks that:

- every job ends correctly: local attempts=1 jobs FAILED with the lost reason, the others
  retried and SUCCEEDED (the scripts are short the second time); fake jobs were adopted and
  SUCCEEDED on their first attempt; the queued job ran when a slot freed;
- no process from before the kill is alive afterwards (pid and start time checked);
- capacity 2 is never exceeded, neither in ``GetJobQueueSnapshot`` nor in live processes,
  while the old processes are stopped and the retries run; nothing is held at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.process import ServerProcess
from tests.support.server import wait_for

LOST = "was lost; the batchd server restarted while it ran"
SAGEMAKER_LOST = "Received status from SageMaker: InternalServerError: training job "
TERMINAL = ("SUCCEEDED", "FAILED")
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}

# First run (the flag file exists): start a child in the group and one in its own session,
# record the three pids with their start times, sleep. Second run: record, work briefly, end.
TRAIN = """
import os, pathlib, subprocess, sys, time
out = pathlib.Path(os.environ["SAGEMAKER_BASE_DIR"], "output")
def start(pid):
    return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19]
def record(pids):
    (out / "pids.tmp").write_text(" ".join(f"{p}:{start(p)}" for p in pids))
    (out / "pids.tmp").rename(out / "pids")
if pathlib.Path(FLAG).exists():
    sleep = [sys.executable, "-c", "import time; time.sleep(600)"]
    children = [subprocess.Popen(sleep), subprocess.Popen(sleep, start_new_session=True)]
    record([os.getpid()] + [child.pid for child in children])
    time.sleep(600)
record([os.getpid()])
time.sleep(0.5)
"""

# A container runtime whose ``info`` never answers while the flag file exists.
DOCKER = """#!/bin/sh
if [ "$1" = info ] && [ -e FLAG ]; then exec sleep 60; fi
exit 1
"""


class HangingEndpoint:
    """A TCP server that accepts connections and never answers: S3 staging blocks on it."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                self._held.append(self._sock.accept()[0])

    def __enter__(self) -> HangingEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._held:
            conn.close()
        self._sock.close()


def alive(pid: int, start: int) -> bool:
    """The process that started at ``start`` still runs (a zombie has ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return int(fields[19]) == start and fields[0] not in ("Z", "X")


def job_processes(jobs_dir: Path) -> list[int]:
    """Live processes whose environment places them in an attempt under ``jobs_dir``."""
    marker = f"SAGEMAKER_BASE_DIR={jobs_dir}/".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                environ = Path("/proc", entry, "environ").read_bytes()
                stat = Path("/proc", entry, "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if marker in environ and stat[0] not in ("Z", "X"):
                found.append(int(entry))
    return found


def recorded_pids(jobs_dir: Path, prefix: str) -> dict[str, list[tuple[int, int]]]:
    """Training job name -> (pid, start time) its script recorded, for names with ``prefix``."""
    found = {}
    for path in jobs_dir.glob(f"AWSBatch{prefix}*/algo-1/output/pids"):
        items = (item.split(":") for item in path.read_text().split())
        found[path.parents[2].name] = [(int(pid), int(start)) for pid, start in items]
    return found


def payload(
    tmp: Path,
    name: str,
    *,
    image: str | None = None,
    channel: bool = False,
    env: dict[str, str] | None = None,
) -> str:
    algorithm: dict[str, Any] = {"TrainingInputMode": "File"}
    if image is not None:
        algorithm["TrainingImage"] = image
    else:
        algorithm["ContainerEntrypoint"] = [sys.executable, str(tmp / "train.py")]
    body: dict[str, Any] = {
        "TrainingJobName": name,
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "AlgorithmSpecification": algorithm,
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/output"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    if channel:
        source = {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/data/train"}
        body["InputDataConfig"] = [{"ChannelName": "train", "DataSource": {"S3DataSource": source}}]
    if env:
        body["Environment"] = env
    return json.dumps(body)


def setup(batch: Any) -> None:
    for name, capacity, backend in (
        ("local-wide", 10, None),
        ("local-tight", 2, None),
        ("fake-wide", 10, "fake"),
        ("fake-tight", 2, "fake"),
    ):
        batch.create_service_environment(
            serviceEnvironmentName=name,
            serviceEnvironmentType="SAGEMAKER_TRAINING",
            capacityLimits=[{"maxCapacity": capacity, "capacityUnit": "NUM_INSTANCES"}],
            **({"tags": {"batchd:backend": backend}} if backend else {}),
        )
        batch.create_job_queue(
            jobQueueName=name,
            jobQueueType="SAGEMAKER_TRAINING",
            priority=1,
            serviceEnvironmentOrder=[{"order": 1, "serviceEnvironment": name}],
        )


def submit(batch: Any, queue: str, name: str, body: str, attempts: int) -> str:
    out = batch.submit_service_job(
        jobName=name,
        jobQueue=queue,
        serviceJobType="SAGEMAKER_TRAINING",
        serviceRequestPayload=body,
        retryStrategy={"attempts": attempts},
    )
    return str(out["jobId"])


def usage(batch: Any, queue: str) -> int:
    held = batch.get_job_queue_snapshot(jobQueue=queue)["queueUtilization"]
    return sum(int(u["quantity"]) for u in held.get("totalCapacityUsage", []))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Scripts, a fake ``docker`` first on PATH, S3 credentials, and the first-run flag."""
    flag = tmp_path / "first-run"
    flag.touch()
    (tmp_path / "train.py").write_text(TRAIN.replace("FLAG", repr(str(flag))))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(DOCKER.replace("FLAG", str(flag)))
    docker.chmod(0o755)
    rows = tmp_path / "data" / "s3" / "bucket" / "data" / "train" / "rows.csv"
    rows.parent.mkdir(parents=True)
    rows.write_text("1,2\n3,4\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    yield tmp_path
    for pid in job_processes(tmp_path / "data" / "jobs"):  # only if the test failed
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


Pids = list[tuple[int, int]]


def first_run(server: ServerProcess, workdir: Path) -> tuple[dict[str, str], dict[str, str], Pids]:
    """Jobs into SCHEDULED, STARTING, RUNNING (and RUNNABLE), then SIGKILL the server.

    Returns the job ids and statuses by label, and the processes the scripts recorded.
    """
    jobs_dir = workdir / "data" / "jobs"
    ids: dict[str, str] = {}
    server.start()
    try:
        batch = server.client()
        setup(batch)

        def status(label: str) -> str:
            return str(batch.describe_service_job(jobId=ids[label])["status"])

        def reach(label: str, wanted: str) -> None:
            wait_for(lambda: status(label) == wanted, timeout=15)

        def local(label: str, queue: str, attempts: int, **options: Any) -> None:
            body = payload(workdir, label, **options)
            ids[label] = submit(batch, queue, label, body, attempts)

        def faked(label: str, queue: str, attempts: int, seconds: float) -> None:
            body = payload(workdir, "f", env={"BATCHD_FAKE_DURATION_SECONDS": str(seconds)})
            ids[label] = submit(batch, queue, label, body, attempts)

        local("scheduled", "local-wide", 1, image="x/needs-docker:1")
        local("starting", "local-wide", 2, channel=True)
        local("running-once", "local-wide", 1)
        local("running-retry", "local-wide", 2)
        for i in (1, 2, 3):
            local(f"tight-{i}", "local-tight", 2)
            if i < 3:
                reach(f"tight-{i}", "RUNNING")  # submission order is dispatch order
        for label, wanted in (
            ("scheduled", "SCHEDULED"),
            ("starting", "STARTING"),
            ("running-once", "RUNNING"),
            ("running-retry", "RUNNING"),
            ("tight-3", "RUNNABLE"),
        ):
            reach(label, wanted)
        wait_for(lambda: len(recorded_pids(jobs_dir, "")) == 4, timeout=15)

        before = {label: status(label) for label in ids}

        # Fake jobs end on their own: submit them together, kill as soon as they are RUNNING.
        # The restarted server adopts them: they end when they would have ended.
        faked("fake-once", "fake-wide", 1, 8)
        faked("fake-retry", "fake-wide", 2, 3)
        for i in (1, 2, 3):
            faked(f"ftight-{i}", "fake-tight", 2, 3)

        def two_of_three_running() -> dict[str, str] | None:
            states = {t: status(t) for t in ("ftight-1", "ftight-2", "ftight-3")}
            wanted = ["RUNNABLE", "RUNNING", "RUNNING"]
            return states if sorted(states.values()) == wanted else None

        before.update(wait_for(two_of_three_running, timeout=15))
        for label in ("fake-once", "fake-retry"):
            reach(label, "RUNNING")
            before[label] = "RUNNING"
        # A burst, killed wherever it is (SUBMITTED ... RUNNING, maybe mid-spawn).
        local("burst-local", "local-wide", 2)
        faked("burst-fake-1", "fake-wide", 2, 1)
        faked("burst-fake-2", "fake-wide", 2, 1)
    finally:
        server.kill()
    old = [pid for pids in recorded_pids(jobs_dir, "").values() for pid in pids]
    return ids, before, old


def recover(server: ServerProcess, ids: dict[str, str]) -> tuple[dict[str, Any], dict[str, int]]:
    """Restart; sample capacity and live processes until every job has ended."""
    jobs_dir = server.data_dir / "jobs"
    batch = server.client()
    peak = {"local-tight": 0, "fake-tight": 0, "processes": 0}
    ended: dict[str, Any] = {}
    deadline = time.monotonic() + 30
    while len(ended) < len(ids):
        assert time.monotonic() < deadline, f"stuck: {set(ids) - set(ended)}"
        for queue in ("local-tight", "fake-tight"):
            peak[queue] = max(peak[queue], usage(batch, queue))
        running = [
            name
            for name, pids in recorded_pids(jobs_dir, "tight").items()
            if any(alive(pid, start) for pid, start in pids)
        ]
        peak["processes"] = max(peak["processes"], len(running))
        for label, job_id in ids.items():
            if label not in ended:
                job = batch.describe_service_job(jobId=job_id)
                if job["status"] in TERMINAL:
                    ended[label] = job
        time.sleep(0.05)
    return ended, peak


def test_jobs_in_flight_recover_after_sigkill(db_url: str, workdir: Path) -> None:
    jobs_dir = workdir / "data" / "jobs"
    common = ("--stop-grace-seconds", "1", "--hosts-file", "none")
    server = ServerProcess(workdir / "data", db_url, "local", *common)
    with HangingEndpoint() as s3:
        server.extra = (*common, "--container-runtime", "docker", "--s3-endpoint-url", s3.url)
        ids, before, old = first_run(server, workdir)
    assert len(old) >= 12
    assert all(alive(pid, start) for pid, start in old), "the kill leaves orphans to recover"
    assert len(job_processes(jobs_dir)) >= len(old)

    (workdir / "first-run").unlink()  # retries are short; docker info fails fast
    server.extra = common
    server.start()
    try:
        ended, peak = recover(server, ids)
        # Never above 2 (adopted fake jobs may end at once, so 2 need not be reached again)
        assert peak["local-tight"] == 2 and 1 <= peak["fake-tight"] <= 2, peak
        assert 1 <= peak["processes"] <= 2, peak
        assert not [p for p in old if alive(*p)], "a process from before the kill survived"
        assert job_processes(jobs_dir) == [], "a process of some attempt is still running"
        batch = server.client()
        for queue in ("local-wide", "local-tight", "fake-wide", "fake-tight"):
            assert usage(batch, queue) == 0
    finally:
        server.stop()
    assert not any((jobs_dir / ".unfinished").iterdir())

    def outcome(label: str) -> tuple[str, int]:
        return ended[label]["status"], len(ended[label]["attempts"])

    def lost_first(label: str, detail: str = "") -> None:
        reason = ended[label]["attempts"][0]["statusReason"]
        assert reason.startswith(SAGEMAKER_LOST) and LOST in reason and detail in reason

    # attempts=1: FAILED with the clear reason, which the attempt carries too.
    for label in ("scheduled", "running-once"):
        assert outcome(label) == ("FAILED", 1), ended[label]
        assert ended[label]["statusReason"] == ended[label]["attempts"][0]["statusReason"]
    lost_first("scheduled", "(it had not started any process yet)")
    lost_first("running-once", "(3 leftover processes were stopped)")
    # attempts=2: the lost attempt is retried and the retry succeeds.
    for label in ("starting", "running-retry", "tight-1", "tight-2"):
        assert outcome(label) == ("SUCCEEDED", 2), ended[label]
        lost_first(label)
    # Fake training jobs outlive the server (as Kubernetes pods would): adopted, not lost.
    ran = [t for t in ("ftight-1", "ftight-2", "ftight-3") if before[t] == "RUNNING"]
    for label in ("fake-once", "fake-retry", *ran):
        assert outcome(label) == ("SUCCEEDED", 1), ended[label]
    lost_first("starting", "(it had not started any process yet)")
    lost_first("running-retry", "(3 leftover processes were stopped)")
    # The queued jobs ran once a slot freed; the burst ended well wherever it was caught.
    assert outcome("tight-3") == ("SUCCEEDED", 1)
    [waited] = [t for t in ("ftight-1", "ftight-2", "ftight-3") if before[t] == "RUNNABLE"]
    assert outcome(waited) == ("SUCCEEDED", 1)
    for label in ("burst-local", "burst-fake-1", "burst-fake-2"):
        assert ended[label]["status"] == "SUCCEEDED", ended[label]
    summary = {"before": before, "processes_checked": len(old), "peak": peak}
    (workdir / "recovery.json").write_text(json.dumps(summary))

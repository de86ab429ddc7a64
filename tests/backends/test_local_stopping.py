"""Stopping: stop requests, MaxRuntimeInSeconds, failing peers and close kill whole groups."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from batchd.backends.base import Progress, TrainingPhase
from tests.backends.conftest import (
    assert_group_gone,
    get_local,
    live_members,
    new_backend,
    python_job,
    spec_for,
    tar_members,
    wait_for_file,
    wait_until,
)

# Records its process group and a child's pid, then waits; on SIGTERM it saves a checkpoint
# into model/ and exits, unless told to ignore SIGTERM.
LONG_RUNNER = """
import json, os, pathlib, signal, subprocess, sys, time
base = pathlib.Path(os.environ["SAGEMAKER_BASE_DIR"])
child = subprocess.Popen(["sleep", "300"])
def on_term(signum, frame):
    (base / "model" / "checkpoint.txt").write_text("saved on SIGTERM")
    sys.exit(143)
if os.environ.get("IGNORE_SIGTERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, on_term)
info = {"pgid": os.getpgid(0), "child": child.pid, "pid": os.getpid()}
(base / "pids.tmp").write_text(json.dumps(info))
os.rename(base / "pids.tmp", base / "pids.json")
time.sleep(300)
"""


def _pids(data_dir: Path, name: str, host: str = "algo-1") -> Path:
    return data_dir / "jobs" / name / host / "pids.json"


@pytest.mark.parametrize("ignore_sigterm", [False, True], ids=["graceful", "sigkill-after-grace"])
def test_stop_ends_the_job_stopped_and_kills_its_whole_process_group(
    data_dir: Path, ignore_sigterm: bool
) -> None:
    environment = {"IGNORE_SIGTERM": "1"} if ignore_sigterm else {}
    spec = spec_for(python_job(LONG_RUNNER, Environment=environment))
    name = spec.training_job_name

    async def scenario() -> tuple[Progress, dict[str, int]]:
        backend = new_backend(data_dir)
        await backend.start(spec)
        # Given the program and its child are running
        pids = json.loads(await wait_for_file(_pids(data_dir, name)))
        assert (await backend.poll([name]))[0].phase is TrainingPhase.TRAINING
        assert backend.process_groups(name) == [pids["pgid"]]
        # When the job is asked to stop (twice: stop is idempotent)
        await backend.stop(name)
        await backend.stop(name)
        end = await wait_until(backend, name, lambda p: p.phase.terminal)
        # Then nothing of the group survives, the child included
        await assert_group_gone(pids["pgid"])
        return end, pids

    end, pids = asyncio.run(scenario())
    assert pids["pgid"] == pids["pid"]
    assert end.phase is TrainingPhase.STOPPED
    assert end.stopped_by_request is True
    assert end.failure_reason == "Training job stopped"
    assert live_members(pids["pgid"]) == []
    # and the artifacts of a stopped job are still packed
    assert end.model_artifacts is not None
    model = tar_members(get_local(data_dir, end.model_artifacts))
    assert model == ({} if ignore_sigterm else {"checkpoint.txt": b"saved on SIGTERM"})


def test_max_runtime_stops_the_job_with_max_runtime_exceeded(data_dir: Path) -> None:
    spec = spec_for(python_job(LONG_RUNNER, StoppingCondition={"MaxRuntimeInSeconds": 1}))
    name = spec.training_job_name

    async def scenario() -> tuple[Progress, int]:
        backend = new_backend(data_dir)
        await backend.start(spec)
        pgid = json.loads(await wait_for_file(_pids(data_dir, name)))["pgid"]
        end = await wait_until(backend, name, lambda p: p.phase.terminal, timeout=10)
        await assert_group_gone(pgid)
        return end, pgid

    end, _ = asyncio.run(scenario())
    assert end.phase is TrainingPhase.STOPPED
    assert end.stopped_by_request is False
    assert end.failure_reason is not None
    assert end.failure_reason.startswith("MaxRuntimeExceeded: ")
    assert end.model_artifacts is not None
    assert tar_members(get_local(data_dir, end.model_artifacts)) == {
        "checkpoint.txt": b"saved on SIGTERM"
    }


FAIL_ON_ALGO_2 = (
    """
import os, pathlib, sys, time
if os.environ["CURRENT_HOST"] == "algo-2":
    peer = pathlib.Path(os.environ["SAGEMAKER_BASE_DIR"]).parent / "algo-1" / "pids.json"
    while not peer.exists():
        time.sleep(0.01)
    print("algo-2 gives up", file=sys.stderr)
    sys.exit(5)
"""
    + LONG_RUNNER
)


def test_one_failing_host_fails_the_job_and_stops_the_others(data_dir: Path) -> None:
    payload = python_job(FAIL_ON_ALGO_2)
    payload["ResourceConfig"]["InstanceCount"] = 2
    spec = spec_for(payload)
    name = spec.training_job_name

    async def scenario() -> Progress:
        backend = new_backend(data_dir)
        await backend.start(spec)
        pgid = json.loads(await wait_for_file(_pids(data_dir, name)))["pgid"]
        end = await wait_until(backend, name, lambda p: p.phase.terminal, timeout=10)
        await assert_group_gone(pgid)
        return end

    end = asyncio.run(scenario())
    assert end.phase is TrainingPhase.FAILED
    assert end.failure_reason == "AlgorithmError: algo-2 gives up, exit code: 5"


def test_close_kills_running_jobs(data_dir: Path) -> None:
    spec = spec_for(python_job(LONG_RUNNER))
    name = spec.training_job_name

    async def scenario() -> None:
        backend = new_backend(data_dir)
        await backend.start(spec)
        pgid = json.loads(await wait_for_file(_pids(data_dir, name)))["pgid"]
        await backend.close()
        await assert_group_gone(pgid)

    asyncio.run(scenario())


def test_stop_while_downloading_ends_stopped_without_running_anything(
    data_dir: Path, tmp_path: Path
) -> None:
    # Given a channel with many objects, so staging takes a while
    marker = tmp_path / "ran"
    payload = python_job(f"open({str(marker)!r}, 'w')")
    source = tmp_path / "source"
    source.mkdir()
    for index in range(3000):
        (source / f"part-{index:05d}").write_bytes(b"x")
    payload["InputDataConfig"] = [
        {
            "ChannelName": "train",
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"file://{source}/"}
            },
        }
    ]
    spec = spec_for(payload)
    name = spec.training_job_name

    async def scenario() -> Progress:
        backend = new_backend(data_dir)
        await backend.start(spec)
        await wait_until(backend, name, lambda p: p.phase is not TrainingPhase.PENDING)
        await backend.stop(name)
        return await wait_until(backend, name, lambda p: p.phase.terminal)

    end = asyncio.run(scenario())
    assert end.phase is TrainingPhase.STOPPED
    assert end.stopped_by_request is True
    assert not marker.exists()

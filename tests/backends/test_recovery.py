"""Restart recovery of the local backend: a killed server's leftovers are stopped and reported.

The "previous server" is a real process running a LocalBackend; it is killed with SIGKILL while
its attempts run, and a new LocalBackend on the same data directory must find what it left.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from batchd.backends.base import LaunchSpec, Progress, TrainingPhase
from batchd.backends.local.recovery import RECORD_FILE, UNFINISHED_DIR
from tests.backends.conftest import (
    PYTHON,
    job_name,
    new_backend,
    python_job,
    run_to_end,
    spec_for,
    wait_until,
)
from tests.support.waiting import wait_until as poll_until

LOST_TEXT = "was lost; the batchd server restarted while it ran"

# Runs a LocalBackend, starts the attempts given as JSON, waits until each is in its wanted
# phase (and its ``output/pids`` file exists when it trains), prints "ready", then idles.
PREVIOUS_SERVER = """
import asyncio, json, sys
from pathlib import Path
from batchd.backends.base import LaunchSpec
from batchd.backends.local import LocalBackend

async def main():
    data_dir, jobs = Path(sys.argv[1]), json.loads(sys.argv[2])
    hosts_file = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    backend = LocalBackend(data_dir, stop_grace_seconds=1.0, hosts_file=hosts_file)
    for job in jobs:
        await backend.start(LaunchSpec(**job["spec"]))
    while True:
        ready = True
        for job in jobs:
            name = job["spec"]["training_job_name"]
            [progress] = await backend.poll([name])
            pids = data_dir / "jobs" / name / "algo-1" / "output" / "pids"
            if progress.phase.value != job["phase"]:
                ready = False
            elif job["phase"] == "Training" and not pids.exists():
                ready = False
        if ready:
            break
        await asyncio.sleep(0.02)
    print("ready", flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""

# A host that starts a child in its process group and one in a session of its own (which
# leaves the group), writes the three pids with their start times, and sleeps.
SLEEPER = """
import os, pathlib, signal, subprocess, sys, time
if os.environ.get("IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the children
sleep = [sys.executable, "-c", "import time; time.sleep(600)"]
child = subprocess.Popen(sleep)
escaped = subprocess.Popen(sleep, start_new_session=True)
def start(pid):
    return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19]
pids = " ".join(f"{p}:{start(p)}" for p in (os.getpid(), child.pid, escaped.pid))
out = pathlib.Path(os.environ["SAGEMAKER_BASE_DIR"], "output")
(out / "pids.tmp").write_text(pids)
(out / "pids.tmp").rename(out / "pids")
time.sleep(600)
"""


# -- processes, checked independently of the code under test ----------------------------------


def stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rsplit(")", 1)[1].split()


def start_time(pid: int) -> int:
    fields = stat_fields(pid)
    assert fields is not None, f"process {pid} does not exist"
    return int(fields[19])


def alive(pid: int, start: int) -> bool:
    """The process that started at ``start`` still runs (a zombie has ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    fields = stat_fields(pid)
    return fields is not None and int(fields[19]) == start and fields[0] not in ("Z", "X")


def read_pids(data_dir: Path, name: str) -> list[tuple[int, int]]:
    text = (data_dir / "jobs" / name / "algo-1" / "output" / "pids").read_text()
    return [(int(p), int(s)) for p, s in (item.split(":") for item in text.split())]


async def wait_gone(processes: Sequence[tuple[int, int]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(pid, start) for pid, start in processes):
        assert time.monotonic() < deadline, f"still alive: {processes}"
        await asyncio.sleep(0.05)


def environ_of(pid: int) -> bytes:
    try:
        return Path("/proc", str(pid), "environ").read_bytes()
    except OSError:
        return b""


def job_processes(data_dir: Path) -> list[int]:
    """Live processes whose environment places them in an attempt under ``data_dir``."""
    marker = f"SAGEMAKER_BASE_DIR={data_dir}/jobs/".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                environ = Path("/proc", entry, "environ").read_bytes()
            except OSError:
                continue
            if marker in environ and (stat_fields(int(entry)) or ["Z"])[0] not in ("Z", "X"):
                found.append(int(entry))
    return found


@pytest.fixture(autouse=True)
def no_strays(data_dir: Path) -> Iterator[None]:
    """Whatever a failing test leaves of its attempts does not outlive it."""
    yield
    for pid in job_processes(data_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


@pytest.fixture
def decoy() -> Iterator[subprocess.Popen[bytes]]:
    """A process batchd did not start: a session leader, like a host, without a job's env."""
    env = {k: v for k, v in os.environ.items() if k != "TRAINING_JOB_NAME"}
    process = subprocess.Popen(
        [PYTHON, "-c", "import time; time.sleep(600)"], start_new_session=True, env=env
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait(10)


# -- the previous server ----------------------------------------------------------------------


def spec_json(spec: LaunchSpec) -> dict[str, Any]:
    return {**dataclasses.asdict(spec), "payload": dict(spec.payload), "tags": dict(spec.tags)}


def crash_while(
    data_dir: Path,
    jobs: Sequence[tuple[LaunchSpec, TrainingPhase]],
    hosts_file: Path | None = None,
) -> None:
    """Run a LocalBackend in another process until every job is in its phase, then SIGKILL it."""
    argv = [PYTHON, "-c", PREVIOUS_SERVER, str(data_dir)]
    argv.append(json.dumps([{"spec": spec_json(s), "phase": p.value} for s, p in jobs]))
    if hosts_file is not None:
        argv.append(str(hosts_file))
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert server.stdout is not None
        line = b""
        deadline = time.monotonic() + 20
        os.set_blocking(server.stdout.fileno(), False)
        while not line.startswith(b"ready"):
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "the previous server never got ready"
            line += server.stdout.read() or b""
            time.sleep(0.02)
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(10)


def sleeper_spec(**env: str) -> LaunchSpec:
    return spec_for(python_job(SLEEPER, Environment=env))


def unfinished(data_dir: Path) -> list[str]:
    markers = data_dir / "jobs" / UNFINISHED_DIR
    return sorted(p.name for p in markers.iterdir()) if markers.exists() else []


def record(data_dir: Path, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((data_dir / "jobs" / name / RECORD_FILE).read_text())
    return loaded


def forge(data_dir: Path, name: str, *, owner: dict[str, Any], boot: str, hosts: Any) -> None:
    """An unfinished attempt's marker and record, as a previous run would have left them."""
    (data_dir / "jobs" / name / "algo-1").mkdir(parents=True)
    (data_dir / "jobs" / UNFINISHED_DIR).mkdir(parents=True, exist_ok=True)
    (data_dir / "jobs" / UNFINISHED_DIR / name).touch()
    body = {
        "version": 1,
        "name": name,
        "owner": owner,
        "boot_id": boot,
        "phase": "Training",
        "at_ms": 1,
        "hosts": hosts,
    }
    (data_dir / "jobs" / name / RECORD_FILE).write_text(json.dumps(body))


DEAD_OWNER = {"pid": 0, "start": 0, "id": "gone"}


def is_lost(progress: Progress) -> bool:
    return progress.phase is TrainingPhase.LOST


# -- tests ------------------------------------------------------------------------------------


def test_a_killed_servers_processes_are_stopped_and_the_attempt_reported_lost(
    data_dir: Path,
) -> None:
    spec = sleeper_spec()
    name = spec.training_job_name
    crash_while(data_dir, [(spec, TrainingPhase.TRAINING)])
    processes = read_pids(data_dir, name)
    assert len(processes) == 3
    assert all(alive(pid, start) for pid, start in processes), "orphans are the premise"
    assert sorted(job_processes(data_dir)) == sorted(pid for pid, _ in processes)
    assert unfinished(data_dir) == [name]

    async def recover() -> Progress:
        backend = new_backend(data_dir)
        [first] = await backend.poll([name])
        assert first.phase is TrainingPhase.TRAINING  # the recorded phase, while stopping
        lost = await wait_until(backend, name, is_lost, timeout=15)
        await wait_gone(processes, timeout=2)
        await backend.close()
        return lost

    lost = asyncio.run(recover())
    assert lost.failure_reason == (
        f"InternalServerError: training job {name} {LOST_TEXT} (3 leftover processes were stopped)"
    )
    assert job_processes(data_dir) == []
    assert unfinished(data_dir) == []
    assert record(data_dir, name)["phase"] == "Lost"


def test_processes_that_ignore_sigterm_are_killed_after_the_grace_period(data_dir: Path) -> None:
    spec = sleeper_spec(IGNORE_TERM="1")
    name = spec.training_job_name
    crash_while(data_dir, [(spec, TrainingPhase.TRAINING)])
    processes = read_pids(data_dir, name)

    async def recover() -> float:
        backend = new_backend(data_dir, stop_grace_seconds=1.0)
        began = time.monotonic()
        held = 0
        while True:
            [progress] = await backend.poll([name])
            if progress.phase is TrainingPhase.LOST:
                break
            assert progress.phase is TrainingPhase.TRAINING
            assert any(alive(pid, start) for pid, start in processes) or held > 0
            held += 1
            assert time.monotonic() - began < 15
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - began
        assert not any(alive(pid, start) for pid, start in processes)
        await backend.close()
        return elapsed

    elapsed = asyncio.run(recover())
    assert 0.9 <= elapsed < 8


def test_an_attempt_still_staging_is_lost_at_once(data_dir: Path, tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    os.mkfifo(hosts)  # reading it blocks: staging never ends
    spec = spec_for(python_job("pass"))
    name = spec.training_job_name
    crash_while(data_dir, [(spec, TrainingPhase.DOWNLOADING)], hosts_file=hosts)
    assert record(data_dir, name)["hosts"] == []

    async def recover() -> tuple[Progress, Progress]:
        backend = new_backend(data_dir)
        [first] = await backend.poll([name])
        lost = await wait_until(backend, name, is_lost, timeout=5)
        await backend.close()
        return first, lost

    first, lost = asyncio.run(recover())
    assert first.phase is TrainingPhase.DOWNLOADING
    assert lost.failure_reason == (
        f"InternalServerError: training job {name} {LOST_TEXT} (it had not started any process yet)"
    )
    assert unfinished(data_dir) == []


def test_an_outcome_recorded_before_the_crash_is_reported(data_dir: Path) -> None:
    done = spec_for(python_job("print('done')"))
    kept = spec_for(python_job("print('kept')"))
    crash_while(data_dir, [(done, TrainingPhase.COMPLETED), (kept, TrainingPhase.COMPLETED)])
    assert unfinished(data_dir) == []
    # A crash between the terminal record and the marker's removal leaves the marker.
    (data_dir / "jobs" / UNFINISHED_DIR / kept.training_job_name).touch()

    async def recover() -> list[Progress]:
        backend = new_backend(data_dir)
        progress = list(await backend.poll([done.training_job_name, kept.training_job_name]))
        await backend.close()
        return progress

    for spec, progress in zip((done, kept), asyncio.run(recover()), strict=True):
        assert progress.phase is TrainingPhase.COMPLETED
        name = spec.training_job_name
        assert progress.model_artifacts == f"s3://results/out/{name}/output/model.tar.gz"
    assert unfinished(data_dir) == []


def test_a_recycled_pid_or_another_boots_pid_is_never_signalled(
    data_dir: Path, decoy: subprocess.Popen[bytes]
) -> None:
    start = start_time(decoy.pid)
    reused, rebooted = job_name("reused"), job_name("rebooted")
    host = {"host": "algo-1", "pid": decoy.pid, "cleanup": []}
    forge(data_dir, reused, owner=DEAD_OWNER, boot=boot_id(), hosts=[{**host, "start": start + 1}])
    forge(
        data_dir, rebooted, owner=DEAD_OWNER, boot="another-boot", hosts=[{**host, "start": start}]
    )

    async def recover() -> list[Progress]:
        backend = new_backend(data_dir)
        found = [await wait_until(backend, n, is_lost, timeout=5) for n in (reused, rebooted)]
        await backend.close()
        return found

    for progress in asyncio.run(recover()):
        assert progress.failure_reason is not None
        assert progress.failure_reason.endswith("(none of its processes was still running)")
    time.sleep(0.2)
    assert alive(decoy.pid, start)
    assert unfinished(data_dir) == []


def test_unrecorded_processes_of_the_attempt_are_found_by_their_environment(
    data_dir: Path,
) -> None:
    name = job_name("spawned")
    forge(data_dir, name, owner=DEAD_OWNER, boot=boot_id(), hosts=[])
    base = data_dir / "jobs" / name / "algo-1"
    sleep = [PYTHON, "-c", "import time; time.sleep(600)"]

    def spawn(**env: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            sleep, env={"PATH": os.environ["PATH"], **env}, start_new_session=True
        )

    ours = spawn(TRAINING_JOB_NAME=name, SAGEMAKER_BASE_DIR=str(base))
    elsewhere = spawn(TRAINING_JOB_NAME=name, SAGEMAKER_BASE_DIR="/somewhere/else")
    other_job = spawn(TRAINING_JOB_NAME=job_name("other"), SAGEMAKER_BASE_DIR=str(base))
    try:
        # Once they have exec'd, /proc shows the environment recovery looks for.
        for process in (ours, elsewhere, other_job):
            pid = process.pid
            poll_until(lambda: b"TRAINING_JOB_NAME=" in environ_of(pid), timeout=10)  # noqa: B023
        starts = {p.pid: start_time(p.pid) for p in (ours, elsewhere, other_job)}

        async def recover() -> Progress:
            backend = new_backend(data_dir)
            lost = await wait_until(backend, name, is_lost, timeout=5)
            await backend.close()
            return lost

        lost = asyncio.run(recover())
        assert lost.failure_reason is not None
        assert lost.failure_reason.endswith("(1 leftover process was stopped)")
        assert ours.wait(5) == -signal.SIGTERM
        assert alive(elsewhere.pid, starts[elsewhere.pid])
        assert alive(other_job.pid, starts[other_job.pid])
    finally:
        for process in (ours, elsewhere, other_job):
            process.kill()
            process.wait(10)


def test_attempts_of_a_running_owner_are_left_alone(
    data_dir: Path, decoy: subprocess.Popen[bytes]
) -> None:
    start = start_time(decoy.pid)
    name = job_name("owned")
    owner = {"pid": decoy.pid, "start": start, "id": "another-server"}
    hosts = [{"host": "algo-1", "pid": decoy.pid, "start": start, "cleanup": []}]
    forge(data_dir, name, owner=owner, boot=boot_id(), hosts=hosts)

    async def recover() -> Progress:
        backend = new_backend(data_dir)
        assert not backend.recovering
        [progress] = await backend.poll([name])
        await backend.close()
        return progress

    progress = asyncio.run(recover())
    assert progress.failure_reason == (
        f"InternalServerError: training job {name} {LOST_TEXT} "
        "(the local backend has no record of it)"
    )
    assert alive(decoy.pid, start)
    assert unfinished(data_dir) == [name]


def test_a_finished_attempt_is_recorded_and_leaves_no_marker(data_dir: Path) -> None:
    spec = spec_for(python_job("print('hello')"))
    progress = asyncio.run(run_to_end(new_backend(data_dir), spec))
    assert progress.phase is TrainingPhase.COMPLETED
    assert unfinished(data_dir) == []
    written = record(data_dir, spec.training_job_name)
    assert written["phase"] == "Completed"
    assert written["model_artifacts"] == progress.model_artifacts
    [host] = written["hosts"]
    assert host["host"] == "algo-1" and host["pid"] > 1 and isinstance(host["start"], int)
    assert written["owner"]["pid"] == os.getpid()
    assert written["boot_id"] == boot_id()

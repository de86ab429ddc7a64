"""Every benchmark script still runs: its ``--smoke`` version, end to end, with real servers.

These check that the scripts work and print their comparison, not how fast anything is:
timings on a shared machine are noise, so no number is asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Minutes of real servers: a step of their own in .ci/run, not part of the default run.
pytestmark = pytest.mark.bench


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("module", "args", "expect"),
    [
        ("bench.submit_capacity", ["--smoke"], "moto SubmitJob"),
        ("bench.client_throughput", ["--smoke"], "ceiling"),
        ("bench.read_latency", ["--smoke"], "Describe"),
        ("bench.scheduling", ["--smoke"], "dispatch"),
        ("bench.memory", ["--smoke"], "RSS"),
        ("bench.planner", ["--passes", "3", "--capacity", "50"], "decisions"),
        ("bench.local_start", ["--smoke"], "process start"),
        ("bench.http_stack", ["--smoke"], "Server CPU per request"),
        ("bench.fixture", ["--smoke"], "real s per simulated day"),
        ("bench.simulate", ["--smoke"], "jobs/s"),
        ("bench.kubernetes", ["--smoke"], "dispatched into the cluster"),
    ],
)
def test_benchmark_script_runs(module: str, args: list[str], expect: str) -> None:
    if module == "bench.kubernetes":
        _needs_control_plane()
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert expect.lower() in done.stdout.lower(), done.stdout[-3000:]
    assert "machine" in done.stdout.lower() or module == "bench.planner"


def _needs_control_plane() -> None:
    from tests.kube.cluster import BUILD_COMMAND, missing_binaries

    missing = missing_binaries()
    if missing:
        message = f"Kubernetes control plane missing ({', '.join(missing)}); run: {BUILD_COMMAND}"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run bench.kubernetes")
        pytest.skip(message)

"""The default ``pytest`` run leaves the benchmark smoke runs out; ``-m bench`` selects them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def collected(*args: str) -> tuple[int, int]:
    """(selected, deselected) of the smoke runs by ``pytest --collect-only`` with ``args``."""
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [*command, *args, "tests/bench/test_bench_smoke.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    # e.g. "7 tests collected in 1.2s", "no tests collected (7 deselected) in 1.2s"
    found = re.match(r"(no|\d+)(?:/\d+)? tests? collected(?: \((\d+) deselected\))?", summary)
    assert found is not None, done.stdout[-2000:] + done.stderr[-2000:]
    return (0 if found[1] == "no" else int(found[1])), int(found[2] or 0)


@pytest.mark.parametrize(("args", "selected"), [((), False), (("-m", "bench"), True)])
def test_benchmark_smoke_runs_are_selected_only_when_asked_for(
    args: tuple[str, ...], selected: bool
) -> None:
    chosen, left_out = collected(*args)
    assert (chosen > 0, left_out > 0) == (selected, not selected), (chosen, left_out)

"""What simulate writes: deterministic jobs.jsonl, a summary, a report with its plots."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from batchd.cli import main
from batchd.simulate.engine import run_simulation, workload_lines
from batchd.simulate.generate import generate_lines
from batchd.simulate.results import collect
from batchd.simulate.run import simulate
from tests.simulate.support import fairshare_config, write

SPEC = {
    "seed": 7,
    "horizonSeconds": 3600,
    "templates": [
        {
            "jobQueue": "q",
            "shareIdentifier": share,
            "arrivalsPerHour": 40,
            "runtime": {"minimumSeconds": 60, "tailMeanSeconds": 300},
            "instanceCount": count,
            "failureRate": 0.2,
        }
        for share, count in (("a", 1), ("b", 2))
    ],
}
PNG = b"\x89PNG\r\n\x1a\n"


def workload(tmp: Path, weights: dict[str, float]) -> tuple[Path, Path]:
    return write(tmp, fairshare_config(weights, capacity=3), list(generate_lines(SPEC)))


def test_the_same_inputs_and_seed_give_byte_identical_jobs(tmp_path: Path) -> None:
    config, jobs = workload(tmp_path, {"a": 1.0, "b": 1.0})
    simulate(config, jobs, tmp_path / "one", seed=3, progress=None)
    simulate(config, jobs, tmp_path / "two", seed=3, progress=None)
    first = (tmp_path / "one" / "jobs.jsonl").read_bytes()
    assert first == (tmp_path / "two" / "jobs.jsonl").read_bytes()
    lines = first.decode().splitlines()
    assert len(lines) == len(list(generate_lines(SPEC))) > 20
    assert {json.loads(line)["status"] for line in lines} == {"SUCCEEDED", "FAILED"}


def test_generate_is_deterministic_and_shaped_as_the_spec_says() -> None:
    jobs = list(generate_lines(SPEC))
    assert jobs == list(generate_lines(SPEC))
    assert jobs != list(generate_lines({**SPEC, "seed": 8}))
    assert [j["submittedAt"] for j in jobs] == sorted(j["submittedAt"] for j in jobs)
    assert all(0 <= j["submittedAt"] < 3600 and j["durationSeconds"] >= 60 for j in jobs)
    assert {j["instanceCount"] for j in jobs if j["shareIdentifier"] == "b"} == {2}
    failed = [j for j in jobs if j["outcome"] == "Failed"]
    assert failed and all(j["failureReason"] for j in failed)


def test_compare_writes_both_runs_and_one_report_with_their_plots(tmp_path: Path) -> None:
    config, jobs = workload(tmp_path, {"a": 1.0, "b": 1.0})
    other = tmp_path / "favour-b.json"
    other.write_text(json.dumps(fairshare_config({"a": 4.0, "b": 1.0}, capacity=3)))
    out = tmp_path / "out"
    code = main(
        ["simulate", "--config", str(config), "--workload", str(jobs), "--out", str(out),
         "--compare", str(other)]
    )  # fmt: skip
    assert code == 0
    for run in (out, out / "compare"):
        summary = json.loads((run / "summary.json").read_text())
        assert {s["shareIdentifier"] for s in summary["shares"]} == {"a", "b"}
        assert all(s["waitSeconds"]["p50"] is not None for s in summary["shares"])
        assert 0 < summary["serviceEnvironments"][0]["utilization"] <= 1
        for plot in ("waits.png", "capacity.png", "depth.png"):
            assert (run / plot).read_bytes().startswith(PNG)
    report = (out / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 6
    assert "config" in report and "favour-b" in report
    # b weighs less in the second: its waits are shorter there
    waits = [
        {s["shareIdentifier"]: s["waitSeconds"]["p95"] for s in json.loads(
            (run / "summary.json").read_text())["shares"]}
        for run in (out, out / "compare")
    ]  # fmt: skip
    assert waits[1]["b"] <= waits[0]["b"]


def test_without_matplotlib_simulate_says_how_to_install_it(tmp_path: Path) -> None:
    config, jobs = workload(tmp_path, {"a": 1.0})
    blocker = tmp_path / "block" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    done = subprocess.run(
        [sys.executable, "-m", "batchd.cli", "simulate", "--config", str(config),
         "--workload", str(jobs), "--out", str(tmp_path / "out")],
        env={"PYTHONPATH": f"{blocker.parent}:{Path(__file__).parents[2] / 'src'}"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "pip install 'batchd[simulate]'" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "--config", "c.json"], "--workload, --out"),
        (["simulate", "generate"], "SPEC.json"),
    ],
)
def test_missing_arguments_are_named(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_training_jobs_started_at_once_give_the_jobs_stepped_phase_by_phase(
    tmp_path: Path,
) -> None:
    """The simulator's fake backend skips the phases' cycles; nothing in jobs.jsonl shows it."""
    config, jobs = workload(tmp_path, {"a": 1.0, "b": 3.0})

    async def run(instant_start: bool) -> bytes:
        out = io.BytesIO()
        arrivals = workload_lines(jobs)
        document = json.loads(config.read_text())
        async with run_simulation(
            document, arrivals, seed=5, progress=None, instant_start=instant_start
        ) as sim:
            await collect(sim, out)
        return out.getvalue()

    at_once, stepped = asyncio.run(run(True)), asyncio.run(run(False))
    assert at_once == stepped
    assert len(at_once.splitlines()) > 20

"""``batchd simulate``: one configuration (or two, with --compare) over one workload."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, TextIO

from batchd import jsontext
from batchd.simulate.engine import SimulationError, run_simulation, workload_lines
from batchd.simulate.report import require_matplotlib, write_report
from batchd.simulate.results import Results, collect
from batchd.simulate.summary import summarize

__all__ = ["simulate"]


def load_config(path: Path) -> dict[str, Any]:
    try:
        config = jsontext.loads(path.read_bytes())
    except (OSError, ValueError) as err:
        raise SimulationError(f"{path}: {err}") from None
    if not isinstance(config, dict):
        raise SimulationError(f"{path}: not a JSON object")
    return config


async def _one(
    config: dict[str, Any],
    workload: Path,
    out: Path,
    seed: int,
    resolution: float,
    progress: TextIO | None,
) -> tuple[Results, dict[str, Any]]:
    out.mkdir(parents=True, exist_ok=True)
    arrivals = workload_lines(workload)
    async with run_simulation(
        config, arrivals, seed=seed, resolution=resolution, progress=progress
    ) as sim:
        with (out / "jobs.jsonl").open("wb") as jobs_out:
            results = await collect(sim, jobs_out)
        summary = summarize(
            config,
            results,
            seed=seed,
            resolutionSeconds=resolution,
            jobs=sim.jobs,
            wallSeconds=round(sim.wall_seconds, 3),
            cycles=sim.cycles,
        )
    # The wall time changes from run to run; it is kept out of jobs.jsonl, not out of here.
    (out / "summary.json").write_text(jsontext.dumps_pretty(summary) + "\n", encoding="utf-8")
    return results, summary


def simulate(
    config: Path,
    workload: Path,
    out: Path,
    *,
    seed: int = 0,
    compare: Path | None = None,
    resolution: float = 0.0,
    progress: TextIO | None = sys.stderr,
) -> int:
    """Write jobs.jsonl, summary.json and report.html (and compare/ with --compare) to out."""
    require_matplotlib()  # fail before the run, not after it
    configs = [(config.stem, load_config(config), out)]
    if compare is not None:
        configs.append((compare.stem, load_config(compare), out / "compare"))
    runs = []
    for title, document, directory in configs:
        results, summary = asyncio.run(
            _one(document, workload, directory, seed, resolution, progress)
        )
        runs.append((title, results, summary, directory))
    write_report(out / "report.html", runs)
    return 0

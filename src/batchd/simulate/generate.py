"""``batchd simulate generate SPEC.json``: a synthetic workload after Armada's simulator spec.

SPEC::

    {"seed": 1, "horizonSeconds": 86400,
     "templates": [{"jobQueue": "q", "shareIdentifier": "a",        # or "quotaShareName"
                    "arrivalsPerHour": 30,                          # Poisson arrivals
                    "runtime": {"minimumSeconds": 60, "tailMeanSeconds": 600},
                    "instanceCount": 1, "instanceType": "ml.m5.large",
                    "schedulingPriority": 0, "failureRate": 0.05,
                    "retryStrategy": {"attempts": 1}, "number": 1000}]}  # number: optional cap

Run times are shifted exponential (the minimum plus an exponential tail of that mean), as in
Armada's ``ShiftedExponential``. The same spec and seed give the same file.
"""

from __future__ import annotations

import heapq
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from batchd import jsontext
from batchd.simulate.engine import SimulationError

__all__ = ["generate", "generate_lines"]


def _template_jobs(
    index: int, template: dict[str, Any], seed: int, horizon: float
) -> Iterator[tuple[float, int, int, dict[str, Any]]]:
    rng = random.Random(f"{seed}/{index}")
    rate = float(template["arrivalsPerHour"]) / 3600
    if rate <= 0:
        return
    runtime = template.get("runtime") or {}
    minimum = float(runtime.get("minimumSeconds", 60))
    tail = float(runtime.get("tailMeanSeconds", 0))
    cap = template.get("number")
    prefix = template.get("jobNamePrefix") or f"{template['jobQueue']}-{index}"
    at, count = 0.0, 0
    while cap is None or count < int(cap):
        at += rng.expovariate(rate)
        if at >= horizon:
            return
        duration = minimum + (rng.expovariate(1 / tail) if tail > 0 else 0.0)
        failed = rng.random() < float(template.get("failureRate", 0))
        job: dict[str, Any] = {
            "submittedAt": round(at, 3),
            "jobQueue": template["jobQueue"],
            "jobName": f"{prefix}-{count}",
            "instanceType": template.get("instanceType", "ml.m5.large"),
            "instanceCount": int(template.get("instanceCount", 1)),
            "durationSeconds": round(duration, 3),
            "outcome": "Failed" if failed else "Completed",
        }
        for key in ("shareIdentifier", "quotaShareName", "schedulingPriority", "retryStrategy"):
            if template.get(key) is not None:
                job[key] = template[key]
        if failed:
            job["failureReason"] = template.get("failureReason", "AlgorithmError: simulated")
        yield job["submittedAt"], index, count, job
        count += 1


def generate_lines(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The workload's jobs in order of arrival (ties: template order, then job order)."""
    seed = int(spec.get("seed", 0))
    horizon = float(spec.get("horizonSeconds", 86400))
    templates = spec.get("templates")
    if not isinstance(templates, list) or not templates:
        raise SimulationError("spec: templates must be a non-empty list")
    streams = [_template_jobs(i, t, seed, horizon) for i, t in enumerate(templates)]
    for _at, _index, _count, job in heapq.merge(*streams, key=lambda e: e[:3]):
        yield job


def generate(spec_path: Path, output: Path | None) -> int:
    try:
        spec = jsontext.loads(spec_path.read_bytes())
    except (OSError, ValueError) as err:
        raise SimulationError(f"{spec_path}: {err}") from None
    try:
        lines = (jsontext.dumps(job, sort_keys=True) + b"\n" for job in generate_lines(spec))
        if output is None:
            for line in lines:
                sys.stdout.buffer.write(line)
        else:
            with output.open("wb") as out:
                out.writelines(lines)
    except (KeyError, TypeError, ValueError) as err:
        raise SimulationError(f"spec: {err!r}") from None
    return 0

"""``batchd simulate`` throughput and memory: generated workloads of N jobs through the real
runtime on a virtual clock; wall and CPU time, jobs/s and peak RSS (VmHWM) of a process per
size. On a machine shared with other work the CPU time is the steadier figure.

The workload keeps the environment about 75% busy (two fair shares, 1- and 2-instance jobs
of 1 to 11 minutes on 120 instances), so the number of jobs running at once stays the same
whatever the size; the simulated time grows with it.

    python -m bench.simulate                       # 10k and 100k jobs
    python -m bench.simulate --sizes 10000 100000 1000000
    python -m bench.simulate --smoke
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.benchlib.machine import describe_machine
from bench.benchlib.table import fmt, print_table

from batchd.simulate.generate import generate_lines

CAPACITY = 120
POLICY_ARN = "arn:aws:batch:us-east-1:123456789012:scheduling-policy/teams"
# jobs an hour for each share; with the run times below that keeps about 90 instances busy
RATE = 300


def spec(jobs: int) -> dict[str, Any]:
    return {
        "seed": 1,
        "horizonSeconds": 10**9,
        "templates": [
            {
                "jobQueue": "q",
                "shareIdentifier": share,
                "arrivalsPerHour": RATE,
                "runtime": {"minimumSeconds": 60, "tailMeanSeconds": 300},
                "instanceCount": count,
                "failureRate": 0.03,
                "number": jobs // 2,
            }
            for share, count in (("a", 1), ("b", 2))
        ],
    }


def config() -> dict[str, Any]:
    return {
        "serviceEnvironments": [
            {
                "serviceEnvironmentName": "env",
                "serviceEnvironmentType": "SAGEMAKER_TRAINING",
                "state": "ENABLED",
                "capacityLimits": [{"maxCapacity": CAPACITY, "capacityUnit": "NUM_INSTANCES"}],
            }
        ],
        "schedulingPolicies": [
            {
                "name": "teams",
                "fairsharePolicy": {
                    "shareDecaySeconds": 3600,
                    "shareDistribution": [
                        {"shareIdentifier": "a", "weightFactor": 1.0},
                        {"shareIdentifier": "b", "weightFactor": 1.0},
                    ],
                },
            }
        ],
        "jobQueues": [
            {
                "jobQueueName": "q",
                "jobQueueType": "SAGEMAKER_TRAINING",
                "priority": 1,
                "schedulingPolicyArn": POLICY_ARN,
                "serviceEnvironmentOrder": [{"order": 1, "serviceEnvironment": "env"}],
            }
        ],
    }


def child(work: Path) -> None:
    """One simulation in this process; prints its figures as JSON."""
    from batchd.simulate.run import simulate

    began = time.monotonic()
    simulate(work / "config.json", work / "workload.jsonl", work / "out", progress=sys.stderr)
    wall = time.monotonic() - began
    summary = json.loads((work / "out" / "summary.json").read_text())
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "wall": wall,
                "cpu": usage.ru_utime + usage.ru_stime,
                "simulate": summary["wallSeconds"],
                "cycles": summary["cycles"],
                "jobs": summary["jobs"],
                "hours": summary["simulatedSeconds"] / 3600,
                "hwm_mb": int(status["VmHWM"].split()[0]) / 1024,
            }
        )
    )


def measure(size: int, root: Path) -> dict[str, Any]:
    work = root / f"jobs-{size}"
    work.mkdir()
    (work / "config.json").write_text(json.dumps(config()))
    with (work / "workload.jsonl").open("w") as out:
        for job in generate_lines(spec(size)):
            out.write(json.dumps(job, sort_keys=True) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "bench.simulate", "--child", str(work)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return
    sizes = [300] if args.smoke else args.sizes
    print(describe_machine())
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-simulate-") as root:
        for size in sizes:
            found = measure(size, Path(root))
            rows.append(
                [
                    fmt(found["jobs"]),
                    fmt(found["hours"], 1),
                    fmt(found["cycles"]),
                    fmt(found["simulate"], 1),
                    fmt(found["wall"], 1),
                    fmt(found["cpu"], 1),
                    fmt(found["jobs"] / found["wall"]),
                    fmt(found["hwm_mb"]),
                ]
            )
    print_table(
        "batchd simulate: generated workloads, fair share, 120 instances",
        ["jobs", "simulated h", "cycles", "run s", "total s", "CPU s", "jobs/s", "peak RSS MB"],
        rows,
    )


if __name__ == "__main__":
    main()

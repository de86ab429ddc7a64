"""The ``simulate`` and ``export`` subcommands' options; cli.py hands them the parsed args."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parsers", "run_export", "run_simulate"]


def add_parsers(sub: Any) -> None:
    simulate = sub.add_parser(
        "simulate",
        help="what-if: replay a workload through this scheduler under another configuration",
        description="batchd simulate --config C.json --workload W.jsonl --out DIR, or "
        "batchd simulate generate SPEC.json [--output W.jsonl]",
    )
    simulate.add_argument("action", nargs="?", choices=["generate"], help=argparse.SUPPRESS)
    simulate.add_argument("spec", nargs="?", type=Path, help=argparse.SUPPRESS)
    simulate.add_argument("--config", type=Path, help="service environments, policies, queues")
    simulate.add_argument("--workload", type=Path, help="one job a line (JSON)")
    simulate.add_argument("--out", type=Path, help="directory for jobs.jsonl, summary, report")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--compare", type=Path, default=None, help="a second configuration")
    simulate.add_argument(
        "--resolution-seconds",
        type=float,
        default=0.0,
        help="round arrivals and run times up to a multiple of this: coarser is faster "
        "(default 0: exact)",
    )
    simulate.add_argument("--output", "-o", type=Path, default=None, help="generate: file")
    export = sub.add_parser(
        "export", help="record a live server's configuration and finished jobs for simulate"
    )
    export.add_argument("--endpoint-url", required=True)
    export.add_argument("--config", type=Path, required=True)
    export.add_argument("--workload", type=Path, required=True)
    export.add_argument(
        "--since", default=None, help="only jobs created at or after (ISO 8601 or epoch seconds)"
    )
    export.add_argument("--region", default="us-east-1")


def run_simulate(args: argparse.Namespace) -> int:
    from batchd.simulate.engine import SimulationError
    from batchd.simulate.report import MissingMatplotlib

    try:
        if args.action == "generate":
            from batchd.simulate.generate import generate

            if args.spec is None:
                raise SimulationError("simulate generate needs a SPEC.json")
            return int(generate(args.spec, args.output))
        missing = [o for o in ("config", "workload", "out") if getattr(args, o) is None]
        if missing:
            raise SimulationError("simulate needs " + ", ".join(f"--{o}" for o in missing))
        from batchd.simulate.run import simulate

        return int(
            simulate(
                args.config,
                args.workload,
                args.out,
                seed=args.seed,
                compare=args.compare,
                resolution=args.resolution_seconds,
            )
        )
    except (SimulationError, MissingMatplotlib) as err:
        print(f"batchd simulate: {err}", file=sys.stderr)
        return 2


def run_export(args: argparse.Namespace) -> int:
    from batchd.simulate.export import ExportError, export

    try:
        return int(export(args.endpoint_url, args.config, args.workload, args.since, args.region))
    except ExportError as err:
        print(f"batchd export: {err}", file=sys.stderr)
        return 2

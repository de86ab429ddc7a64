"""The README's what-if example (contrib/simulate/) runs as written, at a fifth of its size,
and shows what the README says it shows: weighting share b 4 shortens share a's waits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "contrib" / "simulate"


def _p95(summary: Path) -> dict[str, float]:
    shares = json.loads(summary.read_text())["shares"]
    return {s["shareIdentifier"]: s["waitSeconds"]["p95"] for s in shares}


def test_weighting_b_shortens_a_s_waits(tmp_path: Path) -> None:
    spec = json.loads((EXAMPLE / "spec.json").read_text())
    for template in spec["templates"]:
        template["number"] = 600
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    batchd = [sys.executable, "-m", "batchd.cli"]
    subprocess.run(
        [*batchd, "simulate", "generate", str(tmp_path / "spec.json"), "-o", str(tmp_path / "w")],
        check=True,
        timeout=60,
    )
    subprocess.run(
        [
            *batchd,
            "simulate",
            "--config",
            str(EXAMPLE / "equal.json"),
            "--workload",
            str(tmp_path / "w"),
            "--out",
            str(tmp_path / "out"),
            "--compare",
            str(EXAMPLE / "heavier-b.json"),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    equal, heavier = (
        _p95(tmp_path / "out" / "summary.json"),
        _p95(tmp_path / "out" / "compare" / "summary.json"),
    )
    assert heavier["a"] < equal["a"] / 2
    assert heavier["b"] >= equal["b"]

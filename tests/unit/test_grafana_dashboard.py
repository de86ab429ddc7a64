"""The Grafana dashboard in the repo queries only metrics that ``GET /metrics`` exports."""

from __future__ import annotations

import re
from pathlib import Path

from batchd import jsontext

DASHBOARD = Path(__file__).parents[2] / "contrib" / "grafana" / "batchd.json"
README = Path(__file__).parents[2] / "README.md"


def test_every_metric_the_dashboard_queries_is_documented_in_the_readme() -> None:
    dashboard = jsontext.loads(DASHBOARD.read_bytes())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for e in exprs for name in re.findall(r"\b(batchd_[a-z_]+)", e)}
    base = {re.sub(r"_(bucket|count|sum)$", "", name) for name in used}
    readme = README.read_text()
    assert base and all(f"`{name}`" in readme for name in base), base

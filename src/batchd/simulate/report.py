"""report.html: the plots as PNG images in one page, configurations side by side."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from batchd import jsontext
from batchd.simulate.results import BINS, Results

__all__ = ["MissingMatplotlib", "require_matplotlib", "write_report"]

INSTALL_HINT = "pip install 'batchd[simulate]'"


class MissingMatplotlib(Exception):
    def __init__(self) -> None:
        super().__init__(f"the simulation report needs matplotlib: {INSTALL_HINT}")


def require_matplotlib() -> Any:
    """matplotlib.pyplot on the file-only backend, or MissingMatplotlib."""
    try:
        import matplotlib
    except ImportError:
        raise MissingMatplotlib from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(plt: Any, figure: Any, path: Path) -> str:
    buffer = io.BytesIO()
    # No metadata: the same run draws the same bytes.
    figure.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
    plt.close(figure)
    path.write_bytes(buffer.getvalue())
    return base64.b64encode(buffer.getvalue()).decode()


def _plots(plt: Any, title: str, results: Results, out: Path) -> list[tuple[str, str]]:
    hours = [(i + 0.5) * results.capacity.bin_seconds / 3600 for i in range(BINS)]
    images = []

    figure, axes = plt.subplots(figsize=(7, 4))
    groups = sorted(results.groups.values(), key=lambda g: (g.queue, str(g.share)))
    waits = [[w / 60 for w in g.waits] or [0.0] for g in groups]
    axes.boxplot(waits, showfliers=False)
    axes.set_xticks(range(1, len(groups) + 1), [f"{g.queue}/{g.share or '-'}" for g in groups])
    axes.set_ylabel("wait (minutes)")
    axes.set_title(f"{title}: wait per share")
    figure.autofmt_xdate()
    images.append(("wait per share", _png(plt, figure, out / "waits.png")))

    figure, axes = plt.subplots(figsize=(7, 4))
    labels = sorted(results.capacity.values)
    if labels:
        axes.stackplot(hours, [results.capacity.values[k] for k in labels], labels=labels)
        axes.legend(loc="upper right", fontsize="small")
    axes.set_xlabel("simulated hours")
    axes.set_ylabel("instances in use")
    axes.set_title(f"{title}: capacity use by share")
    images.append(("capacity use by share", _png(plt, figure, out / "capacity.png")))

    figure, axes = plt.subplots(figsize=(7, 4))
    for queue in sorted(results.depth.values):
        axes.plot(hours, results.depth.values[queue], label=queue)
    if results.depth.values:
        axes.legend(loc="upper right", fontsize="small")
    axes.set_xlabel("simulated hours")
    axes.set_ylabel("jobs waiting")
    axes.set_title(f"{title}: queue depth")
    images.append(("queue depth", _png(plt, figure, out / "depth.png")))
    return images


def write_report(path: Path, runs: list[tuple[str, Results, dict[str, Any], Path]]) -> None:
    """One column per configuration: (title, results, summary, directory for its PNGs)."""
    plt = require_matplotlib()
    columns = []
    for title, results, summary, out in runs:
        images = _plots(plt, title, results, out)
        cells = "".join(
            f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(alt)}</figcaption></figure>"
            for alt, data in images
        )
        table = html.escape(jsontext.dumps_pretty(summary["shares"]))
        envs = html.escape(jsontext.dumps_pretty(summary["serviceEnvironments"]))
        columns.append(
            f"<section><h2>{html.escape(title)}</h2>{cells}"
            f"<h3>Shares</h3><pre>{table}</pre><h3>Environments</h3><pre>{envs}</pre></section>"
        )
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>batchd simulation</title>"
        "<style>body{font-family:sans-serif}main{display:flex;gap:2em}"
        "section{flex:1}img{max-width:100%}</style></head><body>"
        f"<h1>batchd simulation</h1><main>{''.join(columns)}</main></body></html>\n",
        encoding="utf-8",
    )

"""Jinja2 environment and the filters the templates share."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jinja2

from batchd import jsontext

__all__ = ["ago", "render", "when"]

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("batchd.api.dashboard", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def when(ms: int | None) -> str:
    if ms is None:
        return "-"
    stamp = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(ms: int | None, now: int) -> str:
    """A duration up to ``now`` in its two largest units: 3h 12m, 45s."""
    if ms is None:
        return "-"
    seconds = max(0, (now - ms) // 1000)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{n}{unit}" for n, unit in parts if n][:2]
    return " ".join(shown) or "0s"


def _count(counted: tuple[int, int]) -> str:
    n, cap = counted
    return f"{cap:,}+" if n > cap else f"{n:,}"


def _pretty(text: str | None) -> str:
    if not text:
        return ""
    try:
        return jsontext.dumps_pretty(jsontext.loads(text))
    except ValueError:
        return text


_ENV.filters["when"] = when
_ENV.globals["ago"] = ago
_ENV.filters["count"] = _count
_ENV.filters["pretty"] = _pretty


def render(template: str, **values: Any) -> bytes:
    return _ENV.get_template(template).render(**values).encode()

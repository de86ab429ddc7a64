"""What ``GET /batchd/v1/health`` says of this replica, for load balancers and for people."""

from __future__ import annotations

from typing import Any

from batchd.operations.context import Context

__all__ = ["health"]


def health(ctx: Context) -> dict[str, Any]:
    """Up; whether this replica schedules (and since when, in which epoch); its database."""
    lease = ctx.store.lease
    leading = lease.epoch is not None
    return {
        "status": "ok",
        "replica": lease.holder,
        "leader": leading,
        "leaderSince": lease.since if leading else None,
        "epoch": lease.epoch,
        "database": ctx.store.db.shown_url,
    }

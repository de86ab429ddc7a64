"""GetJobQueueSnapshot: the runtime's view of a queue's front and utilization, on the wire."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from batchd.domain.arns import Arns
from batchd.operations.common import find_queue
from batchd.operations.context import Context
from batchd.operations.registry import Params, operation
from batchd.scheduling.queue_view import CapacityUsage, QueuePosition, QueueSnapshot


@operation("GetJobQueueSnapshot")
async def snapshot(ctx: Context, params: Params) -> Any:
    queue = await find_queue(ctx, params["jobQueue"])
    found = await ctx.control.snapshot(queue)
    return {} if found is None else _wire(ctx.arns, found)


def _wire(arns: Arns, snap: QueueSnapshot) -> dict[str, Any]:
    now, used = snap.at, snap.utilization
    util: dict[str, Any] = {"totalCapacityUsage": _usage(used.total), "lastUpdatedAt": now}
    if used.fairshare is not None:
        util["fairshareUtilization"] = {
            "activeShareCount": used.fairshare.active_share_count,
            "topCapacityUtilization": [
                {"shareIdentifier": s.name, "capacityUsage": _usage(s.usage)}
                for s in used.fairshare.top
            ],
        }
    out: dict[str, Any] = {
        "frontOfQueue": {"jobs": _positions(arns, snap.front), "lastUpdatedAt": now},
        "queueUtilization": util,
    }
    if snap.quota_share_fronts is not None:
        util["quotaShareUtilization"] = {
            "topCapacityUtilization": [
                {"quotaShareName": s.name, "capacityUsage": _usage(s.usage)}
                for s in used.quota_shares or ()
            ]
        }
        out["frontOfQuotaShares"] = {
            "quotaShares": {
                name: _positions(arns, front) for name, front in snap.quota_share_fronts.items()
            },
            "lastUpdatedAt": now,
        }
    return out


def _positions(arns: Arns, positions: Sequence[QueuePosition]) -> list[dict[str, Any]]:
    return [
        {
            "jobArn": arns.service_job(p.job_id),
            "earliestTimeAtPosition": p.earliest_time_at_position,
        }
        for p in positions
    ]


def _usage(usage: Sequence[CapacityUsage]) -> list[dict[str, Any]]:
    return [{"capacityUnit": u.unit, "quantity": u.quantity} for u in usage]

"""GetJobQueueSnapshot: the runtime's view of a queue's front and utilization."""

from __future__ import annotations

from typing import Any

from batchd.operations.common import find_queue
from batchd.operations.context import Context
from batchd.operations.registry import Params, operation


@operation("GetJobQueueSnapshot")
async def snapshot(ctx: Context, params: Params) -> Any:
    queue = await find_queue(ctx, params["jobQueue"])
    return await ctx.control.snapshot(queue)

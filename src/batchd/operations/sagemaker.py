"""The SageMaker operations clients call on the training jobs batchd creates.

The SageMaker SDK attaches to a finished job with DescribeTrainingJob and ListTags, so these
answer from batchd's own records, in SageMaker's shapes, on the same endpoint as Batch.
"""

from __future__ import annotations

from typing import Any

from batchd.domain.training import TrainingJob
from batchd.errors import NotFound
from batchd.operations.context import Context
from batchd.operations.registry import Params, operation
from batchd.protocol.tokens import decode_token, encode_token

__all__ = ["SAGEMAKER"]

SAGEMAKER = "sagemaker:"


async def _record(ctx: Context, name: str) -> TrainingJob:
    record = await ctx.store.training_jobs.get(name)
    if record is None:
        raise NotFound(f"Requested resource not found: training job {name}")
    return record


def _summary(record: TrainingJob) -> dict[str, Any]:
    return {
        "TrainingJobName": record.training_job_name,
        "TrainingJobArn": record.training_job_arn,
        "CreationTime": record.creation_time,
        "TrainingEndTime": record.training_end_time,
        "LastModifiedTime": record.last_modified_time,
        "TrainingJobStatus": record.training_job_status,
        "SecondaryStatus": record.secondary_status,
    }


@operation(SAGEMAKER + "DescribeTrainingJob")
async def describe_training_job(ctx: Context, params: Params) -> Any:
    record = await _record(ctx, params["TrainingJobName"])
    job = await ctx.store.job_reads.get(record.job_id)
    payload = job.payload if job is not None else {}
    output = dict(payload.get("OutputDataConfig") or {})
    output.setdefault("KmsKeyId", "")  # SDK v2 indexes it; real SageMaker sends ""
    return {
        **payload,
        **_summary(record),
        "OutputDataConfig": output,
        "TrainingStartTime": record.training_start_time,
        "FailureReason": record.failure_reason,
        "ModelArtifacts": {"S3ModelArtifacts": record.model_artifacts or ""},
        "StoppingCondition": payload.get("StoppingCondition") or {"MaxRuntimeInSeconds": 86400},
        "SecondaryStatusTransitions": [
            {
                "Status": each.status,
                "StartTime": each.start_time,
                "EndTime": each.end_time,
                "StatusMessage": each.status_message,
            }
            for each in record.secondary_status_transitions
        ],
        **_seconds(record),
    }


def _seconds(record: TrainingJob) -> dict[str, int]:
    """TrainingTimeInSeconds and BillableTimeInSeconds, once the job has ended: from the start
    of training (or of the attempt, if it never got there) to its end, rounded up."""
    end = record.training_end_time
    if end is None:
        return {}
    start = record.training_start_time or record.creation_time
    seconds = max(0, -(-(end - start) // 1000))
    return {"TrainingTimeInSeconds": seconds, "BillableTimeInSeconds": seconds}


@operation(SAGEMAKER + "ListTrainingJobs")
async def list_training_jobs(ctx: Context, params: Params) -> Any:
    limit = params.get("MaxResults") or 10
    scope = "ListTrainingJobs"
    after = None
    if params.get("NextToken"):
        created, name = decode_token(scope, params["NextToken"], (int, str))
        after = (created, name)
    found = await ctx.store.training_jobs.page(
        limit=limit + 1,
        name_contains=params.get("NameContains"),
        status=params.get("StatusEquals"),
        created_after=_ms(params.get("CreationTimeAfter")),
        created_before=_ms(params.get("CreationTimeBefore")),
        after=after,
    )
    token = None
    if len(found) > limit:
        last = found[limit - 1]
        token = encode_token(scope, [last.creation_time, last.training_job_name])
    return {"TrainingJobSummaries": [_summary(r) for r in found[:limit]], "NextToken": token}


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


@operation(SAGEMAKER + "StopTrainingJob")
async def stop_training_job(ctx: Context, params: Params) -> Any:
    record = await _record(ctx, params["TrainingJobName"])
    if record.training_job_status == "InProgress":
        await ctx.control.stop_training_job(record.training_job_name)
    return {}


@operation(SAGEMAKER + "ListTags")
async def list_tags(ctx: Context, params: Params) -> Any:
    arn = params["ResourceArn"]
    record = await _record(ctx, arn.rsplit("/", 1)[-1])
    job = await ctx.store.job_reads.get(record.job_id)
    tags = job.tags if job is not None else {}
    return {"Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}

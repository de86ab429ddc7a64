"""Attempts in the cluster that no job of batchd's owns any more.

After a restart the runtime adopts every attempt its store says is live; whatever still runs
under batchd's labels beyond those (a delete that failed while batchd was going down, a
store restored from an older backup) holds capacity nobody will ever release. They are found
here, as plain data, and deleted by the backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from batchd.backends.kubernetes.manifests import ATTEMPT, HOST

__all__ = ["orphans"]

Obj = Mapping[str, Any]


def _finished(job: Obj) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or ()
    )


def _being_deleted(job: Obj) -> bool:
    return bool((job.get("metadata") or {}).get("deletionTimestamp"))


def orphans(
    jobs_by_training_job: Mapping[str, Sequence[Obj]], known: Iterable[str]
) -> list[tuple[str, list[str]]]:
    """(attempt id, hosts) of each unknown training job with a Job still running."""
    owned = set(known)
    found = []
    for name, jobs in sorted(jobs_by_training_job.items()):
        live = [j for j in jobs if not _finished(j) and not _being_deleted(j)]
        if name in owned or not live:
            continue
        labels = (live[0].get("metadata") or {}).get("labels") or {}
        hosts = sorted({str((j["metadata"].get("labels") or {}).get(HOST)) for j in jobs})
        found.append((str(labels.get(ATTEMPT)), hosts))
    return found

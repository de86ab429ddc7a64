"""Restart recovery: what a killed server left running is found, stopped and reported.

Choice: *reaping*, not re-adoption. Every host process has the server as its parent, and the
server's event loop is the only reader of its stderr pipe. Once the server is gone, the host's
next write to stderr fails (EPIPE), its exit status goes to init, and a new server cannot
``wait()`` for a process it did not fork. Re-adopting running hosts would need a supervisor
process per host that owns the pipe and writes the exit status to a file; until that exists,
a leftover attempt is stopped and reported LOST, and the runtime retries it per the job's
retryStrategy. Two cases are still recovered without loss: an attempt that reached a terminal
phase before the crash is reported with its recorded outcome (artifacts included), even if the
runtime had not yet seen it.

What is written while an attempt runs (small files, replaced atomically):

- ``<data_dir>/jobs/.unfinished/<name>``: an empty marker, from the moment the attempt's
  directory is reserved until the attempt reaches a terminal phase (it stays when the server is
  killed or closed first). Job names never contain a dot, so it cannot clash with a job.
- ``<job_dir>/attempt.json``: the owner (server pid, its start time and a per-backend id), the
  boot id, the phase and when it was entered, every launched host's pid (its process group and
  session id) with the start time from ``/proc/<pid>/stat`` and its cleanup command, and at the
  end the outcome.

At construction the backend reads the markers (``find_leftovers``). An attempt whose owner still
runs (another server on the same data directory, or an open backend in this process) is left
alone. The others are leftovers: ``reaper.Reaper`` sends their processes SIGTERM, SIGKILL
after ``stop_grace_seconds`` and again until none is left (bounded), runs their cleanup
commands, and reports them LOST with a reason that starts like the runtime's own
("InternalServerError: training job ... was lost; the batchd server restarted while it ran"),
so ``evaluateOnExit`` patterns match both. Until then ``poll`` keeps reporting the recorded
phase: the job keeps its capacity while its old processes may still run, and a retry never
overlaps them.

Which processes are ours (nothing batchd did not start is ever signalled):

- a recorded host leader whose start time equals the recorded one, in the same boot, and which
  still leads its own session and group (alive or a zombie, it holds the group id): the whole
  group is signalled;
- any other process whose environment carries ``TRAINING_JOB_NAME=<name>`` (unique per attempt)
  and, if it has one, a ``SAGEMAKER_BASE_DIR`` inside the attempt's directory: a host spawned just
  before the crash and not recorded yet, a descendant that left its group with ``setsid``, the
  rest of a group whose leader already exited, or a container client.

A single process is signalled through a pidfd opened before its start time is checked again, so
a recycled pid is never hit. Without ``/proc`` (not Linux) nothing can be verified: leftovers are
reported LOST at once and nothing is signalled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchd import jsontext
from batchd.backends.base import Progress, TrainingPhase
from batchd.backends.local.procfs import ProcStat, boot_id, read_stat

__all__ = [
    "Journal",
    "Ledger",
    "Leftover",
    "ProcStat",
    "lost_reason",
    "read_stat",
]

_log = logging.getLogger(__name__)

RECORD_FILE = "attempt.json"
UNFINISHED_DIR = ".unfinished"
_VERSION = 1
_LIVE_OWNERS: set[str] = set()  # ids of the open backends of this process


def lost_reason(name: str, detail: str) -> str:
    """The FailureReason of a leftover attempt (the runtime prefixes Batch's text)."""
    return (
        f"InternalServerError: training job {name} was lost; "
        f"the batchd server restarted while it ran ({detail})"
    )


@dataclass(frozen=True)
class Leftover:
    """An unfinished attempt of a previous server run."""

    name: str
    job_dir: Path
    phase: TrainingPhase
    at_ms: int | None
    leaders: tuple[tuple[int, int | None], ...]  # (pid = pgid, start) of this boot
    cleanups: tuple[tuple[str, ...], ...]
    launched: bool  # whether the record lists any host

    def owns(self, job: str | None, base: str | None) -> bool:
        if job != self.name:
            return False
        root = str(self.job_dir)
        return base is None or base == root or base.startswith(root + os.sep)

    def progress(self) -> Progress:
        """What ``poll`` says while the leftover is being stopped: its recorded phase."""
        return Progress(training_job_name=self.name, phase=self.phase, at_ms=self.at_ms)


def _write_json(path: Path, value: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(jsontext.dumps_pretty(value), encoding="utf-8")
    os.replace(tmp, path)


def _read_record(job_dir: Path) -> dict[str, Any] | None:
    try:
        record = jsontext.loads((job_dir / RECORD_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("version") == _VERSION else None


def _phase(value: Any) -> TrainingPhase | None:
    try:
        return TrainingPhase(value)
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _terminal_progress(name: str, record: Mapping[str, Any]) -> Progress | None:
    phase = _phase(record.get("phase"))
    if phase is None or not phase.terminal:
        return None
    reason, artifacts = record.get("failure_reason"), record.get("model_artifacts")
    return Progress(
        training_job_name=name,
        phase=phase,
        failure_reason=reason if isinstance(reason, str) else None,
        at_ms=_int(record.get("at_ms")),
        model_artifacts=artifacts if isinstance(artifacts, str) else None,
        stopped_by_request=record.get("stopped_by_request") is True,
    )


class Ledger:
    """Where one backend records its attempts, and who that backend is."""

    def __init__(self, data_dir: Path) -> None:
        self.jobs = Path(data_dir) / "jobs"
        self.unfinished = self.jobs / UNFINISHED_DIR
        self.id = uuid.uuid4().hex
        own = read_stat(os.getpid())
        self.owner: dict[str, Any] = {
            "pid": os.getpid(),
            "start": own.start if own else None,
            "id": self.id,
        }
        self.boot = boot_id()
        _LIVE_OWNERS.add(self.id)

    def retire(self) -> None:
        """This backend is closed: a later one in this process may recover its attempts."""
        _LIVE_OWNERS.discard(self.id)

    def journal(self, name: str, job_dir: Path) -> Journal:
        return Journal(self, name, job_dir)

    def settle(self, name: str) -> None:
        """The attempt is over: drop its unfinished marker."""
        with contextlib.suppress(FileNotFoundError):
            (self.unfinished / name).unlink()

    def ended(self, leftover: Leftover, outcome: Progress) -> None:
        """Record how a leftover ended, and drop its marker (errors are only logged)."""
        record = dict(
            _read_record(leftover.job_dir) or {"version": _VERSION, "name": leftover.name}
        )
        record.update(
            phase=outcome.phase.value, at_ms=outcome.at_ms, failure_reason=outcome.failure_reason
        )
        try:
            if leftover.job_dir.is_dir():
                _write_json(leftover.job_dir / RECORD_FILE, record)
            self.settle(leftover.name)
        except OSError as err:
            _log.warning("training job %s: cannot record its end: %s", leftover.name, err)

    def finished(self, name: str) -> Progress | None:
        """The recorded terminal outcome of ``name`` (blocking), if it has one."""
        record = _read_record(self.jobs / name)
        return None if record is None else _terminal_progress(name, record)

    def find_leftovers(self) -> tuple[list[Leftover], list[Progress]]:
        """Unfinished attempts of dead owners, and attempts that ended but kept their marker.

        Blocking; reads the markers and the records they point to.
        """
        try:
            names = sorted(entry.name for entry in os.scandir(self.unfinished))
        except (FileNotFoundError, NotADirectoryError):
            return [], []
        leftovers: list[Leftover] = []
        ended: list[Progress] = []
        for name in names:
            job_dir = self.jobs / name
            record = _read_record(job_dir) or {}
            if self._owner_alive(record):
                _log.warning("training job %s belongs to a running batchd; left alone", name)
                continue
            outcome = _terminal_progress(name, record)
            if outcome is not None:
                ended.append(outcome)
                self.settle(name)
                continue
            leftovers.append(self._leftover(name, job_dir, record))
        return leftovers, ended

    def _owner_alive(self, record: Mapping[str, Any]) -> bool:
        """Whether the backend that wrote ``record`` still runs (then it is not a leftover)."""
        owner = record.get("owner")
        if not isinstance(owner, dict):
            return False
        if owner.get("pid") == os.getpid():
            return owner.get("id") in _LIVE_OWNERS
        pid, start = _int(owner.get("pid")), _int(owner.get("start"))
        if pid is None or start is None or record.get("boot_id") != self.boot:
            return False
        stat = read_stat(pid)
        return stat is not None and not stat.zombie and stat.start == start

    def _leftover(self, name: str, job_dir: Path, record: Mapping[str, Any]) -> Leftover:
        hosts = record.get("hosts")
        hosts = [h for h in hosts if isinstance(h, dict)] if isinstance(hosts, list) else []
        same_boot = self.boot is not None and record.get("boot_id") == self.boot
        leaders: list[tuple[int, int | None]] = []
        cleanups: list[tuple[str, ...]] = []
        for host in hosts:
            pid = _int(host.get("pid"))
            if same_boot and pid is not None and pid > 1:
                leaders.append((pid, _int(host.get("start"))))
            cleanup = host.get("cleanup")
            if isinstance(cleanup, list) and cleanup and all(isinstance(a, str) for a in cleanup):
                cleanups.append(tuple(cleanup))
        phase = _phase(record.get("phase"))
        return Leftover(
            name=name,
            job_dir=job_dir,
            phase=phase if phase is not None and not phase.terminal else TrainingPhase.PENDING,
            at_ms=_int(record.get("at_ms")),
            leaders=tuple(leaders),
            cleanups=tuple(cleanups),
            launched=bool(hosts),
        )


class Journal:
    """One attempt's record, rewritten on every change. Write errors are logged, not raised:
    an attempt is not failed because its recovery record could not be kept."""

    def __init__(self, ledger: Ledger, name: str, job_dir: Path) -> None:
        self._ledger = ledger
        self._name = name
        self._path = job_dir / RECORD_FILE
        self._record: dict[str, Any] = {
            "version": _VERSION,
            "name": name,
            "owner": ledger.owner,
            "boot_id": ledger.boot,
            "phase": TrainingPhase.PENDING.value,
            "at_ms": None,
            "hosts": [],
        }
        self._warned = False

    def open(self, at_ms: int) -> None:
        """Mark the attempt unfinished and write its first record (blocking; the job
        directory exists)."""
        self._record["at_ms"] = at_ms
        try:
            self._ledger.unfinished.mkdir(parents=True, exist_ok=True)
            (self._ledger.unfinished / self._name).touch()
        except OSError as err:
            self._failed(err)
        self._write()

    def phase(self, progress: Progress) -> None:
        """Record the attempt's phase; a terminal one ends the record and the marker."""
        self._record.update(
            phase=progress.phase.value,
            at_ms=progress.at_ms,
            failure_reason=progress.failure_reason,
            model_artifacts=progress.model_artifacts,
            stopped_by_request=progress.stopped_by_request,
        )
        self._write()
        if progress.phase.terminal:
            try:
                self._ledger.settle(self._name)
            except OSError as err:
                self._failed(err)

    def launched(self, host: str, pid: int, cleanup: Sequence[str]) -> None:
        """Record a host's process (right after it was spawned)."""
        stat = read_stat(pid)
        self._record["hosts"].append(
            {
                "host": host,
                "pid": pid,
                "start": stat.start if stat is not None else None,
                "cleanup": list(cleanup),
            }
        )
        self._write()

    def _write(self) -> None:
        try:
            _write_json(self._path, self._record)
        except OSError as err:
            self._failed(err)

    def _failed(self, err: OSError) -> None:
        if not self._warned:
            self._warned = True
            _log.warning("training job %s: cannot keep its recovery record: %s", self._name, err)

"""What ``/proc`` says about processes a batchd server started: who they are, whether they
still lead their group, and signalling them without ever hitting a reused pid.

Linux only; elsewhere ``proc_available()`` is False and recovery signals nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a type only: recovery imports this module
    from batchd.backends.local.recovery import Leftover

_PROC = Path("/proc")


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` recovery needs; ``start`` is in clock ticks."""

    pid: int
    state: str
    pgid: int
    sid: int
    start: int

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")


def read_stat(pid: int) -> ProcStat | None:
    """The process's stat line, or None if there is no such process (or no ``/proc``)."""
    try:
        raw = (_PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    try:
        fields = raw.rsplit(b")", 1)[1].split()
        return ProcStat(pid, fields[0].decode(), int(fields[2]), int(fields[3]), int(fields[19]))
    except (IndexError, ValueError):
        return None


def proc_available() -> bool:
    return (_PROC / "self" / "stat").exists()


def boot_id() -> str | None:
    try:
        return (_PROC / "sys" / "kernel" / "random" / "boot_id").read_text().strip() or None
    except OSError:
        return None


def _job_marks(pid: int) -> tuple[str | None, str | None]:
    """``TRAINING_JOB_NAME`` and ``SAGEMAKER_BASE_DIR`` of a process's environment, if any."""
    try:
        data = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:  # gone, or another user's: not ours to judge
        return None, None
    if b"TRAINING_JOB_NAME=" not in data:
        return None, None
    name = base = None
    for entry in data.split(b"\0"):
        if entry.startswith(b"TRAINING_JOB_NAME="):
            name = entry.partition(b"=")[2].decode("utf-8", "replace")
        elif entry.startswith(b"SAGEMAKER_BASE_DIR="):
            base = entry.partition(b"=")[2].decode("utf-8", "replace")
    return name, base


@dataclass(frozen=True)
class _Process:
    stat: ProcStat
    job: str | None
    base: str | None


class ProcessTable:
    """A snapshot of this machine's live (non-zombie) processes with their job marks."""

    def __init__(self, processes: Sequence[_Process]) -> None:
        self.processes = processes

    @classmethod
    def scan(cls, marks: dict[tuple[int, int], tuple[str | None, str | None]]) -> ProcessTable:
        """Read ``/proc`` (blocking). ``marks`` caches environments by (pid, start time)."""
        own = os.getpid()
        found: list[_Process] = []
        try:
            entries = os.listdir(_PROC)
        except OSError:
            return cls(())
        for entry in entries:
            if not entry.isdigit() or int(entry) == own:
                continue
            stat = read_stat(int(entry))
            if stat is None or stat.zombie:
                continue
            key = (stat.pid, stat.start)
            if key not in marks:
                marks[key] = _job_marks(stat.pid)
            job, base = marks[key]
            found.append(_Process(stat, job, base))
        return cls(found)

    def of(self, leftover: Leftover) -> Targets:
        """The processes of ``leftover`` that are still alive."""
        groups = tuple(
            (pgid, start)
            for pgid, start in leftover.leaders
            if start is not None and leads(pgid, start)
        )
        in_groups = {pgid for pgid, _ in groups}
        members: dict[int, int] = {}
        singles: dict[int, int] = {}
        for process in self.processes:
            stat = process.stat
            if stat.pgid in in_groups:
                members[stat.pid] = stat.start
            elif leftover.owns(process.job, process.base):
                singles[stat.pid] = stat.start
        return Targets(groups, members, singles)


def leads(pgid: int, start: int) -> bool:
    """Whether the recorded leader still holds its group: same process, own session."""
    stat = read_stat(pgid)
    return stat is not None and stat.start == start and stat.pgid == pgid and stat.sid == pgid


def signal_process(pid: int, start: int, signum: int) -> None:
    """Signal ``pid`` only if it is still the process that started at ``start``."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:  # no pidfds: the check and the kill are not atomic, but close together
        stat = read_stat(pid)
        if stat is not None and stat.start == start:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)
        return
    try:
        fd = opener(pid)
    except OSError:
        return
    try:
        stat = read_stat(pid)
        if stat is not None and stat.start == start:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                signal.pidfd_send_signal(fd, signum)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Targets:
    groups: tuple[tuple[int, int], ...]  # verified (pgid, leader start)
    members: Mapping[int, int]  # pid -> start, in a verified group
    singles: Mapping[int, int]  # pid -> start, matched by environment only

    def __bool__(self) -> bool:
        return bool(self.members or self.singles)

    @property
    def pids(self) -> set[int]:
        return set(self.members) | set(self.singles)

    def send(self, signum: int) -> None:
        for pgid, start in self.groups:
            if leads(pgid, start):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signum)
        for pid, start in self.singles.items():
            signal_process(pid, start, signum)

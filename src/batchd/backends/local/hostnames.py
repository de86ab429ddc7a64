"""Making ``algo-1`` … ``algo-N`` resolve on this machine, so distributed code can rendezvous.

Options weighed:

- ``SM_STUDIO_LOCAL_MODE=true`` only skips the toolkit's 15-minute ``gethostbyname`` wait; user
  code that connects to ``algo-2`` still fails. ``SM_HOSTS``/``MASTER_ADDR`` are set by the
  toolkit and frameworks themselves, so ours would be overwritten.
- ``HOSTALIASES`` only applies to DNS lookups, after ``/etc/hosts``; it aliases a name to another
  name that then needs DNS, so it does not help offline.
- An ``/etc/hosts`` entry works for every program (Python, C++ rendezvous in NCCL/gloo, ``ping``)
  because glibc reads the file on each lookup.

Choice: add one line per host to the hosts file (``/etc/hosts`` by default), under an advisory
``flock``, only for names it does not list yet, and never remove them: ``algo-N`` maps to the
loopback address ``127.0.0.N`` on Linux (where all of ``127/8`` is local), so each host has its own
address and the same port can be bound on every host, as on SageMaker; elsewhere all map to
``127.0.0.1``. Lines carry a ``# batchd`` comment. Concurrent jobs share these names (two jobs
both have an ``algo-1``), so concurrent multi-host jobs must not use the same fixed port.

Degrading safely: when the file cannot be written (not root, read-only file system) or is not
configured, the job still runs, with ``SM_STUDIO_LOCAL_MODE=true`` so the toolkit does not hang,
a note in each host's log, and ``BATCHD_HOST_ADDRESSES`` (JSON ``{"algo-1": "127.0.0.1", ...}``,
always exported) for code that wants to map names itself. Single-host jobs are unaffected;
multi-host code that connects by name then fails fast with a resolution error.
"""

from __future__ import annotations

import fcntl
import ipaddress
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

__all__ = ["HostsFile", "loopback_address"]

_MARKER = "# batchd"


def loopback_address(host: str) -> str:
    """``algo-N`` → ``127.0.0.N`` (continuing into ``127.0.1.0`` …) on Linux, else 127.0.0.1."""
    number = host.rsplit("-", 1)[-1]
    if not sys.platform.startswith("linux") or not number.isdigit():
        return "127.0.0.1"
    return str(ipaddress.IPv4Address("127.0.0.0") + int(number))


class HostsFile:
    """Adds missing host names to a hosts file; remembers the names already confirmed."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def ensure(self, hosts: Sequence[str]) -> str | None:
        """Make ``hosts`` resolvable (blocking). Return None on success, else why not."""
        if self.path is None:
            return "no hosts file is configured for the local backend"
        with self._lock:
            if self._known.issuperset(hosts):
                return None
            try:
                if not _names(self.path.read_text(encoding="utf-8")).issuperset(hosts):
                    self._add_missing(self.path, hosts)
            except OSError as err:
                return f"cannot add the host names to {self.path}: {err}"
            self._known.update(hosts)
            return None

    def _add_missing(self, path: Path, hosts: Sequence[str]) -> None:
        with path.open("r+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                text = handle.read()
                listed = _names(text)
                missing = [host for host in hosts if host not in listed]
                if not missing:
                    return
                lines = "".join(f"{loopback_address(h)}\t{h}\t{_MARKER}\n" for h in missing)
                handle.seek(0, 2)
                handle.write(("" if not text or text.endswith("\n") else "\n") + lines)
                handle.flush()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _names(text: str) -> set[str]:
    names: set[str] = set()
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        names.update(fields[1:])
    return names

"""The per-attempt SageMaker tree: one base directory per host, its config files, its logs.

```
<data_dir>/jobs/<training_job_name>/
    algo-1/                      SAGEMAKER_BASE_DIR of algo-1 (/opt/ml inside a container)
        input/config/hyperparameters.json   the payload's HyperParameters, verbatim
        input/config/inputdataconfig.json   one entry per channel
        input/config/resourceconfig.json    this host's view of the cluster
        input/data/<channel>/               staged channel data
        model/  output/data/  output/intermediate/  code/  checkpoints/
    algo-2/ ...
    logs/algo-1.log ...          stdout and stderr of each host, plus [batchd] notes
    scratch/                     downloads and archives being built (not visible to the job)
```

Job and channel names are validated in ``payload`` before they become path segments, so
nothing here can leave the job directory.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchd import jsontext
from batchd.backends.base import LogEvent
from batchd.backends.local.payload import (
    Cluster,
    InvalidRequest,
    TrainingRequest,
    check_job_name,
)
from batchd.backends.local.stamped import StampedLog, read_stamped

__all__ = [
    "Workspace",
    "attempt_log_hosts",
    "build_host",
    "host_order",
    "loopback_interface",
    "read_attempt_events",
    "read_attempt_log",
    "resource_config",
]

_HOST_DIRS = (
    "input/config",
    "input/data",
    "model",
    "output/data",
    "output/intermediate",
    "code",
    "checkpoints",
)


def loopback_interface() -> str:
    """The interface local hosts talk over (they all resolve to loopback addresses)."""
    return "lo" if sys.platform.startswith("linux") else "lo0"


@dataclass(frozen=True)
class Workspace:
    """Paths of one attempt's tree."""

    job_dir: Path

    @classmethod
    def of(cls, data_dir: Path, training_job_name: str) -> Workspace:
        return cls(Path(data_dir) / "jobs" / check_job_name(training_job_name))

    @classmethod
    def reserve(cls, data_dir: Path, training_job_name: str) -> Workspace:
        """Create the job directory; a name used before is ``ResourceInUse``."""
        workspace = cls.of(data_dir, training_job_name)
        workspace.job_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            workspace.job_dir.mkdir()
        except FileExistsError as err:
            raise InvalidRequest(
                f"Training job names must be unique: {training_job_name} already exists",
                code="ResourceInUse",
            ) from err
        (workspace.job_dir / "logs").mkdir()
        return workspace

    def base(self, host: str) -> Path:
        return self.job_dir / host

    def channel_dir(self, host: str, channel: str) -> Path:
        return self.base(host) / "input" / "data" / channel

    def failure_file(self, host: str) -> Path:
        return self.base(host) / "output" / "failure"

    def log_path(self, host: str) -> Path:
        return self.job_dir / "logs" / f"{host}.log"

    @property
    def scratch(self) -> Path:
        return self.job_dir / "scratch"

    def build(self, request: TrainingRequest) -> None:
        """Create every host's tree and write its three config files (blocking)."""
        self.scratch.mkdir(exist_ok=True)
        for host in request.cluster.hosts:
            build_host(self.base(host), request, host, loopback_interface())

    def note(self, host: str, now_ms: int, text: str) -> None:
        """Append a platform message to a host's log (blocking, small; before its process
        starts, so the process's output cannot interleave)."""
        log = StampedLog(self.log_path(host))
        try:
            log.write_lines(f"[batchd] {text}\n".encode(), now_ms)
        finally:
            log.close()


def build_host(base: Path, request: TrainingRequest, host: str, network_interface: str) -> None:
    """Create one host's tree under ``base`` (its SAGEMAKER_BASE_DIR) and write its three
    config files (blocking); shared with the Kubernetes pods' ``stage`` step."""
    for sub in _HOST_DIRS:
        (base / sub).mkdir(parents=True, exist_ok=True)
    for channel in request.channels:
        (base / "input" / "data" / channel.name).mkdir(exist_ok=True)
    config = base / "input" / "config"
    data_config = {channel.name: channel.data_config() for channel in request.channels}
    _write_json(config / "hyperparameters.json", request.hyperparameters)
    _write_json(config / "inputdataconfig.json", data_config)
    resource = resource_config(request.cluster, host, network_interface)
    _write_json(config / "resourceconfig.json", resource)


def resource_config(cluster: Cluster, host: str, network_interface: str) -> dict[str, Any]:
    """``resourceconfig.json`` for ``host``: SageMaker's current keys plus the toolkit's
    local-mode ``current_instance_group``."""
    group = cluster.group_of(host)
    return {
        "current_host": host,
        "current_instance_type": group.instance_type,
        "current_group_name": group.name,
        "current_instance_group": group.name,
        "hosts": list(cluster.hosts),
        "instance_groups": [
            {
                "instance_group_name": each.name,
                "instance_type": each.instance_type,
                "hosts": list(each.hosts),
            }
            for each in cluster.groups
        ],
        "network_interface_name": network_interface,
    }


def _write_json(path: Path, value: Any) -> None:
    path.write_text(jsontext.dumps_pretty(value), encoding="utf-8")


def attempt_log_hosts(data_dir: Path, training_job_name: str) -> list[str]:
    """The hosts of one attempt with a log file, ``algo-1`` first (blocking).

    Empty if there are none yet, or the name is not one a training job can have.
    """
    try:
        logs = Workspace.of(data_dir, training_job_name).job_dir / "logs"
        names = [entry.name for entry in os.scandir(logs) if entry.name.endswith(".log")]
    except (InvalidRequest, FileNotFoundError):
        return []
    return sorted((name.removesuffix(".log") for name in names), key=host_order)


def read_attempt_log(
    data_dir: Path, training_job_name: str, host: str, offset: int, limit: int
) -> bytes:
    """At most ``limit`` bytes of ``host``'s log from ``offset`` (blocking); empty when there is
    no such log. ``host`` is checked before it becomes a path segment."""
    if not _HOST.match(host):
        return b""
    try:
        path = Workspace.of(data_dir, training_job_name).log_path(host)
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read(limit)
    except (InvalidRequest, FileNotFoundError):
        return b""


def read_attempt_events(
    data_dir: Path, training_job_name: str, host: str, start: int, limit: int
) -> tuple[list[LogEvent], int]:
    """Events of ``host``'s log with the time each line was written (blocking)."""
    if not _HOST.match(host):
        return [], 0
    try:
        path = Workspace.of(data_dir, training_job_name).log_path(host)
    except InvalidRequest:
        return [], 0
    events, total = read_stamped(path, start, limit)
    return [LogEvent(each.timestamp, each.message) for each in events], total


_HOST = re.compile(r"^algo-[1-9][0-9]{0,5}$")


def host_order(host: str) -> tuple[int, str]:
    """Sort key: ``algo-2`` before ``algo-10``."""
    number = host.removeprefix("algo-")
    return (int(number), host) if number.isdigit() else (sys.maxsize, host)

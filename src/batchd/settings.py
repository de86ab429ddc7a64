"""Server configuration, validated once at start."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from batchd import jsontext
from batchd.errors import StartupError

__all__ = ["DEFAULTS", "Settings", "default_data_dir"]

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "batchd"


@dataclass(frozen=True)
class Settings:
    """The server's configuration. Its defaults are written here only: ``batchd serve`` leaves
    out what it was not given, and its help shows them from ``DEFAULTS``."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = field(default_factory=default_data_dir)
    db_url: str | None = None
    region: str = "us-east-1"
    account_id: str = "123456789012"
    backend: str = "local"
    # How often the runtime ticks when nothing wakes it (backend polls, timeouts).
    tick_seconds: float = 1.0
    stop_grace_seconds: float = 120.0
    image_commands: dict[str, tuple[str, ...]] = field(default_factory=dict)
    max_submitted_per_queue: int = 1_000_000
    # Access key id -> secret. Empty: requests are not authenticated (local use).
    access_keys: dict[str, str] = field(default_factory=dict)
    # Local backend: an S3-compatible endpoint for s3:// URIs (default: <data_dir>/s3), a
    # container runtime for image-only payloads, and the hosts file that names algo-N.
    s3_endpoint_url: str | None = None
    container_runtime: str | None = None
    hosts_file: Path | None = Path("/etc/hosts")
    # Kubernetes backend: how to reach the cluster (default: in-cluster, else ~/.kube/config),
    # the namespace attempts run in, the image of batchd's own steps in each pod, the table of
    # instance types, and how long a pod may stay unschedulable before it is a capacity error.
    kubeconfig: Path | None = None
    kubernetes_namespace: str | None = None
    kubernetes_batchd_image: str = "batchd:0.1.0"
    kubernetes_instance_types: Path | None = None
    kubernetes_unschedulable_seconds: float = 300.0
    # One log line per request (operation, status, latency, request id, access key id).
    request_log: bool = False

    def __post_init__(self) -> None:
        if not re.fullmatch(r"\d{12}", self.account_id):
            raise StartupError(
                f"--account-id must be 12 digits (clients parse ARNs with that rule), "
                f"got {self.account_id!r}"
            )
        if not _REGION.match(self.region):
            raise StartupError(f"--region {self.region!r} is not a region name like us-east-1")
        if self.backend not in ("local", "fake", "kubernetes"):
            raise StartupError(f"--backend must be local, fake or kubernetes, got {self.backend!r}")
        if not self.kubernetes_unschedulable_seconds > 0:
            raise StartupError(
                "--kubernetes-unschedulable-seconds must be positive, got "
                f"{self.kubernetes_unschedulable_seconds}"
            )
        if not 0 <= self.port <= 65535:
            raise StartupError(f"--port must be between 0 and 65535, got {self.port}")
        if not self.tick_seconds > 0:  # also refuses NaN
            raise StartupError(f"--tick-seconds must be positive, got {self.tick_seconds}")
        if not self.stop_grace_seconds >= 0:
            raise StartupError(
                f"--stop-grace-seconds must not be negative, got {self.stop_grace_seconds}"
            )
        if self.max_submitted_per_queue < 1:
            raise StartupError(
                f"--max-submitted-per-queue must be at least 1, got {self.max_submitted_per_queue}"
            )

    def to_json(self) -> str:
        """The settings for a worker process (``--workers``), as JSON."""
        data = dataclasses.asdict(self)
        data["data_dir"] = str(self.data_dir)
        for name in _PATHS:
            value = getattr(self, name)
            data[name] = None if value is None else str(value)
        return jsontext.dumps_text(data)

    @classmethod
    def from_json(cls, text: str | bytes) -> Settings:
        data = jsontext.loads(text)
        data["data_dir"] = Path(data["data_dir"])
        for name in _PATHS:
            data[name] = None if data[name] is None else Path(data[name])
        data["image_commands"] = {k: tuple(v) for k, v in data["image_commands"].items()}
        return cls(**data)

    @property
    def listens_beyond_loopback(self) -> bool:
        return self.host not in ("127.0.0.1", "localhost", "::1") and not self.host.startswith(
            "127."
        )

    @property
    def uses_kubernetes(self) -> bool:
        """Whether this server has the kubernetes backend (the default, or configured for
        environments tagged ``batchd:backend=kubernetes``)."""
        return (
            self.backend == "kubernetes"
            or self.kubeconfig is not None
            or bool(self.kubernetes_namespace)
        )

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'batchd.db'}"


_PATHS = ("hosts_file", "kubeconfig", "kubernetes_instance_types")
DEFAULTS = Settings()  # what ``batchd serve`` runs with when given no option

"""What a test holds: the server, its clock, scripted outcomes, and the AWS environment that
points the code under test at it. The pytest fixture ``batchd`` and ``mock_batchd()`` (a
context manager and decorator, for unittest and scripts) hand out the same ``Batchd``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from batchd.backends.fake import FakeRun
from batchd.testing.scripting import Rule
from batchd.testing.server import BatchdServer, shared_server

__all__ = ["Batchd", "mock_batchd"]

P = ParamSpec("P")
R = TypeVar("R")

ENDPOINT_VARIABLES = (
    "AWS_ENDPOINT_URL_BATCH",
    "AWS_ENDPOINT_URL_SAGEMAKER",
    "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
)
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class Batchd:
    """A fresh, empty batchd for one test. Start it (``with``, ``@``, ``start()``) and the
    AWS_ENDPOINT_URL_* variables of Batch, SageMaker and CloudWatch Logs point at it, with
    dummy credentials and a region unless already set; stop it and they are as before."""

    def __init__(self, realtime: bool = False, server: BatchdServer | None = None) -> None:
        self.realtime = realtime if server is None else server.realtime
        self._server = server
        self._saved: dict[str, str | None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Batchd:
        if self._saved is not None:
            raise RuntimeError("this batchd is already started")
        if self._server is None or not self._server.running:
            self._server = shared_server(self.realtime)
        self._server.reset()
        self._saved = _point_environment_at(self._server)
        return self

    def stop(self) -> None:
        saved, self._saved = self._saved, None
        if saved is not None:
            _restore(saved)

    def __enter__(self) -> Batchd:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __call__(self, test: Callable[P, R]) -> Callable[P, R]:
        """As a decorator: the function runs against a fresh batchd (this handle)."""

        @functools.wraps(test)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with self:
                return test(*args, **kwargs)

        return wrapper

    @property
    def server(self) -> BatchdServer:
        if self._server is None or self._saved is None:
            raise RuntimeError("start this batchd first (with, a decorator, or start())")
        return self._server

    # -- the server --------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        return self.server.endpoint_url

    @property
    def region(self) -> str:
        return os.environ.get("AWS_DEFAULT_REGION") or self.server.region

    def client(self, service: str = "batch", **options: Any) -> Any:
        """A boto3 client of ``service`` (batch, sagemaker, logs) for this server."""
        import boto3

        options.setdefault("region_name", self.region)
        return boto3.client(service, endpoint_url=self.endpoint_url, **options)

    # -- time --------------------------------------------------------------------------------

    def advance(self, seconds: float = 0.0) -> int:
        """Move batchd's clock ``seconds`` forward, running everything due on the way
        (admission, dispatch, completions, retries, timeouts, time limits, share decay),
        and return once all of it is done. ``advance()`` settles the present: a job just
        submitted is admitted and dispatched. Returns the scheduling cycles run. On the wall
        clock (``realtime``) it sleeps instead."""
        return self.server.advance(seconds)

    def step(self) -> bool:
        """Exactly one scheduling cycle now, to see each status on the way; whether it changed
        anything."""
        return self.server.step()

    def reset(self) -> None:
        """Empty the server again: no resources, no jobs, no scripted outcomes."""
        self.server.reset()

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.server.now_ms() / 1000, UTC)

    # -- scripted outcomes -------------------------------------------------------------------

    def script(
        self,
        outcome: FakeRun,
        *,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        times: int | None = 1,
    ) -> Rule:
        """The next ``times`` training jobs (None: all) whose job name or TrainingJobName
        starts with ``name`` and that carry ``tags`` do ``outcome`` (see ``Outcome``), whatever
        their payload says. Rules are tried in the order they were added."""
        return self.server.rules.add(Rule(outcome, name, dict(tags or {}), times))


def mock_batchd(realtime: bool = False) -> Batchd:
    """A fresh batchd, as a context manager (``with mock_batchd() as batchd``), a decorator
    (``@mock_batchd()``), or by hand (``start()`` / ``stop()``)."""
    return Batchd(realtime=realtime)


def _point_environment_at(server: BatchdServer) -> dict[str, str | None]:
    wanted = dict.fromkeys(ENDPOINT_VARIABLES, server.endpoint_url)
    if not os.environ.get("AWS_ACCESS_KEY_ID"):
        wanted.update(DUMMY_CREDENTIALS)
    if not (os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")):
        wanted["AWS_DEFAULT_REGION"] = server.region
    saved = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    return saved


def _restore(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value

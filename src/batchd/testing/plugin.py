"""The pytest plugin (entry point ``pytest11``): the ``batchd`` fixture.

Nothing happens until a test asks for ``batchd``: the server starts on first use and serves
the rest of the session; each test gets it empty. Imports are deferred so that a test suite
that never asks pays nothing for the plugin being installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from batchd.testing.handle import Batchd

__all__ = ["batchd"]

_MARKER = "batchd(realtime=False): options of the batchd fixture for this test"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("batchd")
    group.addoption(
        "--batchd-realtime",
        action="store_true",
        default=False,
        help="run the batchd fixture on the wall clock instead of a virtual one",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER)


def pytest_sessionfinish(session: pytest.Session) -> None:
    import sys

    # Only if a test started one: importing the server module is what a server needs.
    server = sys.modules.get("batchd.testing.server")
    if server is not None:
        server.stop_shared()


@pytest.fixture
def batchd(request: pytest.FixtureRequest) -> Iterator[Batchd]:
    """A real batchd, empty, with AWS_ENDPOINT_URL_BATCH / _SAGEMAKER / _CLOUDWATCH_LOGS
    pointing at it. Time stands still until ``batchd.advance(seconds)``; mark a test
    ``@pytest.mark.batchd(realtime=True)`` (or pass ``--batchd-realtime``) for the wall
    clock."""
    from batchd.testing.handle import Batchd

    marker = request.node.get_closest_marker("batchd")
    realtime = bool(request.config.getoption("--batchd-realtime"))
    if marker is not None:
        realtime = bool(marker.kwargs.get("realtime", realtime))
    with Batchd(realtime=realtime) as handle:
        yield handle

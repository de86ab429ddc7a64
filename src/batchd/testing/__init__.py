"""batchd inside your own tests: a real batchd on a virtual clock, with scripted outcomes.

pytest: the ``batchd`` fixture (installed with batchd). unittest and scripts:
``with mock_batchd() as batchd: ...`` or ``@mock_batchd()``. See README "Testing your code
against batchd".

Names load on first use: pytest imports this package for its plugin in every session, and a
session that never asks for batchd should not pay for a server's imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchd.backends.fake import FakeRun
    from batchd.testing.handle import Batchd, mock_batchd
    from batchd.testing.scripting import Outcome, Rule
    from batchd.testing.server import BatchdServer

__all__ = ["Batchd", "BatchdServer", "FakeRun", "Outcome", "Rule", "mock_batchd"]

_HOMES = {
    "Batchd": "batchd.testing.handle",
    "mock_batchd": "batchd.testing.handle",
    "Outcome": "batchd.testing.scripting",
    "Rule": "batchd.testing.scripting",
    "BatchdServer": "batchd.testing.server",
    "FakeRun": "batchd.backends.fake",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'batchd.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)

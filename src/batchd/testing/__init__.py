"""batchd inside your own tests: a real batchd on a virtual clock, with scripted outcomes.

pytest: the ``batchd`` fixture (installed with batchd). unittest and scripts:
``with mock_batchd() as batchd: ...`` or ``@mock_batchd()``. See README "Testing your code
against batchd".
"""

from __future__ import annotations

from batchd.backends.fake import FakeRun
from batchd.testing.handle import Batchd, mock_batchd
from batchd.testing.scripting import Outcome, Rule
from batchd.testing.server import BatchdServer

__all__ = ["Batchd", "BatchdServer", "FakeRun", "Outcome", "Rule", "mock_batchd"]

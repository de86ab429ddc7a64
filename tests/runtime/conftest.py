from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import Harness


@pytest.fixture
def h(db_url: str, tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(db_url)
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture
def fifo(h: Harness) -> str:
    h.environment("env", {"NUM_INSTANCES": 5})
    h.queue("q", "env")
    return "q"

"""Fixtures shared by every suite: real databases and a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import fresh_database
from tests.support.kube import kube_cluster, kube_namespace
from tests.support.server import RunningServer, serve, settings_for

__all__ = ["kube_cluster", "kube_namespace"]  # a real Kubernetes cluster, for any suite


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database(request.param, tmp_path)


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[RunningServer]:
    with serve(settings_for(db_url, tmp_path / "data")) as running:
        yield running


@pytest.fixture
def batch(server: RunningServer) -> Any:
    return server.client()

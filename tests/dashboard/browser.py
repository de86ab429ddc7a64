"""Playwright driving Debian's chromium (it cannot download its own browser here)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALL = "apt-get install -y chromium (and pip install -e '.[test]' for playwright)"


def require_browser() -> None:
    """Skip without chromium and playwright, except in CI, where .ci/run installs both."""
    missing = [] if os.path.exists(CHROMIUM) or shutil.which("chromium") else ["chromium"]
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright")
    if missing:
        message = f"needs {' and '.join(missing)}: {INSTALL}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
        browser = playwright.chromium.launch(executable_path=path, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()

"""``batchd serve`` on a database it cannot open says so in one line and exits 3."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.process import free_port


def _serve(tmp_path: Path, db_url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "batchd.cli", "serve", "--backend", "fake"]
    argv += ["--data-dir", str(tmp_path / "data"), "--port", str(free_port()), "--db", db_url]
    return subprocess.run([*argv, *extra], check=False, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_refused_connection_is_one_line_naming_the_database(tmp_path: Path, workers: str) -> None:
    closed = free_port()  # nothing listens there
    done = _serve(
        tmp_path, f"postgresql://batchd:s3cret@127.0.0.1:{closed}/jobs", "--workers", workers
    )
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    assert (
        f"cannot open the database postgresql://batchd:***@127.0.0.1:{closed}/jobs" in done.stderr
    )
    assert "Connect" in done.stderr and "database server is running" in done.stderr
    assert "s3cret" not in done.stderr


def test_a_sqlite_file_in_a_missing_directory_says_which(tmp_path: Path) -> None:
    done = _serve(tmp_path, f"sqlite:///{tmp_path / 'missing' / 'batchd.db'}")
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    assert "cannot open the database sqlite:///" in done.stderr
    assert "directory exists and is writable" in done.stderr

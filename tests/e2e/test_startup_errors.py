"""``batchd serve`` says in one line why it cannot start: a port already taken (exit 2), a
database it cannot open (exit 3); with ``--workers`` too."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.process import free_port


def _serve(
    tmp_path: Path, db_url: str, *extra: str, port: int | None = None
) -> subprocess.CompletedProcess[str]:
    port = free_port() if port is None else port
    argv = [sys.executable, "-m", "batchd.cli", "serve", "--backend", "fake"]
    argv += ["--data-dir", str(tmp_path / "data"), "--port", str(port), "--db", db_url]
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


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_already_taken_is_one_line_and_exit_2(tmp_path: Path, workers: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        db = f"sqlite:///{tmp_path / 'batchd.db'}"
        done = _serve(tmp_path, db, "--workers", workers, port=port)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"batchd: cannot listen on 127.0.0.1:{port}: [Errno 98] Address already in use" in (
        done.stderr
    )


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--account-id", "12345"], "--account-id must be 12 digits"),
        (["--region", "moon"], "--region 'moon' is not a region name"),
        (["--tick-seconds", "0"], "--tick-seconds must be positive"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--image-command", "no-equals-sign"], "--image-command 'no-equals-sign' is not"),
        (["--image-command", "img='unclosed"], "No closing quotation"),
        (["--access-keys-file", "/nonexistent/keys"], "--access-keys-file /nonexistent/keys"),
    ],
)
def test_a_bad_option_is_one_line_and_exit_2(tmp_path: Path, options: list[str], says: str) -> None:
    done = _serve(tmp_path, f"sqlite:///{tmp_path / 'batchd.db'}", *options)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("batchd: ") and says in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr


def test_a_malformed_access_key_is_one_line_without_the_secret(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("good:secret-one\nbad-entry-without-colon-s3cret\n")
    done = _serve(tmp_path, f"sqlite:///{tmp_path / 'batchd.db'}", "--access-keys-file", str(keys))
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "is not ID:SECRET" in done.stderr, done.stderr
    assert "secret-one" not in done.stderr

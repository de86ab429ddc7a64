"""Settings refuse bad values at start, as StartupError: the operator's to fix, never a
request's fault (a ClientError would be answered as HTTP 400)."""

from __future__ import annotations

from typing import Any

import pytest

from batchd.errors import ClientError, StartupError
from batchd.settings import Settings


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("account_id", "12345", "--account-id must be 12 digits"),
        ("region", "moon", "--region 'moon'"),
        ("backend", "cloud", "--backend must be local, fake or kubernetes"),
        ("port", 70000, "--port must be between 0 and 65535"),
        ("tick_seconds", 0.0, "--tick-seconds must be positive"),
        ("tick_seconds", float("nan"), "--tick-seconds must be positive"),
        ("stop_grace_seconds", -1.0, "--stop-grace-seconds must not be negative"),
        ("max_submitted_per_queue", 0, "--max-submitted-per-queue must be at least 1"),
    ],
)
def test_a_bad_setting_is_a_startup_error_not_a_client_error(
    field: str, value: Any, says: str
) -> None:
    with pytest.raises(StartupError) as raised:
        Settings(**{field: value})
    assert not isinstance(raised.value, ClientError)
    assert raised.value.message.startswith(says)

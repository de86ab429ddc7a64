"""Signed session cookies for the dashboard's sign-in.

A session is ``<access key id>.<expiry seconds>.<HMAC-SHA256>``, keyed by a secret derived
from the server's access keys: every worker process of one server derives the same secret,
and changing the keys signs everyone out. Forms carry a token bound to the session (CSRF).
"""

from __future__ import annotations

import hashlib
import hmac
import re

__all__ = ["COOKIE", "Sessions"]

COOKIE = "batchd_session"
_LIFETIME = 12 * 3600
_SHAPE = re.compile(r"^([A-Za-z0-9_+=,.@-]{1,128})\.([0-9]{1,12})\.([0-9a-f]{64})$")


class Sessions:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def issue(self, key_id: str, now: int) -> str:
        body = f"{key_id}.{now + _LIFETIME}"
        return f"{body}.{self._mac(body)}"

    def verify(self, value: str | None, now: int) -> str | None:
        """The signed-in access key id, or None."""
        found = _SHAPE.match(value or "")
        if found is None:
            return None
        body = f"{found[1]}.{found[2]}"
        if not hmac.compare_digest(self._mac(body), found[3]) or int(found[2]) < now:
            return None
        return found[1]

    def form_token(self, session: str) -> str:
        return self._mac("form:" + session)[:32]

    def check_form(self, session: str, token: str | None) -> bool:
        return hmac.compare_digest(self.form_token(session), token or "")

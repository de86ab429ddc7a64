"""SigV4 verification of incoming requests against the server's configured access keys.

The canonical request is rebuilt with botocore's own ``SigV4Auth`` from exactly what the
client signed (method, raw path, raw query, the headers named in SignedHeaders, the body), so
canonicalization can never drift from the clients'. Errors use AWS's codes and statuses.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

__all__ = ["AuthFailure", "SigV4Verifier", "load_keys"]

_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<headers>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)
_DATE = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class AuthFailure(Exception):
    status: int
    code: str
    message: str


def load_keys(text: str) -> dict[str, str]:
    """Access keys from ``ID:SECRET`` entries separated by commas, spaces or newlines."""
    keys: dict[str, str] = {}
    for entry in re.split(r"[,\s]+", text.strip()):
        if not entry or entry.startswith("#"):
            continue
        key_id, sep, secret = entry.partition(":")
        if not sep or not key_id or not secret:
            raise ValueError(f"access key entry {entry[:20]!r}... is not ID:SECRET")
        keys[key_id] = secret
    return keys


class SigV4Verifier:
    def __init__(self, keys: Mapping[str, str], region: str, max_skew_seconds: int = 900) -> None:
        self._keys = dict(keys)
        self._region = region
        self._skew = max_skew_seconds

    def knows(self, key_id: str, secret: str) -> bool:
        """Whether ``secret`` is the secret of access key ``key_id`` (the dashboard's sign-in)."""
        known = self._keys.get(key_id)
        return known is not None and hmac.compare_digest(known.encode(), secret.encode())

    def session_key(self) -> bytes:
        """A secret derived from the access keys: every worker of a server derives the same."""
        text = "\n".join(f"{k}:{v}" for k, v in sorted(self._keys.items()))
        return hashlib.sha256(b"batchd-dashboard-session\0" + text.encode()).digest()

    def verify(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: Mapping[str, str],
        body: bytes,
        now: datetime,
    ) -> str:
        """The verified access key id; raises AuthFailure otherwise."""
        header = headers.get("authorization")
        if not header:
            raise AuthFailure(
                403, "MissingAuthenticationTokenException", "Missing Authentication Token"
            )
        match = _AUTH.match(header.strip())
        if match is None:
            raise AuthFailure(
                400,
                "IncompleteSignatureException",
                "Authorization header requires AWS4-HMAC-SHA256 Credential, SignedHeaders and "
                "Signature",
            )
        key_id, day, region, service = self._scope(match["credential"])
        secret = self._keys.get(key_id)
        if secret is None:
            raise AuthFailure(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        stamp = self._timestamp(headers, day, now)
        if region != self._region:
            raise AuthFailure(
                403,
                "InvalidSignatureException",
                f"Credential should be scoped to a valid region, not '{region}'; this server is "
                f"{self._region}",
            )
        signed = match["headers"].split(";")
        if "host" not in signed:
            raise AuthFailure(
                400, "IncompleteSignatureException", "SignedHeaders must include host"
            )
        if signed != sorted(set(signed)) or any(h != h.lower() for h in signed):
            # The list is signed as given; only its canonical form can have been signed.
            raise AuthFailure(
                403,
                "InvalidSignatureException",
                "SignedHeaders must be lowercase, sorted and without repeats",
            )
        expected = self._signature(
            method,
            raw_path,
            raw_query,
            headers,
            signed,
            body,
            stamp,
            Credentials(key_id, secret),
            service,
        )
        if not hmac.compare_digest(expected, match["signature"]):
            raise AuthFailure(
                403,
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method.",
            )
        return key_id

    @staticmethod
    def _scope(credential: str) -> tuple[str, str, str, str]:
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
            raise AuthFailure(
                400,
                "IncompleteSignatureException",
                f"Credential must be KEY/DATE/REGION/SERVICE/aws4_request, got {credential[:80]!r}",
            )
        return parts[0], parts[1], parts[2], parts[3]

    def _timestamp(self, headers: Mapping[str, str], day: str, now: datetime) -> str:
        stamp = headers.get("x-amz-date", "")
        try:
            when = datetime.strptime(stamp, _DATE).replace(tzinfo=UTC)
        except ValueError as err:
            raise AuthFailure(
                400, "IncompleteSignatureException", "X-Amz-Date header is missing or malformed"
            ) from err
        if not stamp.startswith(day):
            raise AuthFailure(
                403, "InvalidSignatureException", "Credential date does not match X-Amz-Date"
            )
        if abs((now - when).total_seconds()) > self._skew:
            raise AuthFailure(
                403,
                "InvalidSignatureException",
                f"Signature expired: {stamp} is now earlier than "
                f"{now.strftime(_DATE)} minus {self._skew // 60} minutes.",
            )
        return stamp

    def _signature(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: Mapping[str, str],
        signed: list[str],
        body: bytes,
        stamp: str,
        credentials: Credentials,
        service: str,
    ) -> str:
        host = headers.get("host", "")
        url = f"http://{host}{raw_path}" + (f"?{raw_query}" if raw_query else "")
        request = AWSRequest(
            method=method,
            url=url,
            data=body,
            headers={name: headers.get(name, "") for name in signed},
        )
        request.context["timestamp"] = stamp
        auth = SigV4Auth(credentials, service, self._region)
        canonical = auth.canonical_request(request)
        signature: str = auth.signature(auth.string_to_sign(request, canonical), request)
        return signature

"""Our exceptions as AWS rest-json and json-1.1 errors: the only place codes are chosen."""

from __future__ import annotations

from dataclasses import dataclass

from batchd import jsontext
from batchd.errors import BatchdError, ClientError, NotFound

__all__ = ["WireError", "wire_error"]


@dataclass(frozen=True)
class WireError:
    status: int
    code: str
    message: str

    def body(self) -> bytes:
        return jsontext.dumps({"__type": self.code, "message": self.message})


def wire_error(err: BatchdError, service: str = "batch") -> WireError:
    if service == "logs":  # CloudWatch Logs' own codes, which its clients branch on
        if isinstance(err, NotFound):
            return WireError(400, "ResourceNotFoundException", err.message)
        if isinstance(err, ClientError):
            return WireError(400, "InvalidParameterException", err.message)
        return WireError(500, "ServiceUnavailableException", err.message)
    if service == "sagemaker":
        if isinstance(err, ClientError):
            return WireError(400, "ValidationException", err.message)
        return WireError(500, "InternalFailure", err.message)
    if isinstance(err, ClientError):
        return WireError(400, "ClientException", err.message)
    return WireError(500, "ServerException", err.message)

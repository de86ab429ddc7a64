"""The one exception tree of batchd.

    BatchdError
    ├── ClientError            caller's fault; answered as HTTP 400 ClientException
    │   ├── InvalidParameter   a member fails the model or a documented rule (names the field)
    │   ├── NotFound           the named resource or job does not exist
    │   ├── Conflict           it exists, but its state does not allow the request
    │   ├── LimitExceeded      a documented quota would be exceeded
    │   └── Unsupported        an operation of the model that batchd does not implement
    ├── ServerError            our fault; answered as HTTP 500 ServerException
    └── StartupError           batchd cannot start, for a reason the operator fixes (a bad
                               option or setting, a database it cannot open; the message
                               says how); never answered over HTTP: the CLI prints it in
                               one line, without traceback, and exits non-zero

Only ``protocol.errors`` turns these into AWS error codes.
"""

from __future__ import annotations

__all__ = [
    "BatchdError",
    "ClientError",
    "Conflict",
    "InvalidParameter",
    "LimitExceeded",
    "NotFound",
    "ServerError",
    "StartupError",
    "Unsupported",
]


class BatchdError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ClientError(BatchdError):
    pass


class InvalidParameter(ClientError):
    pass


class NotFound(ClientError):
    pass


class Conflict(ClientError):
    pass


class LimitExceeded(ClientError):
    pass


class Unsupported(ClientError):
    pass


class ServerError(BatchdError):
    pass


class StartupError(BatchdError):
    pass

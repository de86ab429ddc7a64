"""A fixed-response HTTP/1.1 server on the standard library: ``trivial.py PORT SPEC.json``.

SPEC maps a request path to the JSON body returned for it (``{}`` for any other path). It
does no work per request beyond parsing the request's framing, so a client pointed at it
measures its own ceiling.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

_MAX_HEAD = 64 * 1024


def _response(body: bytes) -> bytes:
    head = (
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nx-amzn-RequestId: 00000000-0000-4000-8000-000000000000"
        "\r\n\r\n"
    )
    return head.encode() + body


class _Fixed(asyncio.Protocol):
    def __init__(self, responses: dict[str, bytes], default: bytes) -> None:
        self._responses = responses
        self._default = default
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > _MAX_HEAD and self._transport is not None:
                    self._transport.close()
                return
            head = self._buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self._buffer) < end + 4 + length:
                return
            self._buffer = self._buffer[end + 4 + length :]
            path = head.split(" ", 2)[1].split("?", 1)[0]
            if self._transport is not None:
                self._transport.write(self._responses.get(path, self._default))


async def _main(port: int, spec: Path) -> None:
    bodies: dict[str, str] = json.loads(spec.read_text())
    responses = {path: _response(body.encode()) for path, body in bodies.items()}
    default = _response(b"{}")
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Fixed(responses, default), "127.0.0.1", port, backlog=1024
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_main(int(sys.argv[1]), Path(sys.argv[2])))

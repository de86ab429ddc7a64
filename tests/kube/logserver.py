"""The kubelet's read-only container-log endpoint, which the apiserver proxies
``GET /api/v1/namespaces/{ns}/pods/{pod}/log`` to: ``GET /containerLogs/{ns}/{pod}/{container}``
with ``tailLines``, ``limitBytes`` and ``follow``, over HTTPS with a self-signed certificate."""

from __future__ import annotations

import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

from tests.kube import pki

if TYPE_CHECKING:
    from tests.kube.pods import PodRunner

__all__ = ["serve_logs"]

Lookup = Callable[[str, str], "PodRunner | None"]


def _tail(data: bytes, lines: int) -> bytes:
    if lines <= 0:
        return b""
    kept = data.splitlines(keepends=True)[-lines:]
    return b"".join(kept)


class _Handler(BaseHTTPRequestHandler):
    lookup: Lookup

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _fail(self, status: int, message: str) -> None:
        body = message.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if url.path == "/healthz":
            self._fail(200, "ok")
            return
        if len(parts) != 4 or parts[0] != "containerLogs":
            self._fail(404, f"no such endpoint {url.path}")
            return
        _, namespace, pod, name = parts
        runner = type(self).lookup(namespace, pod)
        container = runner.container(name) if runner else None
        if runner is None or container is None:
            self._fail(404, f'container "{name}" of pod "{namespace}/{pod}" is not on this node')
            return
        if container.proc is None:
            self._fail(400, f'container "{name}" in pod "{pod}" is waiting to start')
            return
        query = dict(urllib.parse.parse_qsl(url.query))
        self._send_log(runner.log_path(name), query, container.proc_running)

    def _send_log(self, path: Path, query: dict[str, str], running: Callable[[], bool]) -> None:
        data = path.read_bytes() if path.exists() else b""
        if "tailLines" in query:
            data = _tail(data, int(query["tailLines"]))
        limit = int(query["limitBytes"]) if "limitBytes" in query else None
        follow = query.get("follow") in ("true", "1")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        if not follow:
            data = data[:limit] if limit is not None else data
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.end_headers()  # HTTP/1.0: the body ends when the connection closes
        sent = 0
        offset = path.stat().st_size if path.exists() else 0
        while True:
            chunk = data if limit is None else data[: limit - sent]
            self.wfile.write(chunk)
            self.wfile.flush()
            sent += len(chunk)
            finished = not running()
            if (limit is not None and sent >= limit) or (finished and not data):
                return
            time.sleep(0.0 if finished else 0.2)
            with path.open("rb") as log:
                log.seek(offset)
                data = log.read()
            offset += len(data)


def serve_logs(directory: Path, lookup: Lookup) -> ThreadingHTTPServer:
    """Serve on a free port of 127.0.0.1 in a daemon thread; the port is server_address[1]."""
    cert, key = pki.write_self_signed(directory, "kubelet")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    handler = type("Handler", (_Handler,), {"lookup": staticmethod(lookup)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, name="logs", daemon=True).start()
    return server

"""The dashboard's HTTP side: which requests are its, sign-in, pages, actions, static files."""

from __future__ import annotations

import importlib.resources
import logging
import re
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from batchd.api.auth import SigV4Verifier
from batchd.api.dashboard.jobpages import (
    job_page,
    jobs_page,
    log_hosts,
    log_tail,
    parse_filter,
    waiting_of,
)
from batchd.api.dashboard.pages import overview, queue_page
from batchd.api.dashboard.render import render
from batchd.api.dashboard.session import COOKIE, Sessions
from batchd.api.requests import Receive, read_body
from batchd.domain.resources import JobQueue
from batchd.errors import BatchdError, ClientError, InvalidParameter, NotFound
from batchd.operations import jobs as job_ops
from batchd.operations.context import Context

__all__ = ["Dashboard"]

log = logging.getLogger("batchd.dashboard")

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_HTML = b"text/html; charset=utf-8"
_STATIC = {".js": b"text/javascript", ".css": b"text/css", ".txt": b"text/plain; charset=utf-8"}
_PAGES = re.compile(
    r"^/(?:queues/[^/]+|jobs|jobs/[^/]+|jobs/[^/]+/(?:log|terminate|priority)"
    r"|signin|signout|static/[A-Za-z0-9_.-]+)$"
)
_FORM_LIMIT = 16 * 1024
_READ_ONLY = (
    "This dashboard is read-only: actions need SigV4 authentication on "
    "(--access-keys-file) and a signed-in access key."
)


class Response:
    def __init__(
        self, body: bytes, status: int = 200, media: bytes = _HTML, **headers: str
    ) -> None:
        self.body, self.status, self.media = body, status, media
        self.headers = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]


def _redirect(to: str) -> Response:
    return Response(b"", 303, location=to, hx_redirect=to)


class Dashboard:
    """Read-only pages; with SigV4 auth on, every page needs a signed-in access key and the
    signed-in may terminate jobs and change their scheduling priority."""

    def __init__(self, verifier: SigV4Verifier | None) -> None:
        self.verifier = verifier
        self.sessions = Sessions(verifier.session_key()) if verifier else None

    @staticmethod
    def wants(method: str, path: str, headers: dict[bytes, bytes]) -> bool:
        """Browser requests: ``GET /`` asking for HTML without an X-Amz-Target, and the
        dashboard's own paths, none of which the Batch API (``/v1/...``) uses."""
        if b"x-amz-target" in headers or b"authorization" in headers:
            return False
        if path == "/":
            return method in ("GET", "HEAD") and b"text/html" in headers.get(b"accept", b"")
        return method in ("GET", "HEAD", "POST") and _PAGES.match(path) is not None

    async def __call__(
        self,
        ctx: Context,
        scope: MutableMapping[str, Any],
        receive: Receive,
        send: Send,
        headers: dict[bytes, bytes],
    ) -> None:
        try:
            response = await self._handle(ctx, scope, receive, headers)
        except ClientError as err:
            status = 404 if isinstance(err, NotFound) else 400
            body = render("error.html", message=str(err), status=status, user=None)
            response = Response(body, status)
        except BatchdError as err:
            body = render("error.html", message=str(err), status=500, user=None)
            response = Response(body, 500)
        except Exception:  # a bug of ours: log it, and say so
            log.exception("internal error on dashboard page %s", scope["path"])
            body = render("error.html", message="Internal error", status=500, user=None)
            response = Response(body, 500)
        if scope["method"] == "HEAD":
            response.body = b""
        start = [
            (b"content-type", response.media),
            (b"content-length", b"%d" % len(response.body)),
            (b"cache-control", b"no-store"),
            *response.headers,
        ]
        await send({"type": "http.response.start", "status": response.status, "headers": start})
        await send({"type": "http.response.body", "body": response.body})

    async def _handle(
        self,
        ctx: Context,
        scope: MutableMapping[str, Any],
        receive: Receive,
        headers: dict[bytes, bytes],
    ) -> Response:
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith("/static/"):
            return _static(path.removeprefix("/static/"))
        query = urllib.parse.parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        form: dict[str, str] = {}
        if method == "POST":
            body = await read_body(receive, headers.get(b"content-length"), _FORM_LIMIT)
            form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        now = ctx.clock.now_ms() // 1000
        cookie = _cookie(headers.get(b"cookie", b"").decode("latin-1"))
        user = self.sessions.verify(cookie, now) if self.sessions and cookie else None
        if path == "/signin":
            return self._signin(method, form, query, now)
        if self.sessions is not None and user is None:
            target = scope["path"] + ("?" + urllib.parse.urlencode(query) if query else "")
            return _redirect("/signin?" + urllib.parse.urlencode({"next": target}))
        if path == "/signout":
            return Response(b"", 303, location="/", set_cookie=f"{COOKIE}=; Path=/; Max-Age=0")
        token = self.sessions.form_token(cookie or "") if self.sessions and user else None
        common = {"user": user, "now": ctx.clock.now_ms(), "token": token}
        if method == "POST":
            if self.sessions is None or cookie is None:
                body = render("error.html", status=403, message=_READ_ONLY, user=None)
                return Response(body, 403)
            if not self.sessions.check_form(cookie, form.get("token")):
                raise InvalidParameter("token: the form is stale; reload the page")
            return await _action(ctx, path, form)
        return await self._page(ctx, path, query, common)

    def _signin(
        self, method: str, form: dict[str, str], query: list[tuple[str, str]], now: int
    ) -> Response:
        target = dict(query).get("next") or form.get("next") or "/"
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        if self.verifier is None or self.sessions is None:
            return _redirect("/")
        error = None
        if method == "POST":
            key_id = form.get("access_key_id", "")
            if self.verifier.knows(key_id, form.get("secret_access_key", "")):
                cookie = self.sessions.issue(key_id, now)
                attributes = "Path=/; HttpOnly; SameSite=Strict; Max-Age=43200"
                return Response(
                    b"", 303, location=target, set_cookie=f"{COOKIE}={cookie}; {attributes}"
                )
            error = "Unknown access key id or wrong secret."
        body = render("signin.html", next=target, error=error, user=None, token=None)
        return Response(body, 401 if error else 200)

    async def _page(
        self, ctx: Context, path: str, query: list[tuple[str, str]], common: dict[str, Any]
    ) -> Response:
        url = path + ("?" + urllib.parse.urlencode(query) if query else "")
        common["url"] = url
        if path == "/":
            return Response(render("overview.html", **common, **await overview(ctx)))
        if path.startswith("/queues/"):
            name = urllib.parse.unquote(path.removeprefix("/queues/"))
            queue = await ctx.store.resources.get(JobQueue, name)
            if queue is None:
                raise NotFound(f"Job queue {name} does not exist")
            found = await queue_page(ctx, queue)
            head = (
                await ctx.store.job_reads.get(found["front"][0][1].job_id)
                if found["front"]
                else None
            )
            found["head"] = head
            found["head_wait"] = await waiting_of(ctx, head, queue) if head else None
            return Response(render("queue.html", **common, **found))
        if path == "/jobs":
            found = await jobs_page(ctx, parse_filter(query))
            common["url"] = found.pop("live_url") or url
            return Response(render("jobs.html", **common, **found))
        job_id = urllib.parse.unquote(path.split("/")[2])
        job = await job_ops.find_job(ctx, job_id)
        if path.endswith("/log"):
            return await _log(ctx, job, dict(query))
        training_name, hosts = await log_hosts(ctx, job)
        detail = await job_page(ctx, job)
        body = render("job.html", **common, **detail, training_name=training_name, hosts=hosts)
        return Response(body)


async def _log(ctx: Context, job: Any, query: dict[str, str]) -> Response:
    host = query.get("host", "")
    raw = query.get("offset")
    if raw is not None and not raw.isdigit():
        raise InvalidParameter("offset must be a non-negative integer")
    text, offset = await log_tail(ctx, job, host, int(raw) if raw else None)
    done = job.terminal and not text and raw is not None
    body = render("log.html", job=job, host=host, text=text, offset=offset, done=done)
    return Response(body)


async def _action(ctx: Context, path: str, form: dict[str, str]) -> Response:
    job_id = urllib.parse.unquote(path.split("/")[2])
    if path.endswith("/terminate"):
        reason = form.get("reason", "").strip() or "Terminated from the dashboard"
        await job_ops.terminate(ctx, {"jobId": job_id, "reason": reason})
    elif path.endswith("/priority"):
        raw = form.get("priority", "").strip()
        if not raw.isdigit() or int(raw) > 9999:
            raise InvalidParameter("priority must be a whole number from 0 to 9999")
        await job_ops.update(ctx, {"jobId": job_id, "schedulingPriority": int(raw)})
    else:
        raise NotFound(f"No action at {path}")
    return _redirect("/jobs/" + urllib.parse.quote(job_id, safe=""))


def _cookie(header: str) -> str | None:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None


def _static(name: str) -> Response:
    suffix = name[name.rfind(".") :] if "." in name else ""
    media = _STATIC.get(suffix)
    resource = importlib.resources.files("batchd.api.dashboard").joinpath("static", name)
    if media is None or not resource.is_file():
        return Response(b"Not Found", 404, b"text/plain")
    return Response(resource.read_bytes(), 200, media)

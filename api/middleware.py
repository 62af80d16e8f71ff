"""HTTP middleware of the service: the body cap, the ``Host`` check, the security headers.

Pure ASGI (no ``BaseHTTPMiddleware``): they wrap ``receive`` and ``send`` and add a few
microseconds to the lookup's hot path, not a task per request.

* **Body cap** (issue 14, finding 3): a declared ``Content-Length`` over the cap answers 413 at
  once; a body without one (chunked) is counted as it arrives and stopped at the cap, so a
  200 MB body is never held. Some routes have tighter caps (``routes``; the plans' routes
  read theirs through ``api.deps.json_body``).
* **Host** (finding 9): links in bodies are built from the ``Host`` header, so it must be one
  of ``GEOGRID_ALLOWED_HOSTS`` (Starlette's ``TrustedHostMiddleware`` answers 400 otherwise).
* **Security headers** on every answer (``nosniff``, ``Referrer-Policy``, ``X-Frame-Options``),
  and on HTML a Content-Security-Policy with a fresh nonce per page: the maps (Folium) and the
  API docs need inline scripts, and each of their ``<script>`` tags gets the nonce. That is
  safe because every value a page embeds is escaped for ``<script>`` (``geogrid.maps.base.
  js_json``, Jinja's ``tojson``), so no data can open a ``<script>`` tag of its own. A route
  that sets its own CSP (photos: ``default-src 'none'; sandbox``) keeps it.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import envelope

_SCRIPT_TAG = re.compile(rb"<script(?=[\s>])", re.IGNORECASE)


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a body passes its cap mid-stream. An HTTPException (413),
    because FastAPI turns any other error met while reading a body into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the body is larger than {limit:,} bytes")
        self.limit = limit


def _too_large(limit: int) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = json.dumps(
        envelope("too_large", f"the body is larger than {limit:,} bytes", "body"),
        ensure_ascii=False,
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return 413, headers, body


class BodyLimit:
    """Refuse bodies over ``limit`` bytes (or a route's own cap) with 413."""

    def __init__(self, app: ASGIApp, *, limit: int, routes: dict[str, int] | None = None) -> None:
        self.app, self.limit, self.routes = app, limit, routes or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.routes.get(scope["path"], self.limit)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdecimal() and int(declared) > limit:
            await _answer(send, *_too_large(limit))
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as exc:
            if started:  # too late to answer: the connection is dropped
                raise
            await _answer(send, *_too_large(exc.limit))


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def content_security_policy(nonce: str, *, image_sources: Iterable[str] = ()) -> str:
    """The CSP of an HTML page: scripts from the service or carrying ``nonce``; styles inline
    too (Leaflet and Folium set ``style`` attributes); images also from tile servers."""
    images = " ".join(["'self'", "data:", "blob:", "https:", *image_sources])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self' 'unsafe-inline'",
            f"img-src {images}",
            "font-src 'self' data:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'self'",
        ]
    )


class SecurityHeaders:
    """Security headers on every answer; the CSP and script nonces on HTML."""

    def __init__(self, app: ASGIApp, *, image_sources: Iterable[str] = ()) -> None:
        self.app = app
        self.image_sources = tuple(image_sources)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] | None = None
        chunks: list[bytes] = []

        async def wrapped(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in (
                    ("x-content-type-options", "nosniff"),
                    ("referrer-policy", "same-origin"),
                    ("x-frame-options", "SAMEORIGIN"),
                ):
                    headers.setdefault(name, value)
                html = headers.get("content-type", "").startswith("text/html")
                if not html or "content-security-policy" in headers:
                    await send(message)
                    return
                start = dict(message)  # held until the whole page is here: nonces to add
                return
            if start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            nonce = secrets.token_urlsafe(16)
            body = _SCRIPT_TAG.sub(b'<script nonce="' + nonce.encode() + b'"', b"".join(chunks))
            headers = MutableHeaders(scope=start)
            headers["content-length"] = str(len(body))
            headers["content-security-policy"] = content_security_policy(
                nonce, image_sources=self.image_sources
            )
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, wrapped)

"""HTTP middleware of the service: the body cap, the ``Host`` check, the security headers.

Pure ASGI (no ``BaseHTTPMiddleware``): they wrap ``receive`` and ``send`` and add a few
microseconds to the lookup's hot path, not a task per request.

* **Body cap** (issue 14, finding 3): a declared ``Content-Length`` over the cap answers 413 at
  once; a body without one (chunked) is counted as it arrives and stopped at the cap, so a
  200 MB body is never held. Some routes have tighter caps (``routes``; the plans' routes
  read theirs through ``api.deps.json_body``).
* **Host** (finding 9): links in bodies are built from the ``Host`` header, so it must be one
  of ``GEOGRID_ALLOWED_HOSTS`` (400 ``invalid_host`` otherwise).
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

from starlette.datastructures import MutableHeaders
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
        # No route reads the body of a GET or HEAD: nothing to count (the lookup's hot path).
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        limit = self.routes.get(scope["path"], self.limit)
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        if declared.isdigit() and int(declared) > limit:
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


_ALWAYS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"SAMEORIGIN"),
)


class SecurityHeaders:
    """Security headers on every answer; the CSP and script nonces on HTML.

    It works on the raw header list (no ``MutableHeaders``): it sits on the lookup's hot path,
    where each microsecond is a few percent (benchmarks/README.md, "Lookup")."""

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
                raw = list(message.get("headers", ()))
                names = {name.lower() for name, _ in raw}
                raw.extend(h for h in _ALWAYS if h[0] not in names)
                message = {**message, "headers": raw}
                html = any(
                    name.lower() == b"content-type" and value.startswith(b"text/html")
                    for name, value in raw
                )
                if not html or b"content-security-policy" in names:
                    await send(message)
                    return
                start = message  # held until the whole page is here: nonces to add
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


class HostCheck:
    """``Host`` must be one of ``allowed`` (a name, ``*.domain``, or ``*`` for any): 400
    otherwise. Starlette's ``TrustedHostMiddleware`` does the same through a ``Headers``
    object per request; this reads the raw list (the lookup's hot path)."""

    def __init__(self, app: ASGIApp, *, allowed: Iterable[str]) -> None:
        self.app = app
        hosts = list(allowed)
        self.any = "*" in hosts
        self.exact = {h.lower() for h in hosts if not h.startswith("*")}
        self.suffixes = tuple(h[1:].lower() for h in hosts if h.startswith("*."))

    def _allowed(self, host: str) -> bool:
        if host.startswith("["):  # [::1]:8000
            name = host.split("]", 1)[0] + "]"
        else:
            name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        name = name.lower()
        return name in self.exact or (bool(self.suffixes) and name.endswith(self.suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.any or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = next((v for k, v in scope["headers"] if k == b"host"), b"").decode("latin-1")
        if self._allowed(host):
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            envelope("invalid_host", "this service does not answer to that Host", "Host")
        ).encode()
        await _answer(
            send,
            400,
            [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            body,
        )

"""CSRF tokens of the app's own HTML forms (sign in, sign out): the double-submit cookie.

A form page sets a random token in the ``geogrid_csrf`` cookie (``SameSite=Strict``,
``HttpOnly``) and in a hidden field; a POST is taken only when the two are equal and, if the
browser says where the form came from (``Origin``), it came from this service. Another site
can neither read the cookie nor set it, so it cannot forge the field (OWASP CSRF Prevention
Cheat Sheet, "Signed Double-Submit Cookie" / "Verifying Origin"). The ``/v1`` JSON API needs
none of this: its writes need a key in a header, which a cross-site page cannot send.
"""

from __future__ import annotations

import hmac
import re
import secrets

from fastapi import Request, Response

from geogrid.errors import Forbidden

CSRF_COOKIE = "geogrid_csrf"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,64}")


def token_of(request: Request) -> str:
    """The token of this browser (its cookie's, when it has a well-formed one), else new."""
    token = request.cookies.get(CSRF_COOKIE, "")
    return token if _TOKEN.fullmatch(token) else secrets.token_urlsafe(32)


def set_cookie(response: Response, token: str, *, secure: bool) -> None:
    response.set_cookie(
        CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/"
    )


def check(request: Request, submitted: str | None) -> None:
    """:class:`Forbidden` unless ``submitted`` matches the cookie and the form is our own."""
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        own = f"{request.url.scheme}://{request.url.netloc}"
        if origin.rstrip("/") != own:
            raise Forbidden("this form was sent from another site", field="Origin")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not (cookie and submitted and hmac.compare_digest(cookie.encode(), submitted.encode())):
        raise Forbidden(
            "the form's security token is missing or stale: reload the page and try again",
            field="csrf_token",
        )

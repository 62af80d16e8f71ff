"""Who is calling: API keys (``X-API-Key`` or ``Authorization: Bearer``), the browser
session cookie of officials and planners, and the sign-in and sign-out pages.

Keys and sessions are checked by ``geogrid.access``; here they are read from the
HTTP request. A session cookie authorizes safe methods (GET, HEAD) only: a ``/v1`` write
always needs the key in a header, which a cross-site page cannot add. The app's own forms
(sign in, sign out) carry a CSRF token (``api.csrf``), and sign-in is throttled per client
address (``geogrid.access.begin_login_attempt``; docs/api.md, "Access").
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.deps import EngineDep, client_address
from api.schemas.auth import MeOut
from api.schemas.common import ErrorEnvelope
from geogrid.access import (
    Actor,
    check_key,
    record_key_use,
    session_actor,
)
from geogrid.errors import DatabaseUnavailable, NotAuthenticated

log = logging.getLogger("geogrid.api")

SESSION_COOKIE = "geogrid_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An API key (`geogrid keys create`)."
)
_bearer = HTTPBearer(auto_error=False, description="The same key as a bearer token.")


def get_actor(
    request: Request,
    engine: EngineDep,
    key: Annotated[str | None, Depends(_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> Actor:
    """The caller: a key's actor, a session's (safe methods only), or anonymous.

    An ``Authorization`` header of another scheme (``Basic …``) is refused (401), not taken
    for anonymous: a client that thinks it sent credentials must hear that it did not."""
    scheme = request.headers.get("authorization")
    if scheme is not None and bearer is None:
        raise NotAuthenticated(
            "the Authorization header must be 'Bearer <key>'", field="Authorization"
        )
    if key is None and request.headers.get("x-api-key") is not None:
        raise NotAuthenticated("the X-API-Key header is empty", field="X-API-Key")
    secret = key or (bearer.credentials if bearer is not None else None)
    if secret:
        # Read, then record the use apart and only when due (once a minute per key): a key
        # check must not wait for SQLite's write lock, and a failed record costs nothing.
        with engine.connect() as conn:
            actor, due = check_key(conn, secret)
        if due and actor.key_id is not None:
            try:
                with engine.begin() as conn:
                    record_key_use(conn, key_id=actor.key_id)
            except DatabaseUnavailable:
                log.info("the use of key %s was not recorded: the database is busy", actor.label)
        return reached(actor, request)
    token = request.cookies.get(SESSION_COOKIE)
    if token and request.method in SAFE_METHODS:
        with engine.connect() as conn:  # reads only
            return reached(session_actor(conn, token), request)
    return reached(Actor.anonymous(), request)


def reached(actor: Actor, request: Request) -> Actor:
    """``actor`` with where the call came from, for the audit log: the client's address
    (:func:`api.deps.client_address`: behind a trusted proxy, the address it forwards) and the
    route as declared (``POST /v1/requests/{request_id}/{action}``: no ids or tokens from the
    path)."""
    route = getattr(request.scope.get("route"), "path", None) or request.url.path
    return actor.reached(client=client_address(request) or None, via=f"{request.method} {route}")


ActorDep = Annotated[Actor, Depends(get_actor)]

#: ``openapi_extra`` of a route anyone may call, a key only adding to what it answers: its
#: OpenAPI security lists the empty requirement ``{}`` beside the key schemes (OpenAPI 3.1,
#: "Security Requirement Object": an empty object makes security optional).
OPEN: dict[str, Any] = {"security": [{}]}

router = APIRouter(tags=["access"])


@router.get(
    "/v1/me",
    openapi_extra=OPEN,
    summary="Who am I: the role and scope of the key or session",
    response_model=MeOut,
    responses={401: {"model": ErrorEnvelope, "description": "A wrong or revoked key"}},
)
def me(actor: ActorDep) -> dict[str, object]:
    return {
        "authenticated": actor.authenticated,
        "role": actor.role.value,
        "label": actor.label,
        "community_id": actor.community_id,
        "member_id": actor.member_id,
        "department_id": actor.department_id,
        "personal_data": actor.personal_data,
        "via_session": actor.via_session,
    }

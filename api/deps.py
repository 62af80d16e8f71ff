"""Dependencies: the engine and the settings live on the app (``create_app`` reads the
settings once; the lifespan opens the engine), a connection per request."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool

from geogrid import crs as gcrs
from geogrid.errors import InvalidInput, TooLarge
from geogrid.lookup import LookupService
from geogrid.requests.geocoder import lookup_geocoder
from geogrid.requests.workflow import Geocoder
from geogrid.settings import MapSettings, RequestsSettings, Settings

# Map pages load their vendored scripts and styles relative to the page (/maps/assets/…).
ASSETS_URL = "assets/"


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_requests_settings(request: Request) -> RequestsSettings:
    return request.app.state.settings.requests


def get_map_settings(request: Request) -> MapSettings:
    return request.app.state.settings.maps


def get_conn(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Connection]:
    """A read connection for one request."""
    with engine.connect() as conn:
        yield conn


async def read_body(request: Request, *, limit: int) -> bytes:
    """The request's body, read no further than ``limit`` bytes: a larger body is refused
    (413 ``too_large``) without being held in memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body is larger than {limit:,} bytes", field="body")
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body is larger than {limit:,} bytes", field="body")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    """``raw`` as JSON, or 422 ``invalid_input`` saying where it is not."""
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"the body is not JSON: {exc}", field="body") from None


# Parsing JSON holds the GIL (1.6 s for a 31.5 MB plan in the abuse benchmark): past this
# size it runs in the thread pool, so one large body cannot stall every request on the loop.
_PARSE_ON_LOOP_BYTES = 64 * 1024


async def json_body(request: Request, *, limit: int) -> Any:
    """The request's JSON body, read no further than ``limit`` bytes (413 ``too_large``),
    parsed off the event loop when large."""
    raw = await read_body(request, limit=limit)
    if len(raw) <= _PARSE_ON_LOOP_BYTES:
        return parse_json(raw)
    return await run_in_threadpool(parse_json, raw)


def known_fields(body: Any, allowed: Collection[str]) -> dict[str, Any]:
    """``body`` if it is a JSON object of ``allowed`` fields only; else 422 naming the first
    unknown one (a misspelt field must not be silently ignored)."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", field="body")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InvalidInput(
            f"unknown field {unknown[0]!r}; accepted: {', '.join(sorted(allowed))}",
            field=unknown[0],
        )
    return body


def http_crs(request: Request, name: Any, *, field: str = "crs") -> str:
    """The canonical CRS an HTTP caller named, if the service accepts it from HTTP callers
    (``geogrid.crs.allowed_crs``: the aliases and the configured EPSG codes, no PROJ or WKT
    string). Cheap: no parse; see :func:`geogrid.crs.prepare` for the parse."""
    return gcrs.allowed_crs(name, epsg=request.app.state.crs_epsg, field=field)


def client_address(request: Request) -> str:
    """The caller's address: the peer's, or — when the peer is a trusted proxy
    (``GEOGRID_TRUSTED_PROXIES``) — the last address in ``X-Forwarded-For`` that is not one
    of ours. Never the header's first entry, which the client writes itself."""
    peer = request.client.host if request.client else ""
    proxies: list[IPv4Network | IPv6Network] = request.app.state.trusted_proxies
    if not proxies or not _within(peer, proxies):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _within(hop, proxies):
            return hop
    return peer


def _within(address: str, networks: list[IPv4Network | IPv6Network]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def base_url(request: Request) -> str:
    """The service's own address as the caller reached it (for links in bodies)."""
    return str(request.base_url).rstrip("/")


def geocoder_of(request: Request) -> Geocoder | None:
    """Addresses are resolved by the lookup service of the app, when it runs one."""
    service: LookupService | None = getattr(request.app.state, "lookup", None)
    return lookup_geocoder(service)


ConnDep = Annotated[Connection, Depends(get_conn)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RequestsSettingsDep = Annotated[RequestsSettings, Depends(get_requests_settings)]
MapSettingsDep = Annotated[MapSettings, Depends(get_map_settings)]

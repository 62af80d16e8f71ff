"""``GET /v1/lookup`` and ``POST /v1/lookup/batch``: which grid and member cover a place.

Answered from the in-memory indexes of ``geogrid.lookup.LookupService`` (built in the app's
lifespan, refreshed by its poller): no database round trip per request. The single lookup is
an ``async`` handler — a few microseconds of CPU, cheaper on the event loop than a hop to the
thread pool — and returns its JSON directly (the response model documents it); see
:func:`install` for how it is mounted. The batch, up to a second of CPU, runs in the thread
pool so the loop keeps serving.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from api.deps import http_crs
from api.errors import status_of
from api.schemas.lookup import (
    LookupBatchIn,
    LookupBatchOut,
    LookupErrorEnvelope,
    LookupOut,
)
from geogrid import crs as gcrs
from geogrid.errors import GeogridError, InvalidInput
from geogrid.lookup import MAX_BATCH, LookupService
from geogrid.lookup.result import compact_json

router = APIRouter(prefix="/v1", tags=["lookup"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {
        "model": LookupErrorEnvelope,
        "description": "No address matched (details.suggestions), the point is outside every "
        "grid (details.nearest_grid with distance_m), or an unknown community",
    },
    422: {
        "model": LookupErrorEnvelope,
        "description": "A parameter is missing, not a number, not finite or out of range "
        "(error.field names it; details.swapped_inside when lon and lat look swapped), "
        "or an unknown crs (invalid_crs)",
    },
}


def _service(request: Request) -> LookupService:
    return request.app.state.lookup


#: The parameters of ``GET /v1/lookup``, documented here and read from the query string by
#: the handler itself: FastAPI's per-parameter validation costs ~40 µs a request, several
#: times the lookup (benchmarks/README.md), and the library checks every value anyway — with
#: messages that name the parameter (lon, lat, crs, address) as the contract asks.
LOOKUP_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "address",
        "in": "query",
        "required": False,
        "description": "An address in the community: door (长湖街12号), building with compound "
        "or alias (金源花园3栋), street alone (长湖街); full- or half-width, Chinese numerals, "
        "optional province…community prefix, small typos; Latin script alike (Unioninkatu "
        "29). Give this or lon + lat.",
        "schema": {"type": "string", "maxLength": 200},
        "examples": {"door": {"value": "长湖街12号"}, "building": {"value": "金源花园3栋"}},
    },
    {
        "name": "lon",
        "in": "query",
        "required": False,
        "description": "Longitude in `crs` (x, easting for a projected EPSG code), with lat; "
        "−180..180 for longitude/latitude CRSs",
        "schema": {"type": "number"},
        "examples": {"wgs84": {"value": 114.4102}},
    },
    {
        "name": "lat",
        "in": "query",
        "required": False,
        "description": "Latitude in `crs` (y, northing), with lon; −90..90",
        "schema": {"type": "number"},
        "examples": {"wgs84": {"value": 23.1451}},
    },
    {
        "name": "crs",
        "in": "query",
        "required": False,
        "description": "CRS of lon/lat and of point.requested in the answer: wgs84 "
        "(EPSG:4326, default), cgcs2000 (EPSG:4490; equal to WGS 84), gcj02 (Amap, Tencent), "
        "bd09 (Baidu), or EPSG:NNNN",
        "schema": {"type": "string", "default": "wgs84"},
        "examples": {
            "wgs84": {"value": "wgs84"},
            "gcj02": {"value": "gcj02"},
            "bd09": {"value": "bd09"},
        },
    },
    {
        "name": "community",
        "in": "query",
        "required": False,
        "description": "Only this community code (default: every community)",
        "schema": {"type": "string"},
        "examples": {"jinyuan": {"value": "441302011005"}},
    },
]


async def lookup(request: Request) -> Any:
    """The community, grid, branch, building group, responsible member (masked name) and the
    rule that chose them, the point in WGS 84 and in `crs`, the plan version, and for
    addresses how the address matched. Either `address`, or `lon` and `lat`."""
    params = request.query_params
    crs = http_crs(request, params.get("crs"))
    if not gcrs.is_prepared(crs):
        # The first use of an EPSG code parses it (9–40 ms): in the thread pool, so that the
        # loop keeps answering; every later request skips this (issue 14).
        await run_in_threadpool(gcrs.prepare, crs)
    result = _service(request).lookup(
        address=params.get("address"),
        lon=params.get("lon"),
        lat=params.get("lat"),
        crs=crs,
        community=params.get("community") or None,
    )
    return Response(result.to_json().encode(), media_type="application/json")


@router.post(
    "/lookup/batch",
    response_model=LookupBatchOut,
    summary=f"Up to {MAX_BATCH:,} lookups in one call, one result per item in order",
    responses={422: {"model": LookupErrorEnvelope, "description": "More than 10,000 items"}},
)
def lookup_batch(request: Request, body: LookupBatchIn) -> Any:
    """Each item is an address or a point (as ``GET /v1/lookup``). Each result is the
    lookup body or ``{"error": {...}}`` with the code, message and field of that item's
    error (the status it would have had is in ``error.status``); the batch itself answers
    200 whatever its items hold."""
    results = _service(request).lookup_many(body.items, crs_check=_batch_crs(request, body.items))
    body_json = '{"results":[' + ",".join(_result_json(r) for r in results) + "]}"
    return Response(body_json.encode(), media_type="application/json")


def _batch_crs(request: Request, items: list[Any]) -> Callable[[Any], str]:
    """The check of each item's ``crs``: at most ``crs_max_per_batch`` distinct values in the
    batch (422 otherwise, before any work), each an allowed one (else that item's error), each
    parsed at most once."""
    limit = request.app.state.settings.http.crs_max_per_batch
    named = {repr(item.get("crs")) for item in items if isinstance(item, dict) and item.get("crs")}
    if len(named) > limit:
        raise InvalidInput(
            f"a batch may use at most {limit} distinct crs values, got {len(named):,}",
            field="items",
        )

    def check(name: Any) -> str:
        return gcrs.prepare(http_crs(request, name))

    return check


def install(app: FastAPI) -> None:
    """Mount ``GET /v1/lookup`` (first, as a lean Starlette route) and the router (the batch).

    ``GET /v1/lookup`` is the hot path: ~7 µs of lookup behind ~60 µs of FastAPI dispatch
    (an APIRoute in an included router: nested matching, dependency solving; ~35 µs as a
    Starlette ``Route``, measured in benchmarks/README.md, "Lookup"). So the same handler is
    mounted twice: as a Starlette ``Route`` at the head of the routes, which serves every
    request, and as an APIRoute behind it, which only documents it in the OpenAPI page. Its
    parameters are read and checked by the library either way, and errors reach the app's
    exception handlers (the envelope) the same way. Call this before including the other
    routers.
    """
    app.router.routes.insert(0, Route("/v1/lookup", lookup, methods=["GET"], name="lookup"))
    app.add_api_route(
        "/v1/lookup",
        lookup,
        methods=["GET"],
        tags=["lookup"],
        response_model=LookupOut,
        summary="Which grid and member cover this address or point?",
        responses=_ERRORS,
        openapi_extra={"parameters": LOOKUP_PARAMETERS},
    )
    app.include_router(router)


def _result_json(r: Any) -> str:
    if isinstance(r, GeogridError):
        return compact_json({"error": {**r.to_dict(), "status": status_of(r)}})
    return r.to_json()

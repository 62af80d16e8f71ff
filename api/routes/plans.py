"""``/v1/plans``: boundary plans for planners — validate, measure, diff, load, activate, roll
back, propose, export; ``/maps/plan`` draws a draft over the active plan.

Reads need a planner, official or admin key (or session); writes (load, activate, rollback,
propose) a planner or admin key. Plans travel as GeoJSON FeatureCollections (RFC 7946, WGS 84)
of grids with ``code``, ``name`` and optionally ``lead_member``.

Bounded work (``PlanSettings``, docs/api.md): a plan body is read no further than
``plan_max_bytes`` (413), its grids and vertices are counted before anything else (422
``too_complex``), and validation, metrics, diff and propose run on a time budget that also
ends them when the server is stopping (422 ``too_complex``, 503 ``shutting_down``).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth import ActorDep
from api.deps import (
    ASSETS_URL,
    ConnDep,
    EngineDep,
    MapSettingsDep,
    known_fields,
    parse_json,
    read_body,
)
from api.schemas.common import ErrorEnvelope
from api.schemas.plans import (
    PLAN_BODY,
    ActivationOut,
    DeletedPlan,
    LoadedPlan,
    PlanDiffOut,
    PlanFeatureCollection,
    PlanList,
    ProposeOut,
    ReviewClearedOut,
    ReviewOut,
    StoredPlanMetrics,
    StoredValidationOut,
    ValidationOut,
)
from api.web.render import lang_of, with_who_box
from geogrid.access import Actor
from geogrid.budget import Budget
from geogrid.db import queries
from geogrid.db.models import Role
from geogrid.errors import InvalidInput
from geogrid.maps.base import render_html
from geogrid.planning import activation, store
from geogrid.planning.common import parse_target
from geogrid.planning.files import write_plan_geojson
from geogrid.planning.limits import check_geojson_size, check_plan_size
from geogrid.planning.service import plan_map_in_db, propose_in_db
from geogrid.planning.validate import ValidationReport
from geogrid.settings import PlanSettings

router = APIRouter(tags=["plans"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorEnvelope} for s in (401, 403, 404, 409, 422)
}
#: Routes that run plan work on a time budget: also 503 when the server is stopping.
_BUDGETED: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    422: {
        "model": ErrorEnvelope,
        "description": "invalid_input, invalid_plan, or too_complex: more grids or vertices "
        "than allowed, or more time than GEOGRID_PLAN_MAX_SECONDS",
    },
    503: {
        "model": ErrorEnvelope,
        "description": "shutting_down: the server is stopping; try again",
    },
}
#: Routes that take a plan body: also 413 over GEOGRID_PLAN_MAX_BYTES.
_UPLOAD: dict[int | str, dict[str, Any]] = {
    **_BUDGETED,
    413: {"model": ErrorEnvelope, "description": "too_large: a body over GEOGRID_PLAN_MAX_BYTES"},
}
#: The same answers for a route whose own media type is not JSON: errors stay JSON.
_JSON_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}}
    for s in _ERRORS
}
_READ = (Role.PLANNER, Role.OFFICIAL, Role.ADMIN)
_WRITE = (Role.PLANNER, Role.ADMIN)

Community = Annotated[
    str | None, Query(description="Community code (default: the only one in the database)")
]
Target = Annotated[
    str | None,
    Query(description="Households per grid, LOW:HIGH (default 300:500)", examples=["300:500"]),
]


class GeoJSONResponse(JSONResponse):
    """JSON as ``application/geo+json`` (RFC 7946 §12)."""

    media_type = "application/geo+json"


def _community(conn: Any, actor: Actor, code: str | None, *, what: str) -> Any:
    row = queries.community_row(conn, code=code)
    actor.require_community(row.id, what=what)
    return row


def _limits(request: Request) -> PlanSettings:
    return request.app.state.settings.plans


def _budget(request: Request, what: str) -> Budget:
    """The time budget of one request's plan work; it also ends when the server is stopping
    (``app.state.stopping``, set by ``geogrid serve`` on SIGTERM)."""
    seconds = _limits(request).plan_max_seconds
    return Budget(
        seconds or None,
        what=what,
        stop=getattr(request.app.state, "stopping", None),
        limit_name="GEOGRID_PLAN_MAX_SECONDS",
        field="plan",
    )


def _parse_plan(raw: bytes, limits: PlanSettings) -> None:
    """The body parsed and its grids and vertices counted on the JSON (422 ``too_complex``
    before any geometry is built or check runs; run in the thread pool)."""
    body = parse_json(raw)
    if not isinstance(body, dict) or body.get("type") != "FeatureCollection":
        raise InvalidInput("the body must be a GeoJSON FeatureCollection of grids", field="body")
    check_geojson_size(
        body, max_features=limits.plan_max_features, max_vertices=limits.plan_max_vertices
    )


async def _plan_body(request: Request) -> bytes:
    """The plan body, read no further than ``plan_max_bytes`` (413), parsed off the event loop
    and its grids and vertices counted (422)."""
    limits = _limits(request)
    raw = await read_body(request, limit=limits.plan_max_bytes)
    await run_in_threadpool(_parse_plan, raw, limits)
    return raw


def _plan_file(raw: bytes, tmp: Path, limits: PlanSettings, budget: Budget) -> store.PlanFile:
    """The body read exactly as a plan file is (same parser, same problems); its size
    checked again on the geometries read."""
    path = tmp / "plan.geojson"
    path.write_bytes(raw)
    budget.check("reading the plan")
    plan_file = store.read_plan_file(path)
    budget.check("reading the plan")
    check_plan_size(
        plan_file.grids,
        max_features=limits.plan_max_features,
        max_vertices=limits.plan_max_vertices,
    )
    return plan_file


def _community_of(engine: Any, actor: Actor, code: str | None, *, what: str) -> Any:
    with engine.connect() as conn:
        return _community(conn, actor, code, what=what)


@router.get(
    "/v1/plans",
    response_model=PlanList,
    summary="The community's boundary plans and activations",
    responses=_ERRORS,
)
def list_plans(conn: ConnDep, actor: ActorDep, community: Community = None) -> dict[str, Any]:
    actor.require(*_READ, what="reading plans")
    row = _community(conn, actor, community, what="reading plans")
    return {"community": row.code, **store.plan_history(conn, community_id=row.id)}


@router.post(
    "/v1/plans/validate",
    response_model=ValidationOut,
    summary="Validate a plan (GeoJSON body)",
    responses=_UPLOAD,
    openapi_extra=PLAN_BODY,
)
async def validate_body(
    request: Request,
    engine: EngineDep,
    actor: ActorDep,
    community: Community = None,
    tolerance_m2: Annotated[float, Query(ge=0)] = 1.0,
) -> dict[str, Any]:
    """200 for a plan that could be checked: ``valid`` says whether it passes, ``problems``
    where it fails. 413, 422 ``too_complex`` and 503 as in docs/api.md ("Limits")."""
    actor.require(*_READ, what="validating plans")
    row = await run_in_threadpool(_community_of, engine, actor, community, what="validating plans")
    body = await _plan_body(request)
    budget = _budget(request, "validating the plan")

    def run() -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp, engine.connect() as conn:
            pf = _plan_file(body, Path(tmp), _limits(request), budget)
            ref = store.PlanRef(label="request body", grids=pf.grids, plan_file=pf)
            return store.validate_ref(
                conn, community_id=row.id, ref=ref, tolerance_m2=tolerance_m2, budget=budget
            ).to_dict()

    return await run_in_threadpool(run)


@router.post(
    "/v1/plans",
    status_code=201,
    response_model=LoadedPlan,
    summary="Load a plan as a draft (GeoJSON body)",
    responses=_UPLOAD,
    openapi_extra=PLAN_BODY,
)
async def load(
    request: Request,
    engine: EngineDep,
    actor: ActorDep,
    community: Community = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """422 ``invalid_plan`` with every problem when the plan is not valid; nothing written."""
    actor.require(*_WRITE, what="loading plans")
    row = await run_in_threadpool(_community_of, engine, actor, community, what="loading plans")
    body = await _plan_body(request)
    budget = _budget(request, "validating the plan")

    def run() -> tuple[int, Any, ValidationReport]:
        with tempfile.TemporaryDirectory() as tmp, engine.begin() as conn:
            pf = _plan_file(body, Path(tmp), _limits(request), budget)
            plan_id, report = store.load_plan(
                conn,
                community_id=row.id,
                plan_file=pf,
                name=name or "loaded through the API",
                budget=budget,
                actor=actor,
            )
            return plan_id, queries.plan_row(conn, plan_id=plan_id), report

    plan_id, plan, report = await run_in_threadpool(run)
    return {
        "plan_id": plan_id,
        "version": plan.version,
        "status": plan.status,
        "base_plan_id": plan.base_plan_id,
        "grids": report.grids,
        "warnings": [p.to_dict() for p in report.problems if p.severity == "warning"],
    }


@router.get(
    "/v1/plans/{plan}/validation",
    response_model=StoredValidationOut,
    summary="Validate a stored plan",
    responses=_BUDGETED,
)
def validate_stored(
    plan: str, request: Request, conn: ConnDep, actor: ActorDep, community: Community = None
) -> dict[str, Any]:
    """``plan``: an id, vN or ``active``."""
    actor.require(*_READ, what="validating plans")
    row = _community(conn, actor, community, what="validating plans")
    ref = _stored(conn, row.id, plan)
    budget = _budget(request, "validating the plan")
    report = store.validate_ref(conn, community_id=row.id, ref=ref, budget=budget)
    return {"plan": ref.label, **report.to_dict()}


@router.get(
    "/v1/plans/{plan}/metrics",
    response_model=StoredPlanMetrics,
    summary="Balance and compactness, worst grids first",
    responses=_BUDGETED,
)
def metrics(
    plan: str,
    request: Request,
    conn: ConnDep,
    actor: ActorDep,
    community: Community = None,
    households_per_grid: Target = None,
) -> dict[str, Any]:
    actor.require(*_READ, what="reading plan metrics")
    row = _community(conn, actor, community, what="reading plan metrics")
    ref = _stored(conn, row.id, plan)
    result = store.measure_in_db(
        conn,
        community_id=row.id,
        grids=ref.grids,
        target=parse_target(households_per_grid),
        budget=_budget(request, "measuring the plan"),
    )
    return {"plan": ref.label, **result.to_dict()}


@router.get(
    "/v1/plans/{plan}/diff",
    response_model=PlanDiffOut,
    summary="What a plan changes against another",
    responses=_BUDGETED,
)
def diff(
    plan: str,
    request: Request,
    conn: ConnDep,
    actor: ActorDep,
    community: Community = None,
    against: Annotated[str, Query(description="id, vN or active")] = "active",
    limit: Annotated[
        int | None, Query(ge=0, description="Cap each list (counts are whole)")
    ] = None,
) -> dict[str, Any]:
    actor.require(*_READ, what="reading plan diffs")
    row = _community(conn, actor, community, what="reading plan diffs")
    d, a = _stored(conn, row.id, plan), _stored(conn, row.id, against)
    result = store.diff_in_db(
        conn,
        community_id=row.id,
        draft=d.grids,
        against=a.grids,
        budget=_budget(request, "diffing the plans"),
    )
    return {"draft": d.label, "against": a.label, **result.to_dict(limit=limit)}


@router.post(
    "/v1/plans/{plan}/activate",
    response_model=ActivationOut,
    summary="Activate a draft (one transaction)",
    responses=_ERRORS,
)
def activate(
    plan: str, engine: EngineDep, actor: ActorDep, community: Community = None
) -> dict[str, Any]:
    """409 when another planner activated a plan since this draft was made, or when the
    plan is already active; 422 when it does not validate. Nothing changes on failure."""
    actor.require(*_WRITE, what="activating plans")
    with engine.begin() as conn:
        row = _community(conn, actor, community, what="activating plans")
        ref = _stored(conn, row.id, plan)
        assert ref.plan_id is not None
        report = activation.activate_plan(
            conn, community_id=row.id, plan_id=ref.plan_id, actor=actor
        )
    return report.to_dict()


@router.get(
    "/v1/plans/review",
    response_model=ReviewOut,
    summary="What the last activation left to review",
    responses=_ERRORS,
)
def review(conn: ConnDep, actor: ActorDep, community: Community = None) -> dict[str, Any]:
    """Clipped fields (notes name the cut-off households), branch mappings, acting leads."""
    actor.require(*_READ, what="reading the plan review")
    row = _community(conn, actor, community, what="reading the plan review")
    return store.review(conn, community_id=row.id)


@router.post(
    "/v1/plans/review",
    response_model=ReviewClearedOut,
    summary="Mark review items done",
    responses=_ERRORS,
)
def clear_review(
    engine: EngineDep,
    actor: ActorDep,
    body: Annotated[
        dict[str, Any], Body(examples=[{"fields": [135]}, {"branches": [3]}, {"all": True}])
    ],
    community: Community = None,
) -> dict[str, Any]:
    """Body: ``fields`` (ids), ``branches`` (ids) or ``all``: true. Returns what was cleared
    and what is left."""
    actor.require(Role.PLANNER, Role.OFFICIAL, Role.ADMIN, what="marking review items done")
    known_fields(body, ("fields", "branches", "all"))

    def ids(name: str) -> list[int] | None:
        value = body.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
            raise InvalidInput(f"{name} must be a list of ids", field=name)
        return value

    with engine.begin() as conn:
        row = _community(conn, actor, community, what="marking review items done")
        cleared = store.clear_review(
            conn,
            community_id=row.id,
            fields=ids("fields"),
            branches=ids("branches"),
            everything=body.get("all") is True,
            actor=actor,
        )
        return {"cleared": cleared, **store.review(conn, community_id=row.id)}


@router.delete(
    "/v1/plans/{plan}", response_model=DeletedPlan, summary="Delete a draft", responses=_ERRORS
)
def delete(
    plan: str, engine: EngineDep, actor: ActorDep, community: Community = None
) -> dict[str, Any]:
    """Drafts only: 409 for an active or retired plan (history is kept)."""
    actor.require(*_WRITE, what="deleting drafts")
    with engine.begin() as conn:
        row = _community(conn, actor, community, what="deleting drafts")
        ref = _stored(conn, row.id, plan)
        assert ref.plan_id is not None
        gone = store.delete_draft(conn, community_id=row.id, plan_id=ref.plan_id, actor=actor)
    return {"deleted": ref.plan_id, "version": gone.version}


@router.post(
    "/v1/plans/rollback",
    response_model=ActivationOut,
    summary="Re-activate the previous plan",
    responses=_ERRORS,
)
def rollback(engine: EngineDep, actor: ActorDep, community: Community = None) -> dict[str, Any]:
    actor.require(*_WRITE, what="rolling back plans")
    with engine.begin() as conn:
        row = _community(conn, actor, community, what="rolling back plans")
        report = activation.rollback_plan(conn, community_id=row.id, actor=actor)
    return report.to_dict()


@router.post(
    "/v1/plans/propose",
    response_model=ProposeOut,
    summary="Draw a balanced redraw automatically",
    responses=_BUDGETED,
)
def propose(
    request: Request,
    conn: ConnDep,
    actor: ActorDep,
    community: Community = None,
    households_per_grid: Target = None,
    grids: Annotated[
        int | None, Query(ge=1, description="Exactly K grids instead of a range")
    ] = None,
    seed: int = 0,
    steps: Annotated[int | None, Query(ge=0, le=5000)] = None,
) -> dict[str, Any]:
    """The proposal as a GeoJSON FeatureCollection (``plan``), with its metrics against the
    active plan. Nothing is stored: POST the ``plan`` to ``/v1/plans`` to load it as a draft."""
    actor.require(*_WRITE, what="proposing plans")
    row = _community(conn, actor, community, what="proposing plans")
    if households_per_grid is not None and grids is not None:
        raise InvalidInput(
            "give households_per_grid or grids, not both", field="households_per_grid"
        )
    rng = parse_target(households_per_grid) if grids is None else None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "proposal.geojson"
        result = propose_in_db(
            conn,
            community_id=row.id,
            target=rng,
            grids=grids,
            seed=seed,
            steps=steps,
            out=path,
            budget=_budget(request, "proposing a plan"),
        )
        result["plan"] = json.loads(path.read_text(encoding="utf-8"))
    result.pop("file", None)
    return result


@router.get(
    "/v1/plans/{plan}/geojson",
    response_class=GeoJSONResponse,
    summary="A stored plan as GeoJSON",
    responses={
        200: {
            "model": PlanFeatureCollection,
            "description": "The plan file (RFC 7946, WGS 84), as `geogrid plan export` writes it",
        },
        **_JSON_ERRORS,
    },
)
def export(
    plan: str, conn: ConnDep, actor: ActorDep, community: Community = None
) -> GeoJSONResponse:
    actor.require(*_READ, what="reading plans")
    row = _community(conn, actor, community, what="reading plans")
    ref = _stored(conn, row.id, plan)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_plan_geojson(
            Path(tmp) / "plan.geojson",
            ref.grids.rename(columns={"lead_member_id": "lead_member"}),
            name=f"{row.code} {ref.label}",
            provenance={"community_code": row.code, "exported_from": ref.label},
        )
        doc = json.loads(path.read_text(encoding="utf-8"))
    return GeoJSONResponse(doc)


@router.get(
    "/maps/plan",
    response_class=HTMLResponse,
    summary="Plan map: a draft over the active plan, what would move",
    responses={
        200: {"description": "An HTML page (Folium/Leaflet); not cached"},
        **_JSON_ERRORS,
        500: {**_JSON_ERRORS[422], "description": "map assets not installed"},
    },
)
def plan_map(
    request: Request,
    conn: ConnDep,
    actor: ActorDep,
    map_settings: MapSettingsDep,
    draft: Annotated[str, Query(min_length=1, max_length=32, description="id or vN of the draft")],
    against: Annotated[str, Query(description="id, vN or active")] = "active",
    community: Community = None,
    lang: Annotated[
        str | None,
        Query(pattern="^(zh|en)$", description="default: the viewer's (cookie), else zh"),
    ] = None,
) -> HTMLResponse:
    actor.require(*_READ, what="the plan map")
    row = _community(conn, actor, community, what="the plan map")
    m = plan_map_in_db(
        conn,
        community_id=row.id,
        draft=draft,
        against=against,
        lang=lang or lang_of(request),
        files=False,
    )
    page = render_html(m, assets=ASSETS_URL, assets_dir=map_settings.map_assets_dir)
    page = with_who_box(page, request, actor)
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


def _stored(conn: Any, community_id: int, ref: str) -> store.PlanRef:
    """Only stored plans (id, vN, active) through the API: never a server-side file path."""
    return store.resolve_plan(conn, community_id=community_id, ref=ref, files=False)

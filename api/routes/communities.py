"""``/v1/communities``: the communities (public), and their import by an admin.

The import is ``geogrid import communities`` over HTTP: the same checks, the same report, one
transaction, and a dry run unless ``commit=true``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from api.auth import ActorDep
from api.deps import ConnDep, EngineDep, SettingsDep, json_body
from api.schemas.common import ErrorEnvelope
from api.schemas.communities import CommunitiesImportOut, CommunityList
from geogrid.db import queries
from geogrid.db.models import Role
from geogrid.errors import InvalidInput
from geogrid.io.importer import import_layer

router = APIRouter(prefix="/v1/communities", tags=["communities"])

#: A district's boundaries as GeoJSON stay well under this (200 communities ≈ 5 MB).
MAX_BODY_BYTES = 20_000_000

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorEnvelope, "description": "No key, or a wrong or revoked one"},
    403: {"model": ErrorEnvelope, "description": "Not an admin key limited to no community"},
    413: {"model": ErrorEnvelope, "description": f"A body over {MAX_BODY_BYTES:,} bytes"},
    422: {
        "model": ErrorEnvelope,
        "description": "import_refused: details.problems lists every fault (feature, field)",
    },
}
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "description": "A GeoJSON FeatureCollection"},
                "example": {
                    "type": "FeatureCollection",
                    "features": [
                        {
                            "type": "Feature",
                            "properties": {"code": "441302011006", "name": "示例社区"},
                            "geometry": {
                                "type": "Polygon",
                                "coordinates": [
                                    [
                                        [114.40, 23.10],
                                        [114.41, 23.10],
                                        [114.41, 23.11],
                                        [114.40, 23.10],
                                    ]
                                ],
                            },
                        }
                    ],
                },
            }
        },
    }
}


@router.get("", summary="The communities (public)", response_model=CommunityList)
def list_communities(
    conn: ConnDep,
    subdistrict: Annotated[
        str | None, Query(description="Only this subdistrict (its code)", examples=["441302011"])
    ] = None,
    district: Annotated[
        str | None, Query(description="Only this district (its code)", examples=["441302"])
    ] = None,
) -> dict[str, Any]:
    rows = queries.community_listing(conn, subdistrict_code=subdistrict, district_code=district)
    return {"communities": [r._asdict() for r in rows]}


@router.post(
    "",
    summary="Create or update communities from GeoJSON (admin; a dry run unless commit=true)",
    response_model=CommunitiesImportOut,
    responses=_ERRORS,
    openapi_extra=_BODY,
)
async def import_communities(
    request: Request,
    engine: EngineDep,
    actor: ActorDep,
    settings: SettingsDep,
    commit: Annotated[bool, Query(description="Write; otherwise only report")] = False,
) -> dict[str, Any]:
    """Columns as ``geogrid import communities`` (docs/api.md): ``code``, ``name``, …"""
    actor.require(Role.ADMIN, what="importing communities")
    actor.require_unscoped(what="importing communities")
    body = await json_body(request, limit=MAX_BODY_BYTES)
    if not isinstance(body, dict) or body.get("type") != "FeatureCollection":
        raise InvalidInput("the body must be a GeoJSON FeatureCollection", field="body")

    def run() -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "communities.geojson"
            path.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
            with engine.connect() as conn, conn.begin() as tx:
                report = import_layer(
                    conn,
                    layer="communities",
                    path=path,
                    default_timezone=settings.service.timezone,
                    actor=actor,
                )
                if commit:
                    tx.commit()
                else:
                    tx.rollback()
        return {**report.to_dict(), "file": "request body", "committed": commit}

    return await run_in_threadpool(run)

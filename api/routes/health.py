"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

import geogrid
from api.deps import EngineDep
from api.errors import envelope
from api.schemas.common import ErrorEnvelope
from api.schemas.health import HealthDegraded, HealthOut
from geogrid.db import migrate
from geogrid.db.engine import backend_of

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthOut,
    summary="Is the service up and its database ready?",
    responses={
        503: {
            "model": HealthDegraded | ErrorEnvelope,
            "description": "The database cannot be reached (error envelope), or its schema "
            "is not up to date (status degraded, with a message)",
        }
    },
)
def health(engine: EngineDep) -> Any:
    """``ok`` with the backend and schema revision; 503 when the database is not usable."""
    body: dict[str, Any] = {
        "status": "ok",
        "version": geogrid.__version__,
        "backend": backend_of(engine).value,
    }
    try:
        revision = migrate.current_revision(engine)
    except Exception:  # the database is down: say so, don't crash
        return JSONResponse(
            envelope("database_unavailable", "the database cannot be reached"), status_code=503
        )
    body["schema_revision"] = revision
    if revision != migrate.head_revision():
        body["status"] = "degraded"
        body["message"] = "schema is not up to date: run `geogrid db init`"
        return JSONResponse(body, status_code=503)
    return body

"""Details of the response models of the admin, directory, health and requests routes: the
photo route's media types, health's 503, members' personal fields (test_response_models.py
checks that every JSON route has a model; no database needed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute

from tests.requests_factories import make_app

MODULES = (
    "api.routes.admin",
    "api.routes.directory",
    "api.routes.health",
    "api.routes.kpis",
    "api.routes.summary",
    "api.routes.requests",
)
#: Routes that answer something other than JSON (their media types are declared).
NOT_JSON = {("GET", "/v1/media/{media_id}")}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_app(f"sqlite:///{Path(tmp_path_factory.mktemp('rm')) / 'unused.db'}")


def _routes(app: Any) -> list[tuple[str, str, APIRoute]]:
    """(method, path, route) of the endpoints of MODULES, walking included routers."""

    def walk(routes: Any, prefix: str = "") -> Iterator[tuple[str, str, APIRoute]]:
        for route in routes:
            if hasattr(route, "original_router"):
                yield from walk(route.original_router.routes, prefix + route.include_context.prefix)
            elif isinstance(route, APIRoute) and route.endpoint.__module__ in MODULES:
                for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                    yield method, prefix + route.path, route

    return list(walk(app.router.routes))


def test_media_route_declares_its_media_types(app: Any) -> None:
    responses = app.openapi()["paths"]["/v1/media/{media_id}"]["get"]["responses"]
    kinds = set(responses["200"]["content"])
    assert kinds == {"image/jpeg", "image/png", "image/webp", "application/octet-stream"}
    assert {"401", "404"} <= set(responses)


def test_health_documents_its_503(app: Any) -> None:
    health = app.openapi()["paths"]["/health"]["get"]["responses"]
    assert health["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HealthOut"
    }
    refs = {s["$ref"] for s in health["503"]["content"]["application/json"]["schema"]["anyOf"]}
    assert refs == {"#/components/schemas/HealthDegraded", "#/components/schemas/ErrorEnvelope"}


def test_members_keep_personal_fields_out_unless_given(app: Any) -> None:
    """name and phone appear only when the library gives them (personal=true)."""
    from api.schemas.directory import MemberOut

    route = next(r for m, p, r in _routes(app) if (m, p) == ("GET", "/v1/members"))
    assert route.response_model_exclude_unset
    row = {
        "id": 1,
        "community": "441302011005",
        "display_name": "张*明",
        "kind": "resident",
        "branch": None,
        "active": True,
        "fields": [],
        "leads_grids": [],
    }
    assert MemberOut.model_validate(row).model_dump(exclude_unset=True) == row
    personal = {**row, "name": "张*明", "phone": None}
    assert MemberOut.model_validate(personal).model_dump(exclude_unset=True) == personal

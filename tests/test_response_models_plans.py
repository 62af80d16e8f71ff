"""The documented models of the routes that render their own Response (Open311, plan GeoJSON)
describe their bodies exactly: a body read into its model and written back is the same JSON,
key for key and in the same order. And the OpenAPI document names each route's media types:
Open311 JSON and XML, GeoJSON, HTML pages with JSON errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, RootModel
from sqlalchemy import Engine

from api.schemas.open311 import (
    CreatedRequests,
    Discovery,
    Open311Errors,
    ServiceDefinition,
    ServiceList,
    ServiceRequests,
    TokenAnswers,
)
from api.schemas.plans import PlanFeatureCollection
from tests.requests_factories import IN_FIELD, World, new_key, set_attributes

SEVERITY = [
    {
        "code": "severity",
        "datatype": "singlevaluelist",
        "required": True,
        "description": "How bad is it?",
        "values": [{"key": "low", "name": "不严重"}, {"key": "high", "name": "严重"}],
    },
]


def _same(model: type[BaseModel | RootModel[Any]], text: str) -> None:
    """``text`` read into ``model`` and written back as the routes write JSON: unchanged."""
    dumped = model.model_validate_json(text).model_dump(mode="json", by_alias=True)
    assert json.dumps(dumped, ensure_ascii=False, separators=(",", ":")) == text


def test_open311_json_bodies_are_their_models(
    client: TestClient, engine: Engine, world: World
) -> None:
    set_attributes(engine, "sewer_blocked", SEVERITY)
    key = new_key(engine, "public", name="open311 app")
    base = "/open311/v2"
    _same(Discovery, client.get(f"{base}/discovery.json").text)
    _same(ServiceList, client.get(f"{base}/services.json").text)
    definition = client.get(f"{base}/services/sewer_blocked.json")
    assert definition.json()["attributes"], "the definition should have attributes"
    _same(ServiceDefinition, definition.text)
    form = {
        "api_key": key,
        "service_code": "sewer_blocked",
        "lat": str(IN_FIELD[1]),
        "long": str(IN_FIELD[0]),
        "attribute[severity]": "high",
        "description": "下水道堵塞",
    }
    created = client.post(f"{base}/requests.json", data=form)
    assert created.status_code == 201
    _same(CreatedRequests, created.text)
    rid, token = created.json()[0]["service_request_id"], created.json()[0]["token"]
    _same(ServiceRequests, client.get(f"{base}/requests.json").text)
    one = client.get(f"{base}/requests/{rid}.json")
    assert one.status_code == 200 and len(one.json()) == 1
    _same(ServiceRequests, one.text)
    _same(TokenAnswers, client.get(f"{base}/tokens/{token}.json").text)
    for path in ("/requests/999999.json", "/services/nope.json", "/requests.json?status=x"):
        _same(Open311Errors, client.get(base + path).text)
    _same(Open311Errors, client.post(f"{base}/requests.json", data={}).text)


def test_plan_geojson_is_its_model(client: TestClient, engine: Engine, world: World) -> None:
    r = client.get("/v1/plans/active/geojson", headers={"X-API-Key": new_key(engine, "planner")})
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    _same(PlanFeatureCollection, r.text)


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    from api.main import create_app

    return create_app().openapi()


def _content(openapi: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    return dict(openapi["paths"][path][method]["responses"][status].get("content", {}))


def test_open311_routes_answer_json_or_xml(openapi: dict[str, Any]) -> None:
    paths = [p for p in openapi["paths"] if p.startswith("/open311/")]
    assert len(paths) == 6
    for path in paths:
        for method in openapi["paths"][path]:
            ok = "201" if method == "post" else "200"
            for status in (ok, "404"):
                content = _content(openapi, path, method, status)
                assert set(content) == {"application/json", "text/xml"}, (method, path, status)
                assert content["application/json"]["schema"]["$ref"], (method, path, status)


def test_html_pages_answer_html_and_json_errors(openapi: dict[str, Any]) -> None:
    for path in ("/maps/coverage", "/maps/hotspots", "/maps/plan"):
        assert list(_content(openapi, path, "get", "200")) == ["text/html"]
        for status in ("401", "403", "404", "422", "500"):
            assert list(_content(openapi, path, "get", status)) == ["application/json"], (
                path,
                status,
            )

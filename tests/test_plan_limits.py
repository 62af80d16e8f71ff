"""Bounded plan work (issue 14): plan bodies capped in bytes before they are read whole,
grids and vertices counted before any check, validation, metrics, diff and propose on a time
budget that also ends them when the server stops — in the library and through
``/v1/plans`` on both backends. Nothing here measures wall-clock time: budgets are exhausted
by an injected clock, a tiny budget, or a set stop event."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from shapely.geometry import Polygon, box, mapping
from sqlalchemy import Engine
from typer.testing import CliRunner

from api.cli import app as cli
from api.main import create_app
from geogrid.budget import Budget
from geogrid.errors import ShuttingDown, TooComplex
from geogrid.planning.diff import diff_plans
from geogrid.planning.limits import check_geojson_size, check_plan_size
from geogrid.planning.metrics import measure_plan
from geogrid.planning.validate import validate_plan
from geogrid.settings import DatabaseSettings, PlanSettings, RequestsSettings, Settings
from tests.factories import X0, Y0, D, square_grids
from tests.requests_factories import World, new_key

C = "441302011099"
COMMUNITY = box(X0, Y0, X0 + 2 * D, Y0 + 2 * D)


def _collection(grids: list[tuple[str, Any]]) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"code": c}, "geometry": mapping(g)} for c, g in grids
        ],
    }


def _frame(grids: list[tuple[str, Any]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": [c for c, _ in grids]}, geometry=[g for _, g in grids], crs="EPSG:4326"
    )


class Ticks:
    """A clock that moves only when told: 0 until ``at`` calls, then far past any budget."""

    def __init__(self, at: int) -> None:
        self.calls, self.at = 0, at

    def __call__(self) -> float:
        self.calls += 1
        return 0.0 if self.calls <= self.at else 1e9


# --- library ---------------------------------------------------------------------------------


def test_a_budget_ends_on_its_deadline_or_its_stop_event_and_names_the_step() -> None:
    Budget(None).check("anything")
    with pytest.raises(TooComplex) as exc:
        Budget(5, what="the work", limit_name="X", field="plan", clock=Ticks(1)).check("the gaps")
    assert exc.value.field == "plan" and exc.value.details["step"] == "the gaps"
    assert str(exc.value) == "the work took longer than its budget of 5 s (X); stopped at the gaps"
    stop = threading.Event()
    budget = Budget(None, what="the work", stop=stop)
    budget.check()
    stop.set()
    with pytest.raises(ShuttingDown, match="shutting down: the work was stopped at step 3"):
        budget.check("step 3")


@pytest.mark.parametrize("allowed_checks", [1, 3, 6])
def test_validation_stops_when_its_budget_is_spent(allowed_checks: int) -> None:
    # Overlapping grids take the pairwise path, whose chunks check the budget too.
    grids = _frame([*square_grids(), (f"{C}005", box(X0, Y0, X0 + 1.5 * D, Y0 + 1.5 * D))])
    assert not validate_plan(grids, COMMUNITY, community_code=C).valid  # unbounded: a report
    clock = Ticks(allowed_checks + 1)  # one call when the budget is made
    with pytest.raises(TooComplex, match="stopped at the"):
        validate_plan(grids, COMMUNITY, community_code=C, budget=Budget(60, clock=clock))


def test_a_stop_event_ends_validation_metrics_and_diff() -> None:
    grids = _frame(square_grids())
    stop = threading.Event()
    stop.set()
    budget = Budget(None, stop=stop)
    with pytest.raises(ShuttingDown):
        validate_plan(grids, COMMUNITY, budget=budget)
    with pytest.raises(ShuttingDown):
        measure_plan(grids, budget=budget)
    with pytest.raises(ShuttingDown):
        diff_plans(grids, grids, budget=budget)
    # Unset, the same work runs to the end.
    assert validate_plan(grids, COMMUNITY, budget=Budget(60)).valid
    assert measure_plan(grids, budget=Budget(60)).plan["grids"] == 4
    assert diff_plans(grids, grids, budget=Budget(60)).grids_unchanged == 4


def test_plan_size_is_counted_before_any_check() -> None:
    grids = _frame(square_grids())  # 4 boxes of 5 vertices (the ring closed)
    check_plan_size(grids, max_features=4, max_vertices=20)
    with pytest.raises(TooComplex, match=r"^the plan has 4 features; at most 3$") as exc:
        check_plan_size(grids, max_features=3, max_vertices=20)
    assert exc.value.field == "features" and exc.value.details == {"count": 4, "limit": 3}
    with pytest.raises(TooComplex, match=r"^the plan has 20 vertices; at most 19$") as exc:
        check_plan_size(grids, max_features=4, max_vertices=19)
    assert exc.value.field == "vertices"


def test_geojson_size_is_counted_on_the_json_and_stops_past_the_limit() -> None:
    square = mapping(box(0, 0, 1, 1))  # 5 positions
    multi = {"type": "MultiPolygon", "coordinates": [square["coordinates"]] * 2}  # 10
    collection = {"type": "GeometryCollection", "geometries": [square, multi]}  # 15
    body = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "geometry": g} for g in (square, multi, collection)]
        # malformed features count nothing here: the reader reports them with their index
        + [{"type": "Feature", "geometry": None}, "x", {"geometry": {"coordinates": 7}}],
    }
    check_geojson_size(body, max_features=6, max_vertices=30)
    with pytest.raises(TooComplex, match=r"^the plan has 6 features; at most 5$"):
        check_geojson_size(body, max_features=5, max_vertices=30)
    with pytest.raises(TooComplex, match=r"^the plan has more than 29 vertices$") as exc:
        check_geojson_size(body, max_vertices=29)
    assert exc.value.field == "vertices" and exc.value.details == {"limit": 29}

    # The walk stops at the first position past the limit: a ring of 10 million positions
    # is refused after reading 4 of them.
    seen = 0

    class Counting(list[Any]):
        def __iter__(self) -> Iterator[Any]:
            nonlocal seen
            for item in super().__iter__():
                seen += 1
                yield item

    huge = Counting([[0.0, 0.0]] * 10_000_000)
    with pytest.raises(TooComplex):
        check_geojson_size(
            {"features": [{"geometry": {"type": "Polygon", "coordinates": [huge]}}]},
            max_vertices=3,
        )
    assert seen == 4


# --- API, both backends --------------------------------------------------------------------


def _app(db_url: str, **plans: Any) -> FastAPI:
    return create_app(
        Settings(
            database=DatabaseSettings(database_url=db_url),
            requests=RequestsSettings(webhook_poll_seconds=0),
            plans=PlanSettings(**plans),
        )
    )


@pytest.fixture
def planner(engine: Engine, world: World) -> dict[str, str]:
    return {"X-API-Key": new_key(engine, "planner")}


@pytest.fixture
def limited(db_url: str, world: World) -> Iterator[TestClient]:

    with TestClient(
        _app(db_url, plan_max_bytes=5000, plan_max_features=4, plan_max_vertices=20)
    ) as c:
        yield c


def _raw_post(
    client: TestClient, path: str, headers: dict[str, str], chunks: Iterator[bytes]
) -> tuple[int, dict[str, Any], int]:
    """POST ``chunks`` straight to the ASGI app, as a server would hand them over one by one;
    returns the status, the JSON body and how many chunks the app asked for."""
    asked = 0
    answer: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal asked
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        asked += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            *((k.lower().encode(), v.encode()) for k, v in headers.items()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    assert client.portal is not None
    client.portal.call(client.app, scope, receive, send)
    return answer["status"], json.loads(answer["body"]), asked


@pytest.mark.parametrize("path", ["/v1/plans/validate", "/v1/plans"])
def test_a_body_over_the_cap_is_refused_413_without_being_read_whole(
    limited: TestClient, planner: dict[str, str], path: str
) -> None:
    def endless() -> Iterator[bytes]:
        yield b'{"type": "FeatureCollection", "features": ['
        while True:
            yield b" " * 1000

    status, body, asked = _raw_post(limited, path, planner, endless())
    assert status == 413 and body["error"]["code"] == "too_large"
    assert "5,000 bytes" in body["error"]["message"]
    assert asked <= 7  # 5,000 bytes and one chunk more, then no further
    # A declared length over the cap is refused before a byte is read.
    declared = {**planner, "content-length": "54000000"}
    status, body, asked = _raw_post(limited, path, declared, endless())
    assert (status, body["error"]["code"], asked) == (413, "too_large", 0)


def test_too_many_features_or_vertices_are_refused_422_with_the_numbers(
    limited: TestClient, planner: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Refused on the JSON: the body is never written out and read as a plan file.
    from geogrid.planning import store

    def not_read(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a refused plan was read as a file")

    monkeypatch.setattr(store, "read_plan_file", not_read)
    five = [*square_grids(), (f"{C}005", box(X0, Y0, X0 + D / 2, Y0 + D / 2))]
    for path in ("/v1/plans/validate", "/v1/plans"):
        r = limited.post(path, json=_collection(five), headers=planner)
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "too_complex" and error["field"] == "features"
        assert error["message"] == "the plan has 5 features; at most 4"
        assert error["details"] == {"count": 5, "limit": 4}
    # Four grids, one of them drawn with 9 vertices: 24 in all.
    detailed = square_grids()
    x0, y0, x1, y1 = detailed[0][1].bounds
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    ring = [(x0, y0), (xm, y0), (x1, y0), (x1, ym), (x1, y1), (xm, y1), (x0, y1), (x0, ym)]
    detailed[0] = (detailed[0][0], Polygon(ring))
    r = limited.post("/v1/plans", json=_collection(detailed), headers=planner)
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "vertices"
    # Counted on the JSON and stopped at the first vertex past the limit.
    assert r.json()["error"]["message"] == "the plan has more than 20 vertices"
    assert r.json()["error"]["details"] == {"limit": 20}
    # Within every limit: validated and loaded as before.
    monkeypatch.undo()
    ok = limited.post("/v1/plans/validate", json=_collection(square_grids()), headers=planner)
    assert ok.status_code == 200 and ok.json()["valid"] is True
    loaded = limited.post("/v1/plans", json=_collection(square_grids()), headers=planner)
    assert loaded.status_code == 201 and loaded.json()["grids"] == 4


def test_a_spent_time_budget_is_422_too_complex_on_every_plan_route(
    db_url: str, world: World, planner: dict[str, str]
) -> None:
    # A microsecond: spent before the first check (the body is parsed first).
    with TestClient(_app(db_url, plan_max_seconds=1e-6)) as c:
        body = _collection(square_grids())
        for r in (
            c.post("/v1/plans/validate", json=body, headers=planner),
            c.post("/v1/plans", json=body, headers=planner),
            c.get("/v1/plans/active/validation", headers=planner),
            c.get("/v1/plans/active/metrics", headers=planner),
            c.get("/v1/plans/active/diff", headers=planner),
            c.post("/v1/plans/propose", headers=planner),
        ):
            assert r.status_code == 422, (r.request.url, r.text)
            error = r.json()["error"]
            assert error["code"] == "too_complex" and error["field"] == "plan"
            assert "GEOGRID_PLAN_MAX_SECONDS" in error["message"]
            assert "; stopped at " in error["message"]
        assert len(c.get("/v1/plans", headers=planner).json()["plans"]) == 1  # none loaded


def test_plan_work_ends_503_when_the_server_is_stopping(
    client: TestClient, planner: dict[str, str]
) -> None:
    body = _collection(square_grids())
    assert client.post("/v1/plans/validate", json=body, headers=planner).status_code == 200
    client.app.state.stopping.set()  # type: ignore[attr-defined]
    for r in (
        client.post("/v1/plans/validate", json=body, headers=planner),
        client.get("/v1/plans/active/metrics", headers=planner),
    ):
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "shutting_down"


def test_the_cli_applies_no_plan_limits(
    db_url: str, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files from the planner's own disk are trusted: GEOGRID_PLAN_* bound the API only."""
    path = tmp_path / "plan.geojson"
    path.write_text(json.dumps(_collection(square_grids())), encoding="utf-8")
    for name in ("PLAN_MAX_BYTES", "PLAN_MAX_FEATURES", "PLAN_MAX_VERTICES"):
        monkeypatch.setenv(f"GEOGRID_{name}", "1")
    monkeypatch.setenv("GEOGRID_PLAN_MAX_SECONDS", "0.000001")
    r = CliRunner().invoke(cli, ["plan", "validate", str(path), "--database", db_url, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["valid"] is True

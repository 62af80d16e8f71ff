"""``geogrid plan …`` on the demo community, both backends: a planner takes the demo from its
nine grids to an adopted balanced redraw with the command line alone, and back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from shapely.geometry import box
from sqlalchemy import Engine
from typer.testing import CliRunner

from api.cli import app
from geogrid.db import queries as q
from geogrid.db.engine import make_engine
from geogrid.demo.generate import COMMUNITY_CODE, DemoData
from geogrid.planning.files import write_plan_geojson
from tests.conftest import fresh_database

runner = CliRunner()
pytestmark = pytest.mark.slow


@pytest.fixture
def demo_copy(
    backend: str,
    _templates: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    demo_data: DemoData,
) -> Iterator[tuple[str, Engine]]:
    """A demo database of our own: these tests change it."""
    from geogrid.demo.load import load_demo

    url, drop = fresh_database(backend, _templates, tmp_path_factory)
    engine = make_engine(url)
    with engine.begin() as conn:
        load_demo(conn, demo_data)
    yield url, engine
    engine.dispose()
    drop()


def _run(url: str, *args: str) -> Any:
    r = runner.invoke(app, ["plan", *args, "--database", url])
    return r


def _json(url: str, *args: str) -> Any:
    r = _run(url, *args, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_from_the_current_plan_to_an_adopted_redraw_and_back(
    demo_copy: tuple[str, Engine], tmp_path: Path
) -> None:
    url, engine = demo_copy
    with engine.connect() as conn:
        cid = q.community_row(conn, code=COMMUNITY_CODE).id
        first = q.active_plan(conn, community_id=cid).id

    checked = _run(url, "validate", "active")
    assert checked.exit_code == 0 and "valid" in checked.stdout

    before = _json(url, "measure")
    assert before["plan"]["grids"] == 9 and before["plan"]["households"] == 12_500
    assert before["plan"]["in_target"] == 0  # ~1,400 households each, far above 500

    out = tmp_path / "boundaries" / "proposal.geojson"
    proposed = _json(url, "propose", "--out", str(out), "--seed", "3", "--steps", "30")
    assert out.is_file()
    assert proposed["proposed"]["plan"]["in_target"] == proposed["proposed"]["plan"]["grids"]
    assert 25 <= proposed["proposed"]["plan"]["grids"] <= 40
    assert proposed["current"]["plan"]["grids"] == 9
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["geogrid"]["seed"] == 3 and doc["geogrid"]["based_on_plan"]["id"] == first

    report = _json(url, "validate", str(out))
    assert report["valid"] is True, report["problems"]

    diff = _json(url, "diff", str(out))
    assert diff["counts"]["grids_added"] > 0
    assert diff["counts"]["households"] == 12_500

    dry = _run(url, "load", str(out))
    assert dry.exit_code == 0 and "dry run" in dry.output
    with engine.connect() as conn:
        assert len(q.plans(conn, community_id=cid)) == 1
    loaded = _run(url, "load", str(out), "--commit")
    assert loaded.exit_code == 0, loaded.output
    draft = int(loaded.stdout.strip().splitlines()[-1])

    dry = _json(url, "activate", str(draft))
    assert dry["plan_id"] == draft
    with engine.connect() as conn:
        assert q.active_plan(conn, community_id=cid).id == first
    done = _json(url, "activate", str(draft), "--commit")
    assert done["previous_plan_id"] == first
    assert done["assignment"]["households_in_grids"] == 12_500
    with engine.connect() as conn:
        assert q.active_plan(conn, community_id=cid).id == draft

    after = _json(url, "measure")
    assert after["plan"]["grids"] == proposed["proposed"]["plan"]["grids"]
    assert after["plan"]["in_target"] == after["plan"]["grids"]
    assert after["plan"]["households"] == 12_500

    todo = _json(url, "review")
    assert todo["acting_leads"] and len(todo["branches"]) >= 4
    assert len(todo["fields"]) == done["counts"]["fields_cut"]
    marked = _run(url, "review", "--all")
    assert marked.exit_code == 0 and "dry run" in marked.output
    assert _json(url, "review", "--all", "--commit")["branches"] == []

    listed = _json(url, "list")
    assert [p["status"] for p in listed["plans"]] == ["active", "retired"]

    back = _json(url, "rollback", "--commit")
    assert back["plan_id"] == first
    with engine.connect() as conn:
        assert q.active_plan(conn, community_id=cid).id == first


def test_bad_plans_are_refused_with_precise_reasons(
    demo_copy: tuple[str, Engine], tmp_path: Path
) -> None:
    url, engine = demo_copy
    exported = tmp_path / "current.geojson"
    assert _run(url, "export", "active", "--out", str(exported)).exit_code == 0
    grids = gpd.read_file(exported)
    # Grow grid 001 by 100 m east into its neighbour, and drop grid 009: overlap and gap.
    first = grids.geometry.iloc[0]
    _x0, y0, x1, y1 = first.bounds
    grids.loc[0, "geometry"] = first.union(box(x1 - 0.001, y0, x1 + 0.001, y1))
    grids = grids.iloc[:-1]
    bad = write_plan_geojson(tmp_path / "bad.geojson", grids, name="bad")

    r = _run(url, "validate", str(bad))
    assert r.exit_code == 1
    assert "overlap" in r.stdout and "gap" in r.stdout
    assert f"{COMMUNITY_CODE}001" in r.stdout

    with engine.connect() as conn:
        cid = q.community_row(conn, code=COMMUNITY_CODE).id
        plans_before = len(q.plans(conn, community_id=cid))
    r = _run(url, "load", str(bad), "--commit")
    assert r.exit_code == 1 and "not valid" in r.output
    r = _run(url, "activate", str(bad), "--commit")
    assert r.exit_code == 1
    with engine.connect() as conn:
        assert len(q.plans(conn, community_id=cid)) == plans_before


def test_infeasible_redraws_say_why_and_the_plan_map_is_written(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    """On the small requests community (three households): no whole number of grids of 5–6
    households holds 3; the plan map of a stored plan is one standalone page."""
    from tests.requests_factories import build_world

    build_world(engine)
    out = tmp_path / "never.geojson"
    r = _run(db_url, "propose", "--out", str(out), "--households-per-grid", "5:6")
    assert r.exit_code == 1 and not out.exists()
    assert "5" in r.output and "6" in r.output and "grids" in r.output
    both = _run(
        db_url, "propose", "--out", str(out), "--households-per-grid", "1:2", "--grids", "2"
    )
    assert both.exit_code == 1 and "not both" in both.output

    page = tmp_path / "plan.html"
    drawn = _run(db_url, "map", "active", "--out", str(page))
    assert drawn.exit_code == 0, drawn.output
    html = page.read_text(encoding="utf-8")
    assert "geogrid-draft" in html and "<script" in html and "unpkg.com" not in html


def test_delete_a_draft_is_a_dry_run_without_commit(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    from tests.requests_factories import build_world

    world = build_world(engine)
    exported = tmp_path / "copy.geojson"
    assert _run(db_url, "export", "active", "--out", str(exported)).exit_code == 0
    loaded = _run(db_url, "load", str(exported), "--commit")
    draft = int(loaded.stdout.strip().splitlines()[-1])
    dry = _run(db_url, "delete", str(draft))
    assert dry.exit_code == 0 and "would delete" in dry.stdout
    with engine.connect() as conn:
        assert len(q.plans(conn, community_id=world.community_id)) == 2
    assert _run(db_url, "delete", str(draft), "--commit").exit_code == 0
    refused = _run(db_url, "delete", str(world.plan_id), "--commit")
    assert refused.exit_code == 1 and "only drafts" in refused.output
    with engine.connect() as conn:
        assert [p.id for p in q.plans(conn, community_id=world.community_id)] == [world.plan_id]

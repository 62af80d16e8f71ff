"""Drafts in the database: load, activate in one transaction, roll back, two planners — on
both backends, on the small requests community (tests.requests_factories)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import MultiPolygon, box
from sqlalchemy import Engine, select, update

from geogrid.access import Actor
from geogrid.assign import assign_community
from geogrid.db import models as m
from geogrid.db import queries as q
from geogrid.errors import Conflict, InvalidInput, InvalidPlan
from geogrid.planning import activation, store
from geogrid.planning.files import write_plan_geojson
from geogrid.requests.workflow import Intake, receive
from tests.factories import X0, Y0, D, square_grids
from tests.requests_factories import IN_GRID_NO_FIELD, World, build_world

C = "441302011099"
#: The boundary between 001 (NW) and 002 (NE) moved 0.002° east: 001 grows, 002 shrinks.
SHIFT = X0 + D + 0.002
IN_STRIP = (X0 + D + 0.001, Y0 + 1.5 * D)  # in 002 now, in 001 under the draft


def _shifted(shift: float = SHIFT) -> list[tuple[str, Any]]:
    return [
        (f"{C}001", box(X0, Y0 + D, shift, Y0 + 2 * D)),
        (f"{C}002", box(shift, Y0 + D, X0 + 2 * D, Y0 + 2 * D)),
        *square_grids()[2:],
    ]


def _file(tmp_path: Path, grids: list[tuple[str, Any]], name: str = "draft") -> Path:
    frame = gpd.GeoDataFrame(
        {"code": [c for c, _ in grids], "name": [f"第{c[-1]}网格" for c, _ in grids]},
        geometry=[g for _, g in grids],
        crs="EPSG:4326",
    )
    return write_plan_geojson(tmp_path / f"{name}.geojson", frame, name=name)


@pytest.fixture
def world(engine: Engine) -> World:
    w = build_world(engine)
    with engine.begin() as conn:
        conn.execute(
            update(m.Grid).where(m.Grid.id == w.grids[f"{C}004"]).values(lead_member_id=None)
        )
        branch = q.insert_returning_ids(
            conn, m.Branch, [{"community_id": w.community_id, "name": "第一支部"}]
        )[0]
        q.insert_branch_grids(
            conn, [{"branch_id": branch, "grid_id": w.grids[f"{C}002"], "needs_review": False}]
        )
        q.insert_returning_ids(
            conn,
            m.Household,
            [
                {
                    "community_id": w.community_id,
                    "address_id": "T-STRIP",
                    "size": 2,
                    "geom": q.geom_value(shapely.Point(*IN_STRIP)),
                }
            ],
        )
        assign_community(conn, community_id=w.community_id, plan_id=w.plan_id)
    return w


def _file_request(engine: Engine, xy: tuple[float, float], *, closed: bool = False) -> int:
    with engine.begin() as conn:
        rid = receive(
            conn,
            Intake(category="sewer_blocked", lon=xy[0], lat=xy[1]),
            actor=Actor.system("test"),
        ).request_id
        if closed:
            conn.execute(update(m.Request).where(m.Request.id == rid).values(status="closed"))
    return rid


def _load(engine: Engine, world: World, path: Path) -> int:
    with engine.begin() as conn:
        plan_id, report = store.load_plan(
            conn, community_id=world.community_id, plan_file=store.read_plan_file(path)
        )
    assert report.valid
    return plan_id


def _grid_code(engine: Engine, table: Any, row_id: int) -> str | None:
    with engine.connect() as conn:
        gid = conn.execute(select(table.grid_id).where(table.id == row_id)).scalar_one()
        if gid is None:
            return None
        return conn.execute(select(m.Grid.code).where(m.Grid.id == gid)).scalar_one()


def _status(engine: Engine) -> dict[int, tuple[str, Any, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                m.BoundaryPlan.id,
                m.BoundaryPlan.status,
                m.BoundaryPlan.activated_at,
                m.BoundaryPlan.retired_at,
            )
        ).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_load_is_a_draft_based_on_the_active_plan(
    engine: Engine, world: World, tmp_path: Path
) -> None:
    plan_id = _load(engine, world, _file(tmp_path, _shifted()))
    with engine.connect() as conn:
        row = q.plan_row(conn, plan_id=plan_id)
        assert (row.status, row.base_plan_id) == ("draft", world.plan_id)
        assert len(q.grids_frame(conn, plan_id=plan_id)) == 4
        # Loading changes no assignment: the active plan still answers.
        assert q.active_plan(conn, community_id=world.community_id).id == world.plan_id


def test_load_refuses_an_invalid_plan_and_writes_nothing(
    engine: Engine, world: World, tmp_path: Path
) -> None:
    bad = _shifted()
    bad[0] = (f"{C}001", box(X0, Y0 + D, SHIFT + 0.001, Y0 + 2 * D))  # overlaps 002 by 0.001°
    with engine.connect() as conn:
        before = q.count(conn, m.BoundaryPlan)
    with pytest.raises(InvalidPlan) as exc, engine.begin() as conn:
        store.load_plan(
            conn,
            community_id=world.community_id,
            plan_file=store.read_plan_file(_file(tmp_path, bad)),
        )
    problems = exc.value.details["problems"]
    overlap = next(p for p in problems if p["check"] == "overlap")
    assert set(overlap["codes"]) == {f"{C}001", f"{C}002"}
    assert overlap["size"] == pytest.approx(0.001 * 102_400 * 0.01 * 110_700, rel=0.03)
    assert "overlap" in str(exc.value)
    with engine.connect() as conn:
        assert q.count(conn, m.BoundaryPlan) == before


def test_activate_reassigns_clips_remaps_and_rollback_restores(
    engine: Engine, world: World, tmp_path: Path
) -> None:
    open_rid = _file_request(engine, IN_STRIP)
    closed_rid = _file_request(engine, IN_STRIP, closed=True)
    quiet_rid = _file_request(engine, IN_GRID_NO_FIELD)
    f2 = world.fields["F2"]
    with engine.connect() as conn:
        f2_before = (
            q.fields_frame(conn, community_id=world.community_id).set_index("id").geometry[f2]
        )
        versions = q.data_versions(conn)
    draft = _load(engine, world, _file(tmp_path, _shifted()))

    with engine.begin() as conn:
        report = activation.activate_plan(
            conn, community_id=world.community_id, plan_id=draft, actor="t"
        )

    status = _status(engine)
    assert status[draft][0] == "active" and status[draft][1] is not None
    assert status[world.plan_id][0] == "retired" and status[world.plan_id][2] is not None
    assert report.previous_plan_id == world.plan_id
    # The household in the strip now belongs to 001; the others kept their grids.
    assert report.counts["households_moved"] == 1
    assert report.assignment["households_in_grids"] == report.assignment["households"] == 4
    with engine.connect() as conn:
        hid = conn.execute(
            select(m.Household.id).where(m.Household.address_id == "T-STRIP")
        ).scalar_one()
        gid = q.household_assignments(conn, plan_id=draft)[hid][0]
        assert conn.execute(select(m.Grid.code).where(m.Grid.id == gid)).scalar_one() == f"{C}001"
    # Open requests follow the new boundary; closed ones keep the grid they had.
    assert _grid_code(engine, m.Request, open_rid) == f"{C}001"
    assert _grid_code(engine, m.Request, closed_rid) == f"{C}002"
    with engine.connect() as conn:
        closed_gid = conn.execute(
            select(m.Request.grid_id).where(m.Request.id == closed_rid)
        ).scalar_one()
        assert (
            conn.execute(select(m.Grid.plan_id).where(m.Grid.id == closed_gid)).scalar_one()
            == world.plan_id
        )
    assert _grid_code(engine, m.Request, quiet_rid) == f"{C}001"
    # Counted by code and member: only the request in the strip is re-routed.
    assert report.assignment["requests_rerouted"] == 1 == report.counts["requests_rerouted"]
    # F2 (all of old 002) is cut: it keeps the 80 % left in 002, is flagged, and names the
    # household cut off (address T-STRIP is the one in the strip).
    (clip,) = report.fields_clipped
    assert clip["field_id"] == f2 and clip["grid_code"] == f"{C}002"
    assert clip["cut_share"] == pytest.approx(0.2, abs=0.01)
    assert clip["cut_households"] == ["T-STRIP"]
    with engine.connect() as conn:
        fields = q.fields_frame(conn, community_id=world.community_id).set_index("id")
        row = conn.execute(
            select(m.ResponsibilityField.needs_review, m.ResponsibilityField.review_note).where(
                m.ResponsibilityField.id == f2
            )
        ).one()
        assert row.needs_review and "T-STRIP" in row.review_note and f"{C}002" in row.review_note
        new_002 = q.grids_frame(conn, plan_id=draft).set_index("code").geometry[f"{C}002"]
        assert shapely.difference(fields.geometry[f2], new_002).area < 1e-12
        # The branch on 002 is re-mapped to the new 002 and flagged for review.
        branches = q.plan_branches_frame(conn, plan_id=draft)
        assert branches["code"].tolist() == [f"{C}002"] and branches["needs_review"].all()
        # Leads follow the parents: B leads 001, C leads 002 in the new plan too.
        leads = dict(
            conn.execute(
                select(m.Grid.code, m.Grid.lead_member_id).where(m.Grid.plan_id == draft)
            ).all()
        )
        assert leads[f"{C}001"] == world.members["B"] and leads[f"{C}002"] == world.members["C"]
        # Running servers' indexes follow: the spatial counter moved.
        assert q.data_versions(conn)["spatial"] > versions["spatial"]
        event = q.last_plan_event(conn, community_id=world.community_id, plan_id=draft)
        assert event.action == "activate" and event.previous_plan_id == world.plan_id
        assert event.report["fields_clipped"][0]["field_id"] == f2
        json.dumps(event.report)

    # The review queue lists the clipped field and the re-mapped branch until marked done.
    with engine.connect() as conn:
        todo = store.review(conn, community_id=world.community_id)
    assert [f["id"] for f in todo["fields"]] == [f2] and "T-STRIP" in todo["fields"][0][
        "review_note"
    ]
    assert [b["code"] for b in todo["branches"]] == [f"{C}002"] and todo["acting_leads"] == {}
    with pytest.raises(InvalidInput), engine.begin() as conn:
        store.clear_review(conn, community_id=world.community_id)
    with engine.begin() as conn:
        done = store.clear_review(conn, community_id=world.community_id, fields=[f2])
    assert done == {"fields": 1, "branches": 0}
    with engine.begin() as conn:
        assert store.clear_review(conn, community_id=world.community_id, everything=True) == {
            "fields": 0,
            "branches": 1,
        }
        left = store.review(conn, community_id=world.community_id)
    assert left["fields"] == [] and left["branches"] == []

    with engine.begin() as conn:
        back = activation.rollback_plan(conn, community_id=world.community_id, actor="t")
    assert back.plan_id == world.plan_id and back.fields_restored == 1
    status = _status(engine)
    assert status[world.plan_id][0] == "active" and status[world.plan_id][2] is None
    assert status[draft][0] == "retired"
    assert _grid_code(engine, m.Request, open_rid) == f"{C}002"
    with engine.connect() as conn:
        restored = q.fields_frame(conn, community_id=world.community_id).set_index("id")
        assert restored.geometry[f2].equals(f2_before)
        assert not restored["needs_review"][f2]
    # Rolling back again goes back to the plan the rollback replaced (the draft).
    with engine.begin() as conn:
        again = activation.rollback_plan(conn, community_id=world.community_id)
    assert again.plan_id == draft and again.action == "rollback"
    assert [f["field_id"] for f in again.fields_clipped] == [f2]


def test_nothing_to_roll_back_before_a_first_activation(engine: Engine, world: World) -> None:
    with pytest.raises(Conflict, match="nothing to roll back"), engine.begin() as conn:
        activation.rollback_plan(conn, community_id=world.community_id)


def test_second_planner_from_the_same_base_is_refused(
    engine: Engine, world: World, tmp_path: Path
) -> None:
    first = _load(engine, world, _file(tmp_path, _shifted(), "first"))
    second = _load(engine, world, _file(tmp_path, _shifted(X0 + D - 0.002), "second"))
    with engine.begin() as conn:
        activation.activate_plan(conn, community_id=world.community_id, plan_id=first)
    with pytest.raises(Conflict) as exc, engine.begin() as conn:
        activation.activate_plan(conn, community_id=world.community_id, plan_id=second)
    message = str(exc.value)
    assert "another planner" in message and "v1" in message and "v2" in message
    assert _status(engine)[first][0] == "active" and _status(engine)[second][0] == "draft"
    with pytest.raises(Conflict, match="already active"), engine.begin() as conn:
        activation.activate_plan(conn, community_id=world.community_id, plan_id=first)


def test_a_failed_activation_changes_nothing(
    engine: Engine, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    draft = _load(engine, world, _file(tmp_path, _shifted()))
    with engine.connect() as conn:
        fields_before = q.fields_frame(conn, community_id=world.community_id)
        assignments_before = q.household_assignments(conn, plan_id=world.plan_id)

    def boom(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("disk full")

    # Fail at the very end, after fields were clipped and the plans switched.
    monkeypatch.setattr(activation, "assign_community", boom)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        activation.activate_plan(conn, community_id=world.community_id, plan_id=draft)
    status = _status(engine)
    assert status[world.plan_id][0] == "active" and status[draft][0] == "draft"
    with engine.connect() as conn:
        after = q.fields_frame(conn, community_id=world.community_id)
        assert after.geometry.geom_equals(fields_before.geometry).all()
        assert not after["needs_review"].any()
        assert q.household_assignments(conn, plan_id=world.plan_id) == assignments_before
        assert q.count(conn, m.PlanEvent) == 0 and q.count(conn, m.FieldRevision) == 0


def test_a_stored_invalid_draft_is_not_activated(engine: Engine, world: World) -> None:
    """A draft written around the loader (e.g. by hand in SQL) is validated again."""
    with engine.begin() as conn:
        plan_id = q.create_plan(conn, community_id=world.community_id, name="hand-made")
        grids = _shifted()[:3]  # 004 missing: a gap of a quarter of the community
        q.bulk_insert(
            conn,
            m.Grid,
            [
                {"plan_id": plan_id, "code": c, "geom": q.geom_value(MultiPolygon([g]))}
                for c, g in grids
            ],
        )
    with pytest.raises(InvalidPlan, match="gap"), engine.begin() as conn:
        activation.activate_plan(conn, community_id=world.community_id, plan_id=plan_id)
    assert _status(engine)[world.plan_id][0] == "active"


def test_two_planners_at_the_same_moment(engine: Engine, world: World, tmp_path: Path) -> None:
    """Two activations in flight at once, from the same base: one wins, the other is refused
    with a Conflict (never a half-done state, never a raw database error)."""
    import threading

    first = _load(engine, world, _file(tmp_path, _shifted(), "first"))
    second = _load(engine, world, _file(tmp_path, _shifted(X0 + D - 0.002), "second"))
    outcome: dict[str, Any] = {}
    started = threading.Event()

    def later() -> None:
        started.wait(10)
        try:
            with engine.begin() as conn:
                activation.activate_plan(conn, community_id=world.community_id, plan_id=second)
            outcome["second"] = "activated"
        except Conflict as exc:
            outcome["second"] = exc

    thread = threading.Thread(target=later)
    thread.start()
    with engine.begin() as conn:
        activation.activate_plan(conn, community_id=world.community_id, plan_id=first)
        started.set()  # the second starts while the first still holds its transaction
        thread.join(0.5)
    thread.join(30)
    assert isinstance(outcome["second"], Conflict), outcome
    status = _status(engine)
    assert status[first][0] == "active" and status[second][0] == "draft"
    assert status[world.plan_id][0] == "retired"


def test_only_drafts_are_deleted(engine: Engine, world: World, tmp_path: Path) -> None:
    draft = _load(engine, world, _file(tmp_path, _shifted()))
    with pytest.raises(Conflict, match="only drafts"), engine.begin() as conn:
        store.delete_draft(conn, community_id=world.community_id, plan_id=world.plan_id)
    with engine.begin() as conn:
        store.delete_draft(conn, community_id=world.community_id, plan_id=draft)
    with engine.connect() as conn:
        assert [p.id for p in q.plans(conn, community_id=world.community_id)] == [world.plan_id]
        assert len(q.grids_frame(conn, plan_id=draft)) == 0
        assert len(q.grids_frame(conn, plan_id=world.plan_id)) == 4

"""geogrid.lookup at city scale: per-community change counters and rebuilds, the community
extents and name routes (the same answers as asking every community), on both backends.

Several hand-drawn communities stand in for a city's ~1,000: two at the same place (the
first by code answers, as before), one in Helsinki, and the routing threshold is lowered so
that the routed path runs on them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import shapely
from sqlalchemy import Engine, delete, select, update

from geogrid.db import models as m
from geogrid.db import queries as q
from geogrid.errors import GeogridError
from geogrid.lookup import LookupService
from geogrid.lookup import service as service_module
from geogrid.lookup.extents import Extents
from geogrid.lookup.names import NameRoutes
from tests.factories import X0, Y0, D
from tests.lookup_factories import (
    CODE,
    HKI_CODE,
    HKI_X0,
    HKI_Y0,
    LookupCommunity,
    make_helsinki,
    make_lookup_community,
)

TWIN = "441302011100"  # a second community drawn at the same place as CODE


@pytest.fixture
def city(engine: Engine) -> dict[str, Any]:
    with engine.begin() as conn:
        first = make_lookup_community(conn)
        twin = make_lookup_community(conn, code=TWIN, address_prefix="TWIN-")
        hki, hki_grid = make_helsinki(conn)
    return {"first": first, "twin": twin, "hki": hki, "hki_grid": hki_grid}


def counters(engine: Engine) -> dict[int, tuple[int, int]]:
    with engine.connect() as conn:
        return q.community_versions(conn)


def moved(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]) -> set[int]:
    return {c for c in after if after[c] != before.get(c)}


# --- per-community counters -------------------------------------------------------------------


def test_each_change_bumps_its_own_community(engine: Engine, city: dict[str, Any]) -> None:
    first: LookupCommunity = city["first"]
    twin: LookupCommunity = city["twin"]
    a, b = first.community_id, twin.community_id
    assert {a, b, city["hki"]} <= set(counters(engine))
    changes = {
        "a household (gazetteer)": (
            update(m.Household)
            .where(m.Household.id == next(iter(first.households.values())))
            .values(size=5),
            {a},
            1,
        ),
        "a field (spatial)": (
            update(m.ResponsibilityField)
            .where(m.ResponsibilityField.id == twin.fields["F1"])
            .values(member_id=None),
            {b},
            0,
        ),
        "a grid, through its plan": (
            update(m.Grid).where(m.Grid.id == city["hki_grid"]).values(name="Kluuvi 2"),
            {city["hki"]},
            0,
        ),
        "a branch's grids, through the branch": (
            delete(m.BranchGrid).where(m.BranchGrid.branch_id == first.branches["第二党支部"]),
            {a},
            0,
        ),
        "a party group, through its branch": (
            update(m.Group).where(m.Group.id == twin.groups["1号楼党小组"]).values(name="小组"),
            {b},
            0,
        ),
        "the community's row": (
            update(m.Community).where(m.Community.id == b).values(name="改名社区"),
            {b},
            0,
        ),
        "buildings of two communities in one statement": (
            update(m.Building).where(m.Building.name == "2号楼").values(name="二号楼"),
            {a, b},
            1,
        ),
    }
    for what, (statement, expected, counter) in changes.items():
        before, global_before = counters(engine), _globals(engine)
        with engine.begin() as conn:
            conn.execute(statement)
        after, global_after = counters(engine), _globals(engine)
        assert moved(before, after) == expected, what
        name = ("spatial", "gazetteer")[counter]
        assert all(after[c][counter] > before[c][counter] for c in expected), what
        assert global_after[name] > global_before[name], what
        # A community counter never exceeds its global one (the restore relies on it).
        assert max(v[counter] for v in after.values()) <= global_after[name], what


def test_a_row_moving_between_communities_bumps_both(engine: Engine, city: dict[str, Any]) -> None:
    first: LookupCommunity = city["first"]
    before = counters(engine)
    with engine.begin() as conn:
        conn.execute(
            update(m.Household)
            .where(m.Household.id == next(iter(first.households.values())))
            .values(community_id=city["hki"])
        )
    assert moved(before, counters(engine)) == {first.community_id, city["hki"]}


def test_advancing_the_counters_moves_every_community_past_what_was_seen(
    engine: Engine, city: dict[str, Any]
) -> None:
    """What a restore does: afterwards no community holds a counter a server has seen."""
    past, seen = _globals(engine), counters(engine)
    with engine.begin() as conn:
        new = q.advance_data_versions(conn, past=past)
    after = counters(engine)
    for cid, (spatial, gazetteer) in after.items():
        assert spatial > past["spatial"] >= seen[cid][0]
        assert gazetteer > past["gazetteer"] >= seen[cid][1]
    assert new["spatial"] >= max(v[0] for v in after.values())
    assert new["gazetteer"] >= max(v[1] for v in after.values())


def _globals(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return q.data_versions(conn)


# --- the service rebuilds only what changed ------------------------------------------------------


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Route from 1 community on (a city's path), instead of from 8."""
    monkeypatch.setattr(service_module, "_ROUTED_FROM", 1)
    yield


def test_a_change_rebuilds_only_its_community(
    engine: Engine, city: dict[str, Any], routed: None
) -> None:
    twin: LookupCommunity = city["twin"]
    svc = LookupService(engine, poll_interval=0)
    svc.refresh(force=True)
    before = svc._state
    assert set(before.rebuilt) == {CODE, TWIN, HKI_CODE}
    assert svc.lookup(lon=X0 + 0.002, lat=Y0 + 0.005, community=TWIN).place.member_rule == "field"

    with engine.begin() as conn:
        conn.execute(
            update(m.ResponsibilityField)
            .where(m.ResponsibilityField.id == twin.fields["F1"])
            .values(member_id=None)
        )
    assert svc.refresh() is True
    after = svc._state
    assert after.rebuilt == (TWIN,)
    assert after.by_code[CODE] is before.by_code[CODE]
    assert after.by_code[HKI_CODE] is before.by_code[HKI_CODE]
    # The twin's gazetteer is kept (no address changed), its index is new.
    assert after.by_code[TWIN].gazetteer is before.by_code[TWIN].gazetteer
    assert after.by_code[TWIN].index is not before.by_code[TWIN].index
    r = svc.lookup(lon=X0 + 0.002, lat=Y0 + 0.005, community=TWIN)
    assert r.place.member_rule == "grid_lead"

    # An address change rebuilds that community's gazetteer, and nothing else.
    with engine.begin() as conn:
        conn.execute(
            update(m.Household)
            .where(m.Household.community_id == city["hki"])
            .values(house_number="31")
        )
    assert svc.refresh() is True
    assert svc._state.rebuilt == (HKI_CODE,)
    assert svc._state.by_code[TWIN] is after.by_code[TWIN]
    assert svc._state.by_code[HKI_CODE].gazetteer is not after.by_code[HKI_CODE].gazetteer
    assert svc.lookup(address="Unioninkatu 31").place.community.code == HKI_CODE

    # A community gone is gone; one added is built alone.
    with engine.begin() as conn:
        conn.execute(delete(m.Community).where(m.Community.code == TWIN))
    assert svc.refresh() is True
    assert set(svc._state.by_code) == {CODE, HKI_CODE} and svc._state.rebuilt == ()
    with engine.begin() as conn:
        make_lookup_community(conn, code="441302011101", address_prefix="NEW-")
    svc.refresh()
    assert svc._state.rebuilt == ("441302011101",)


# --- routed answers are the answers of the loop over every community ------------------------


def _answer(svc: LookupService, **kw: Any) -> Any:
    try:
        return svc.lookup(**kw).to_dict()
    except GeogridError as exc:
        return exc.to_dict()


def _points() -> list[tuple[float, float]]:
    rng = np.random.default_rng(7)
    pts = [(float(x), float(y)) for x, y in rng.uniform(-0.005, 2 * D + 0.005, (150, 2))]
    pts = [(X0 + x, Y0 + y) for x, y in pts]
    # Every vertex and edge midpoint of the squares (grid edges, the shared corners).
    steps = [0, D / 2, D, 1.5 * D, 2 * D]
    pts += [(X0 + a, Y0 + b) for a in steps for b in steps]
    pts += [(HKI_X0 + 0.005, HKI_Y0 + 0.005), (HKI_X0 + 0.02, HKI_Y0), (HKI_X0 - 0.5, HKI_Y0)]
    pts += [(Y0 + 0.005, X0 + 0.005), (HKI_Y0 + 0.005, HKI_X0 + 0.005)]  # swapped
    pts += [(100.0, 30.0), (X0 + 0.05, Y0 + 0.05)]  # far outside
    return pts


ADDRESSES = [
    "长湖街5号",
    "长湖街18号",
    "金源花园1号楼",
    "金源花园1栋1单元102室",
    "广东省惠州市惠城区小金口街道测试社区长湖街5号",
    "长糊街5号",
    "长湖街",
    "3栋",
    "Unioninkatu 29",
    "Unioninkatu",
    "无名路1号",
]


def test_routed_answers_equal_the_loop(
    engine: Engine, city: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = LookupService(engine, poll_interval=0)
    plain.refresh(force=True)
    assert plain._state.whole.extents is None  # 3 communities: the loop
    monkeypatch.setattr(service_module, "_ROUTED_FROM", 1)
    svc = LookupService(engine, poll_interval=0)
    svc.refresh(force=True)
    assert svc._state.whole.extents is not None and svc._state.whole.routes is not None

    items: list[dict[str, Any]] = []
    for x, y in _points():
        assert _answer(svc, lon=x, lat=y) == _answer(plain, lon=x, lat=y), (x, y)
        items.append({"lon": x, "lat": y})
    for text in ADDRESSES:
        assert _answer(svc, address=text) == _answer(plain, address=text), text
        items.append({"address": text})
    # Points on the twins' shared place answer from the first by code.
    assert svc.lookup(lon=X0 + 0.002, lat=Y0 + 0.005).place.community.code == CODE

    def batch(s: LookupService) -> list[Any]:
        return [r.to_dict() for r in s.lookup_many(items)]

    assert batch(svc) == batch(plain)


def test_extents_find_every_box_covering_a_point() -> None:
    rng = np.random.default_rng(3)
    lo = rng.uniform(0, 10, (60, 2))
    size = rng.uniform(0.1, 3, (60, 2))
    bounds = [(a, b, a + w, b + h) for (a, b), (w, h) in zip(lo, size, strict=True)]
    bounds.append((5.0, 5.0, 5.0, 5.0))  # a degenerate box (a point)
    ext = Extents(bounds)
    pts = rng.uniform(-1, 14, (3000, 2))
    corners = np.asarray([(b[0], b[1]) for b in bounds] + [(b[2], b[3]) for b in bounds])
    pts = np.vstack([pts, corners, [[np.nan, 1.0]]])
    b = np.asarray(bounds)
    owner, box = ext.candidates_many(pts[:, 0], pts[:, 1])
    pairs = set(zip(owner.tolist(), box.tolist(), strict=True))
    for k, (x, y) in enumerate(pts):
        want = np.flatnonzero((b[:, 0] <= x) & (x <= b[:, 2]) & (b[:, 1] <= y) & (y <= b[:, 3]))
        assert ext.candidates(float(x), float(y)) == want.tolist()
        assert {p for o, p in pairs if o == k} == set(want.tolist())
    assert list(box) == sorted(box)  # by box: each community asked once


def test_extents_nearest_first_with_lower_bounds() -> None:
    ext = Extents([(0, 0, 1, 1), (3, 0, 4, 1), (1.5, 0, 2, 1)])
    order = ext.by_distance(2.2, 0.5)
    assert [p for _, p in order] == [2, 1, 0]
    assert order[0][0] == pytest.approx(0.2 * np.cos(np.radians(0.5)) * 110_574, rel=1e-6)
    point = shapely.Point(2.2, 0.5)
    assert all(d <= shapely.distance(point, shapely.box(*ext._b[p])) * 111_320 for d, p in order)


def test_name_routes_find_the_communities_naming_the_text() -> None:
    routes = NameRoutes([{"长湖街", "金源花园"}, None, {"长湖街"}, {"unioninkatu"}])
    assert routes.communities("惠城区长湖街12号") == [0, 2]
    assert routes.communities("金源花园3栋") == [0]
    assert routes.communities("UNIONINKATU 29") == [3]
    assert routes.communities("3栋2单元502") is None


def test_service_lookup_of_communities_still_lists_them(
    engine: Engine, city: dict[str, Any]
) -> None:
    svc = LookupService(engine, poll_interval=0)
    svc.refresh(force=True)
    with engine.connect() as conn:
        codes = list(conn.execute(select(m.Community.code).order_by(m.Community.code)).scalars())
    assert [c.code for c in svc.communities] == codes

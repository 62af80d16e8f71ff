"""The district generator of the import benchmark (``benchmarks.district``): its layers fit
together as an import expects, and a tiny district imports end to end on SpatiaLite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
from sqlalchemy import func, select

from benchmarks.district import INSET_M, District, make_district, scaled
from benchmarks.synth import KM_LAT, KM_LON, X0, X1, Y0, Y1

#: Square degrees per m² at the box's latitude.
M2 = KM_LON * KM_LAT / 1e6


@pytest.fixture(scope="module")
def district() -> District:
    return make_district(**scaled(0.01, n_communities=6), seed=7)


def test_communities_tessellate_the_box(district: District) -> None:
    polys = district.communities.geometry.to_numpy()
    box = shapely.box(X0, Y0, X1, Y1)
    assert shapely.union_all(polys).symmetric_difference(box).area < 1 * M2
    tree = shapely.STRtree(polys)
    a, b = tree.query(polys, predicate="intersects")
    pairs = a < b
    overlaps = shapely.area(shapely.intersection(polys[a[pairs]], polys[b[pairs]]))
    assert (overlaps <= 1 * M2).all()
    codes = district.communities["code"]
    assert codes.str.fullmatch(r"441302\d{6}").all() and codes.is_unique


def test_grids_tile_their_community(district: District) -> None:
    grids, comm = district.grids, district.communities.set_index("code")
    assert grids["code"].str.fullmatch(r"\d{15}").all() and grids["code"].is_unique
    assert (grids["code"].str[:12] == grids["community"]).all()
    for code, part in grids.groupby("community"):
        whole = comm.geometry[code]
        assert shapely.union_all(part.geometry.to_numpy()).symmetric_difference(whole).area < 1 * M2
        assert shapely.area(part.geometry.to_numpy()).sum() == pytest.approx(whole.area, rel=1e-9)


def test_households_lie_in_their_building_and_community(district: District) -> None:
    hh, b = district.households, district.buildings
    assert hh["address_id"].is_unique
    key = b.set_index(["community", "compound", "name"], drop=False)
    # Every household names a building of its community (name + compound are its key).
    found = key.geometry.reindex(
        list(zip(hh["community"], hh["compound"], hh["building_name"], strict=True))
    )
    assert found.notna().all()
    assert shapely.contains(found.to_numpy(), hh.geometry.to_numpy()).all()
    comm = district.communities.set_index("code").geometry
    assert shapely.contains(comm.reindex(hh["community"]).to_numpy(), hh.geometry.to_numpy()).all()
    assert (b.geom_type == "MultiPolygon").any() and (b.geom_type == "Polygon").any()
    # Streets and buildings keep clear of community edges (the spread's lowest-code rule).
    inset = INSET_M / 2 * KM_LON / 1000
    inner = shapely.buffer(comm.reindex(b["community"]).to_numpy(), -inset)
    assert shapely.within(b.geometry.to_numpy(), inner).all()
    s = district.streets
    assert not s.duplicated(["community", "name"]).any()
    assert (s["kind"].str.len() <= 8).all()


def test_fields_sit_in_their_grid(district: District) -> None:
    f, g = district.fields, district.grids.set_index("code").geometry
    grid_of = f["name"].str[:15]
    assert f["name"].is_unique and (f["member"] == "").all()
    assert shapely.covers(
        shapely.buffer(g.reindex(grid_of).to_numpy(), 1e-9), f.geometry.to_numpy()
    ).all()


def test_tiny_district_imports_on_spatialite(tmp_path: Path) -> None:
    from benchmarks.imports import write_files
    from geogrid.db import migrate, models
    from geogrid.db.engine import make_engine
    from geogrid.io.importer import import_layer

    district = make_district(**scaled(0.01), seed=3)
    paths = write_files(district, tmp_path / "files")
    engine = make_engine(f"sqlite:///{tmp_path / 'd.sqlite'}")
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            import_layer(conn, layer="communities", path=paths["communities"])
        with engine.begin() as conn:
            report = import_layer(
                conn, layer="households", path=paths["households"], crs="EPSG:4326"
            )
        assert report.inserted == len(district.households)
        h, c = models.Household, models.Community
        with engine.connect() as conn:
            stored = dict(
                conn.execute(
                    select(c.code, func.count()).join(h, h.community_id == c.id).group_by(c.code)
                ).all()
            )
    finally:
        engine.dispose()
    expected = district.households["community"].value_counts().to_dict()
    assert stored == expected and len(expected) == 2
    assert np.isclose(sum(stored.values()), 5000)

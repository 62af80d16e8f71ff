"""The city generator of the city-scale benchmarks (``benchmarks.city``): its layers fit
together, it is deterministic, and its files hold the columns other benchmarks read."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow.parquet as pq
import pytest
import shapely

from benchmarks.city import DISTRICTS, make_city, write_city, write_households_only
from benchmarks.district import District
from benchmarks.synth import KM_LAT, KM_LON

#: Square degrees per m² at the city's latitude.
M2 = KM_LON * KM_LAT / 1e6
SIZES = {"districts": 2, "communities_per_district": 2, "grids_per_community": 4, "buildings": 120}


@pytest.fixture(scope="module")
def city() -> District:
    return make_city(1_500, seed=11, **SIZES)


def test_communities_do_not_overlap_and_carry_their_district_code(city: District) -> None:
    polys = city.communities.geometry.to_numpy()
    a, b = shapely.STRtree(polys).query(polys, predicate="intersects")
    pairs = a < b
    assert (shapely.area(shapely.intersection(polys[a[pairs]], polys[b[pairs]])) <= 1 * M2).all()
    codes = city.communities["code"]
    assert codes.str.fullmatch(r"\d{12}").all() and codes.is_unique
    assert set(codes.str[:6]) == {code for code, _ in DISTRICTS[:2]}
    names = dict(DISTRICTS)
    assert (city.communities["district"] == codes.str[:6].map(names)).all()


def test_grids_tile_each_community_without_gaps_or_overlaps(city: District) -> None:
    grids, comm = city.grids, city.communities.set_index("code")
    assert grids["code"].str.fullmatch(r"\d{15}").all() and grids["code"].is_unique
    assert (grids["code"].str[:12] == grids["community"]).all()
    assert len(grids) == 2 * 2 * 4
    for code, part in grids.groupby("community"):
        whole = comm.geometry[code]
        polys = part.geometry.to_numpy()
        assert shapely.union_all(polys).symmetric_difference(whole).area < 1 * M2
        # Areas add up to the community's: no overlap between its grids.
        assert shapely.area(polys).sum() == pytest.approx(whole.area, rel=1e-9)


def test_households_lie_inside_their_building_and_community(city: District) -> None:
    hh, b = city.households, city.buildings
    assert len(hh) == 1_500 and len(b) == 120
    assert hh["address_id"].is_unique
    assert (hh["household_id"].to_numpy() == np.arange(1, 1_501)).all()
    # Building order: building ids never decrease.
    assert (np.diff(hh["building_id"].to_numpy()) >= 0).all()
    own = b.geometry.to_numpy()[hh["building_id"].to_numpy()]
    assert shapely.contains_properly(own, hh.geometry.to_numpy()).all()
    assert (b["community"].to_numpy()[hh["building_id"].to_numpy()] == hh["community"]).all()
    comm = city.communities.set_index("code").geometry
    assert shapely.contains(comm.reindex(hh["community"]).to_numpy(), hh.geometry.to_numpy()).all()
    # Fields lie in their grid's community.
    assert city.fields["name"].is_unique
    assert (city.fields["name"].str[:12] == city.fields["community"]).all()


def test_the_seed_decides_everything(city: District) -> None:
    again = make_city(1_500, seed=11, **SIZES)
    for name, layer in city.layers().items():
        other = again.layers()[name]
        assert layer.drop(columns="geometry").equals(other.drop(columns="geometry")), name
        assert shapely.equals_exact(layer.geometry.values, other.geometry.values, 0).all(), name
    other = make_city(1_500, seed=12, **SIZES)
    assert not shapely.equals_exact(
        city.households.geometry.values, other.households.geometry.values, 0
    ).all()


def test_files_round_trip_with_their_columns(city: District, tmp_path: Path) -> None:
    write_city(tmp_path, 1_500, seed=11, progress=lambda _: None, **SIZES)
    want = {
        "communities": ["code", "name", "subdistrict", "district"],
        "grids": ["code", "name", "community"],
        "fields": ["name", "member", "community"],
        "streets": ["name", "kind", "community"],
        "buildings": ["building_id", "name", "compound", "street_name", "floors", "community"],
    }
    for name, columns in want.items():
        frame = gpd.read_parquet(tmp_path / f"{name}.parquet")
        assert frame.crs.to_epsg() == 4326
        assert set(columns) <= set(frame.columns), name
        assert len(frame) == len(city.layers()[name])
    path = tmp_path / "households.parquet"
    schema = pq.read_schema(path)
    assert schema.field("geometry").metadata[b"ARROW:extension:name"] == b"geoarrow.point"
    hh = gpd.read_parquet(path)
    assert hh.crs.to_epsg() == 4326
    assert list(hh.columns) == [
        "household_id",
        "building_id",
        "address_id",
        "street_name",
        "house_number",
        "building_name",
        "compound",
        "unit",
        "room",
        "community",
        "geometry",
    ]
    assert (hh["address_id"].to_numpy() == city.households["address_id"].to_numpy()).all()
    assert (hh["building_id"].to_numpy() == city.households["building_id"].to_numpy()).all()
    assert shapely.equals_exact(hh.geometry.values, city.households.geometry.values, 0).all()


def test_households_only_fill_the_same_buildings_in_chunks(city: District, tmp_path: Path) -> None:
    path = tmp_path / "hh.parquet"
    out = write_households_only(path, 2_500, seed=11, chunk=1_000, progress=lambda _: None, **SIZES)
    assert out == {"households": 2_500, "buildings": 120, "seconds": out["seconds"]}
    assert pq.ParquetFile(path).metadata.num_row_groups >= 2
    hh = gpd.read_parquet(path)
    assert list(hh.columns) == ["household_id", "building_id", "community", "geometry"]
    assert (hh["household_id"].to_numpy() == np.arange(1, 2_501)).all()
    building = hh["building_id"].to_numpy()
    assert (np.diff(building) >= 0).all() and len(np.unique(building)) == 120
    b = city.buildings
    assert shapely.contains_properly(b.geometry.to_numpy()[building], hh.geometry.values).all()
    assert (hh["community"].astype(str).to_numpy() == b["community"].to_numpy()[building]).all()

"""Hot-spot statistics (geogrid.hotspots) on hand-made patterns whose answer is known."""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pytest
from shapely.geometry import Point, box

from geogrid.errors import InvalidInput
from geogrid.hotspots import (
    aggregate_grids,
    aggregate_h3,
    benjamini_hochberg,
    confidence_bins,
    gi_star,
    h3_neighbours,
    hotspots,
    polygon_neighbours,
)

OPEN = ("received", "registered", "dispatched", "in_progress", "escalated")


def lattice(n: int = 10) -> gpd.GeoDataFrame:
    """An n × n lattice of unit squares, codes "row-col" (0-0 at the south-west)."""
    return gpd.GeoDataFrame(
        {"code": [f"{r}-{c}" for r in range(n) for c in range(n)], "name": None},
        geometry=[box(c, r, c + 1, r + 1) for r in range(n) for c in range(n)],
        crs="EPSG:4326",
    )


def centres(cells: list[tuple[int, int]], times: int = 1) -> gpd.GeoSeries:
    return gpd.GeoSeries([Point(c + 0.5, r + 0.5) for r, c in cells] * times, crs="EPSG:4326")


ALL = [(r, c) for r in range(10) for c in range(10)]
BLOCK = [(r, c) for r in (4, 5, 6) for c in (4, 5, 6)]


def by_code(result) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return dict(zip(result.cells["id"], result.cells["confidence"].astype(int), strict=True))


def test_a_busy_block_is_the_hot_spot_and_nothing_else_is() -> None:
    # 20 households everywhere; 8 requests in each cell of a 3 × 3 block, 1 in every 3rd cell.
    homes = centres(ALL, times=20)
    requests = gpd.GeoSeries(
        list(centres(BLOCK, times=8)) + list(centres(ALL[::3])), crs="EPSG:4326"
    )
    result = hotspots(requests, homes, unit="grids", grids=lattice())
    bins = by_code(result)
    assert result.status == "ok"
    assert bins["5-5"] == 99  # the block's centre
    hot = {code for code, level in bins.items() if level > 0}
    near_block = {f"{r}-{c}" for r in range(3, 8) for c in range(3, 8)}
    assert hot <= near_block, f"hot cells outside the block's neighbourhood: {hot - near_block}"
    assert {"4-4", "4-6", "6-4", "6-6"} <= hot
    assert result.cold == 0
    assert result.n_requests == len(requests)
    row = result.cells.set_index("id").loc["5-5"]
    assert row["requests"] == 8 and row["households"] == 20  # (5, 5) is not every third cell
    assert row["value"] == pytest.approx(40.0)  # 8 per 20 households = 40 per 100


def test_an_empty_corner_among_busy_cells_is_a_cold_spot() -> None:
    homes = centres(ALL, times=10)
    corner = [(r, c) for r in (0, 1, 2) for c in (0, 1, 2)]
    busy = [cell for cell in ALL if cell not in corner]
    result = hotspots(centres(busy, times=3), homes, unit="grids", grids=lattice())
    bins = by_code(result)
    assert bins["0-0"] < 0 and bins["1-1"] < 0
    assert result.hot == 0


def test_normalizing_by_households_removes_a_spot_that_is_only_people() -> None:
    # The block has 10× the households and 10× the requests: the rate is the same everywhere.
    homes = gpd.GeoSeries(list(centres(ALL, times=10)) + list(centres(BLOCK, times=90)))
    homes = homes.set_crs("EPSG:4326")
    requests = gpd.GeoSeries(list(centres(ALL)) + list(centres(BLOCK, times=9)), crs="EPSG:4326")
    per_household = hotspots(requests, homes, unit="grids", grids=lattice())
    counts = hotspots(requests, homes, unit="grids", grids=lattice(), normalize="none")
    assert per_household.status == "no_variation"
    assert per_household.hot == 0
    assert by_code(counts)["5-5"] == 99


def test_gi_star_is_the_textbook_formula() -> None:
    # Getis & Ord (1992), Ord & Getis (1995): binary weights with the focal feature included,
    # z = (Σ w x − x̄ Σ w) / (S √((n Σ w² − (Σ w)²)/(n − 1))).
    rng = np.random.default_rng(7)
    cells = lattice(6)
    x = rng.poisson(4.0, len(cells)).astype(float)
    neighbours = polygon_neighbours(cells)
    z, p = gi_star(x, neighbours)
    n = len(x)
    mean, s = x.mean(), np.sqrt((x**2).mean() - x.mean() ** 2)
    for i in range(n):
        w = np.zeros(n)
        w[[i, *neighbours[i]]] = 1.0
        expected = (w @ x - mean * w.sum()) / (
            s * np.sqrt((n * (w**2).sum() - w.sum() ** 2) / (n - 1))
        )
        assert z[i] == pytest.approx(expected, rel=1e-9)
    assert np.all((p > 0) & (p <= 1))


def test_queen_neighbours_of_a_lattice() -> None:
    nb = polygon_neighbours(lattice(3))
    assert nb[4] == [0, 1, 2, 3, 5, 6, 7, 8]  # the centre touches all eight
    assert nb[0] == [1, 3, 4]


def test_benjamini_hochberg_threshold() -> None:
    # sorted p: 0.001 ≤ 1·0.05/4, 0.02 ≤ 2·0.05/4, 0.5 > 3·0.05/4 → reject the first two.
    assert benjamini_hochberg([0.5, 0.001, 0.9, 0.02], 0.05) == 0.02
    assert benjamini_hochberg([0.2, 0.3], 0.05) == -1.0
    assert benjamini_hochberg([0.01, 0.02, 0.03, 0.04, 0.05], 0.05) == 0.05


def test_confidence_bins_are_signed_and_stepped() -> None:
    z = np.array([4.0, 2.2, -3.5, 0.3])
    p = np.array([0.0001, 0.03, 0.0004, 0.8])
    bins, thresholds = confidence_bins(z, p)
    assert list(bins) == [99, 95, -99, 0]
    assert set(thresholds) == {0.9, 0.95, 0.99}


def test_too_few_features_says_so_and_bins_nothing() -> None:
    cells = lattice(5)  # 25 features < 30
    homes = centres([(r, c) for r in range(5) for c in range(5)], times=5)
    requests = centres([(2, 2)], times=20)
    result = hotspots(requests, homes, unit="grids", grids=cells)
    assert result.status == "too_few_features"
    assert "25 features" in (result.message or "")
    assert result.hot == 0 and result.cold == 0
    assert int(result.cells.set_index("id").loc["2-2", "requests"]) == 20


def test_too_few_requests_says_so() -> None:
    result = hotspots(centres([(1, 1)], times=3), centres(ALL), unit="grids", grids=lattice())
    assert result.status == "too_few_requests"
    assert result.hot == 0


def test_requests_outside_every_grid_are_counted() -> None:
    requests = gpd.GeoSeries([*centres(ALL), Point(50, 50)], crs="EPSG:4326")
    cells, outside = aggregate_grids(requests, centres(ALL), lattice())
    assert outside == 1
    assert cells["requests"].sum() == 100


def test_h3_cells_cover_the_area_and_a_cluster_is_hot() -> None:
    # Households spread over ~1 km² near Huizhou; 60 requests within ~30 m of one spot.
    rng = np.random.default_rng(3)
    lon0, lat0 = 114.41, 23.145
    homes = gpd.GeoSeries(
        [Point(lon0 + dx, lat0 + dy) for dx, dy in rng.uniform(-0.005, 0.005, (3000, 2))],
        crs="EPSG:4326",
    )
    spot = (lon0 + 0.002, lat0 - 0.001)
    near = [Point(spot[0] + dx, spot[1] + dy) for dx, dy in rng.normal(0, 0.0002, (60, 2))]
    background = [Point(p.x, p.y) for p in homes.sample(40, random_state=1)]
    requests = gpd.GeoSeries(near + background, crs="EPSG:4326")
    area = box(lon0 - 0.005, lat0 - 0.005, lon0 + 0.005, lat0 + 0.005)
    result = hotspots(requests, homes, resolution=10, area=area)
    assert result.status == "ok"
    assert result.n_features >= 60  # the whole square, not only cells with points
    bins = by_code(result)
    assert bins[h3.latlng_to_cell(spot[1], spot[0], 10)] > 0
    for cell, level in bins.items():
        if level > 0:
            lat, lon = h3.cell_to_latlng(cell)
            assert abs(lon - spot[0]) < 0.002 and abs(lat - spot[1]) < 0.002, cell


def test_h3_aggregation_counts_and_neighbours() -> None:
    homes = gpd.GeoSeries([Point(114.41, 23.145)] * 5, crs="EPSG:4326")
    cells = aggregate_h3(homes.iloc[:2], homes, resolution=9)
    assert list(cells["requests"]) == [2] and list(cells["households"]) == [5]
    ring = list(h3.grid_disk(cells["id"][0], 1))
    nb = h3_neighbours(ring)
    centre = ring.index(cells["id"][0])
    assert len(nb[centre]) == 6


def test_the_household_floor_keeps_tiny_denominators_from_exploding() -> None:
    requests = centres([(0, 0)], times=1)
    homes = gpd.GeoSeries(list(centres([(0, 0)], times=2)) + list(centres(ALL, times=40)))
    homes = homes.set_crs("EPSG:4326")
    result = hotspots(requests, homes, unit="grids", grids=lattice(), min_households=100)
    value = result.cells.set_index("id").loc["0-0", "value"]
    assert value == pytest.approx(1.0)  # 1 request per (at least) 100 households, not 2.4
    assert result.household_floor == 100


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"unit": "hexes"}, "unit"),
        ({"normalize": "area"}, "normalize"),
        ({"min_households": -1}, "min_households"),
        ({"unit": "grids"}, "grids"),
        ({"resolution": 16}, "resolution"),
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        hotspots(centres(ALL), centres(ALL), **kwargs)  # type: ignore[arg-type]
    assert err.value.field == field


def test_the_demo_recent_year_has_real_hot_spots(demo_data) -> None:  # type: ignore[no-untyped-def]
    """The demo's open requests concentrate in several places beyond chance (Gi*, FDR)."""
    r = demo_data.requests
    open_requests = r[r["status"].isin(OPEN)]
    result = hotspots(open_requests, demo_data.households, area=demo_data.community["boundary"])
    assert result.status == "ok"
    hot = [c for c, level in by_code(result).items() if level > 0]
    # Group the hot cells into connected places: there are several, each of several cells.
    places: list[set[str]] = []
    for cell in hot:
        touching = [p for p in places if any(h3.grid_distance(cell, o) <= 1 for o in p)]
        merged = {cell}.union(*touching)
        places = [p for p in places if p not in touching] + [merged]
    assert len(places) >= 3, places
    assert all(len(p) >= 3 for p in places)
    assert result.cold == 0
    cells = result.cells.set_index("id")
    share = cells.loc[hot, "requests"].sum() / cells["requests"].sum()
    assert share > 0.5, "the hot spots should hold most open requests"
    assert len(hot) / len(cells) < 0.1
    # Nine grids are too few features for Gi*: the grid map says so instead.
    by_grid = hotspots(open_requests, demo_data.households, unit="grids", grids=demo_data.grids)
    assert by_grid.status == "too_few_features"

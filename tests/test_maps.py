"""Map builders (content: layers, legend, tooltip values), tiles and the GCJ-02 shift, local
assets, personal data, and the maps served by the API and written by the CLI (both backends).

The pages are loaded in a real browser by tests/test_maps_browser.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import pandas as pd
import pyproj
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point, box
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from api import create_app
from geogrid.crs import wgs84_to_gcj02
from geogrid.db import models as m
from geogrid.errors import ConfigurationError, InvalidInput, NotFound
from geogrid.i18n import catalog
from geogrid.io.export import mask_name
from geogrid.maps import assets
from geogrid.maps.base import render_html
from geogrid.maps.cli import map_app
from geogrid.maps.coverage import coverage_map, grid_measures
from geogrid.maps.hotspot import hotspot_map
from geogrid.maps.plan import plan_changes, plan_map
from geogrid.maps.service import HotspotRequest, build_coverage, build_hotspots
from geogrid.maps.tiles import tile_source
from geogrid.planning.diff import diff_plans
from geogrid.settings import DatabaseSettings, MapSettings, Settings

GEOD = pyproj.Geod(ellps="WGS84")
X0, Y0 = 114.40, 23.14  # near Huizhou
D = 0.01


# --- hand-made frames ------------------------------------------------------------------------


def small_grids() -> gpd.GeoDataFrame:
    """Four grids in a 2 × 2 square near Huizhou with known counts."""
    return gpd.GeoDataFrame(
        {
            "code": [f"441302011005{i:03d}" for i in (1, 2, 3, 4)],
            "name": ["第1网格", "第2网格", "第3网格", "第4网格"],
            "households": [200, 100, 0, 50],
            "residents": [600, 300, 0, 150],
            "members": [4, 0, 1, 2],
            "visited": [150, 10, 0, 25],
            "open_requests": [3, 0, 0, 1],
            "received": [10, 2, 0, 4],
            "resolved": [7, 2, 0, 3],
            "fields": [4, 1, 1, 2],
            "fields_vacant": [0, 1, 0, 0],
            "uncovered": [0, 100, 0, 0],
            "branch": ["第一党支部", None, None, "第二党支部"],
            "lead_member_masked": ["张*明", None, None, "李*"],
        },
        geometry=[
            box(X0, Y0 + D, X0 + D, Y0 + 2 * D),
            box(X0 + D, Y0 + D, X0 + 2 * D, Y0 + 2 * D),
            box(X0, Y0, X0 + D, Y0 + D),
            box(X0 + D, Y0, X0 + 2 * D, Y0 + D),
        ],
        crs="EPSG:4326",
    )


def small_fields() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "field_id": [1, 2],
            "name": ["长湖街责任田", "空缺责任田"],
            "member_id": [7, None],
            "grid_code": ["441302011005001", "441302011005002"],
            "households": [126, 100],
            "member_masked": ["王*华", None],
        },
        geometry=[
            box(X0 + 0.001, Y0 + D + 0.001, X0 + 0.004, Y0 + D + 0.004),
            box(X0 + D + 0.001, Y0 + D + 0.001, X0 + D + 0.004, Y0 + D + 0.004),
        ],
        crs="EPSG:4326",
    )


def layers(m: folium.Map) -> dict[str, Any]:
    return {
        getattr(child, "layer_name", key): child
        for key, child in m._children.items()
        if hasattr(child, "layer_name")
    }


def grid_layer(m: folium.Map) -> folium.GeoJson:
    return next(v for k, v in layers(m).items() if k.startswith(("网格 —", "Grids —")))


def props(layer: folium.GeoJson) -> list[dict[str, Any]]:
    return [f["properties"] for f in layer.data["features"]]


# --- coverage builder ------------------------------------------------------------------------


def test_grid_measures_follow_their_definitions() -> None:
    out = grid_measures(small_grids())
    assert list(out["households_per_member"]) == [50.0, None, 0.0, 25.0]
    assert list(out["visit_coverage"]) == [0.75, 0.1, None, 0.5]
    assert list(out["open_per_100"]) == [1.5, 0.0, None, 2.0]
    assert list(out["resolution_rate"]) == [0.7, 1.0, None, 0.75]


def test_coverage_map_layers_legend_and_tooltip_values() -> None:
    m = coverage_map(
        small_grids(),
        fields=small_fields(),
        uncovered=pd.DataFrame({"lon": [X0 + 1.5 * D] * 3, "lat": [Y0 + 1.5 * D] * 3}),
        measure="visit_coverage",
        title="金源社区 · 网格覆盖图",
        subtitle=["方案 v1", "统计周期 全部 – 2026-11-01"],
    )
    names = list(layers(m))
    assert names[:2] == ["网格 — 走访覆盖率", "网格编码与名称"]
    assert "责任田（按党员）" in names and "未覆盖住户" in names
    assert "党员位置" not in names  # public map
    p = props(grid_layer(m))
    assert [x["measure"] for x in p] == ["75.0%", "10.0%", "–", "50.0%"]
    assert [x["households"] for x in p] == ["200", "100", "0", "50"]
    assert p[0]["resolution_rate"] == "70.0%" and p[2]["resolution_rate"] == "–"
    assert p[0]["fields"] == "4（空缺 0）"
    assert "lead" not in p[0]  # no name at all on a public map, not even masked
    # Visit coverage classes: 0.75 → 60–80 %, 0.1 → < 20 %, no data grey.
    assert [x["fill"] for x in p] == ["#31a354", "#edf8e9", "#d9d9d9", "#74c476"]
    page = render_html(m)
    for text in ("走访覆盖率", "60% – 80%", "无数据", "金源社区 · 网格覆盖图", "公开版", "方案 v1"):
        assert text in page
    assert "王*华" not in page  # the field's member: public maps say only held / vacant
    fields = props(layers(m)["责任田（按党员）"])
    assert [f["member"] for f in fields] == ["已落实", "空缺"]


def test_official_coverage_map_masks_names_and_adds_members() -> None:
    members = pd.DataFrame(
        {
            "name_masked": ["王*华", "赵*"],
            "kind": ["resident", "duty_post"],
            "branch": ["第一党支部", None],
            "lon": [X0 + 0.002, X0 + 0.012],
            "lat": [Y0 + 0.012, Y0 + 0.002],
        }
    )
    m = coverage_map(
        small_grids(),
        fields=small_fields(),
        members=members,
        uncovered=pd.DataFrame({"lon": [X0 + 1.5 * D] * 3, "lat": [Y0 + 1.5 * D] * 3}),
        audience="official",
        lang="en",
    )
    names = list(layers(m))
    assert "Members' positions" in names
    assert layers(m)["Members' positions"].count == 2
    # Officials see households outside fields per door: three at one door = one marker.
    assert layers(m)["Households outside every field"].count == 1
    p = props(grid_layer(m))
    assert p[0]["lead"] == "张*明" and p[1]["lead"] == "–"
    assert p[0]["measure"] == "50" and p[1]["measure"] == "–"
    assert p[0]["fields"] == "4 (0 vacant)"
    page = render_html(m)
    assert "王*华" in page and "Households per member" in page and "officials" not in page


def test_coverage_map_refuses_unknown_measure_audience_lang() -> None:
    for kwargs, field in (
        ({"measure": "area"}, "measure"),
        ({"audience": "press"}, "audience"),
        ({"lang": "fr"}, "lang"),
        ({"tiles": "google"}, "tiles"),
    ):
        with pytest.raises(InvalidInput) as err:
            coverage_map(small_grids(), **kwargs)  # type: ignore[arg-type]
        assert err.value.field == field


def test_builders_draw_onto_an_existing_map() -> None:
    m = coverage_map(small_grids(), measure="open_per_100")
    again = coverage_map(small_grids(), measure="households_per_member", m=m)
    assert again is m
    assert sum(name.startswith("网格 —") for name in layers(m)) == 2


# --- tiles and the GCJ-02 shift ---------------------------------------------------------------


def test_tile_url_templates() -> None:
    osm = tile_source("osm")
    assert osm.layers[0].url == "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    amap = tile_source("amap")
    assert amap.crs == "gcj02" and "webrd0{s}.is.autonavi.com" in amap.layers[0].url
    assert "lang=zh_cn" in amap.layers[0].url
    assert "lang=en" in tile_source("amap", lang="en").layers[0].url
    tdt = tile_source("tianditu", settings=MapSettings(tianditu_key="k123"))
    assert [spec.url.split("/wmts")[0] for spec in tdt.layers] == [
        "https://t{s}.tianditu.gov.cn/vec_w",
        "https://t{s}.tianditu.gov.cn/cva_w",
    ]
    assert all("tk=k123" in s.url and "TILEMATRIX={z}" in s.url for s in tdt.layers)
    assert tdt.crs == "wgs84"  # CGCS2000, no shift
    english = tile_source("tianditu", lang="en", settings=MapSettings(tianditu_key="k"))
    assert "eva_w" in english.layers[1].url
    assert tile_source("none").layers == ()
    # Asked for and not configured: the caller's choice (422); the service's own default: 500.
    with pytest.raises(InvalidInput, match="GEOGRID_TIANDITU_KEY") as asked:
        tile_source("tianditu", settings=MapSettings(tianditu_key=None))
    assert asked.value.field == "tiles"
    with pytest.raises(ConfigurationError, match="GEOGRID_TIANDITU_KEY"):
        tile_source(None, settings=MapSettings(map_tiles="tianditu", tianditu_key=None))
    custom = tile_source(
        "custom",
        settings=MapSettings(
            map_tile_url="http://tiles.local/{z}/{x}/{y}.png", map_tile_crs="gcj02"
        ),
    )
    assert custom.crs == "gcj02"


def test_pages_name_their_tiles_and_none_names_none() -> None:
    for key, fragment in (
        ("osm", "tile.openstreetmap.org"),
        ("amap", "is.autonavi.com"),
    ):
        page = render_html(coverage_map(small_grids(), tiles=key))
        assert fragment in page
    page = render_html(coverage_map(small_grids(), tiles="none"))
    assert "openstreetmap" not in page and "autonavi" not in page
    assert not re.search(r"https?://(?!www\.openstreetmap)[^\"' ]*\{z\}", page)


def test_amap_shifts_every_overlay_to_gcj02() -> None:
    grids = small_grids()
    plain = grid_layer(coverage_map(grids, tiles="none"))
    shifted = grid_layer(coverage_map(grids, tiles="amap"))
    x, y = plain.data["features"][0]["geometry"]["coordinates"][0][0]
    sx, sy = shifted.data["features"][0]["geometry"]["coordinates"][0][0]
    gx, gy = wgs84_to_gcj02(x, y)
    assert (sx, sy) == pytest.approx((gx, gy), abs=2e-6)
    _, _, metres = GEOD.inv(x, y, sx, sy)
    assert 450 < metres < 700, metres  # "about 580 m near Huizhou"
    # Points too (members, requests): the same shift.
    members = pd.DataFrame(
        {"name_masked": ["王*华"], "kind": ["resident"], "branch": [None], "lon": [x], "lat": [y]}
    )
    m = coverage_map(grids, members=members, audience="official", tiles="amap")
    row = json.loads(str(layers(m)["党员位置"].rows_json))[0]
    assert (row[1], row[0]) == pytest.approx((gx, gy), abs=2e-6)


# --- assets: nothing from a CDN --------------------------------------------------------------


def test_inline_pages_are_standalone_and_served_pages_link_local_assets() -> None:
    m = coverage_map(small_grids())
    inline = render_html(m)
    assert "<script src=" not in inline and '<link rel="stylesheet" href=' not in inline
    assert "leaflet-1.9.4/dist/leaflet.js" in inline  # as a comment naming what is inlined
    assert "url(images/" not in inline  # Leaflet's CSS images are data: URIs
    assert not re.search(r"jquery|bootstrap|font-?awesome|cdn\.|unpkg", inline, re.I)
    served = render_html(coverage_map(small_grids()), assets="assets/")
    scripts = re.findall(r'<script src="([^"]+)"', served)
    assert scripts == [
        "assets/leaflet-1.9.4/dist/leaflet.js",
    ]
    hot_page = render_html(
        hotspot_map(_result(), requests=_requests(), tiles="none"), assets="/maps/assets/"
    )
    scripts = re.findall(r'<script src="([^"]+)"', hot_page)
    assert scripts[0] == "/maps/assets/leaflet-1.9.4/dist/leaflet.js"  # first: the others need it
    assert sorted(scripts[1:]) == [
        f"/maps/assets/folium-{folium.__version__}/leaflet_heat.min.js",
        "/maps/assets/leaflet.markercluster-1.5.3/dist/leaflet.markercluster.js",
    ]


def test_a_plugin_without_a_local_copy_is_refused() -> None:
    from folium.plugins import MiniMap

    m = coverage_map(small_grids())
    MiniMap().add_to(m)
    with pytest.raises(ConfigurationError, match="other servers"):
        render_html(m)


def test_assets_are_installed_pinned_and_checked(tmp_path: Path) -> None:
    directory = assets.check_assets()
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["packages"]["leaflet"] == "1.9.4"
    with pytest.raises(ConfigurationError, match="not installed"):
        assets.check_assets(tmp_path)
    with pytest.raises(InvalidInput):
        assets.asset_path("../../../etc/passwd")
    with pytest.raises(InvalidInput):
        assets.asset_path("manifest.json")
    assert assets.asset_path("leaflet-1.9.4/dist/leaflet.css").is_file()


# --- hot-spot builder ------------------------------------------------------------------------


def _requests() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lon": [X0 + 0.005, X0 + 0.015],
            "lat": [Y0 + 0.015, Y0 + 0.005],
            "category_name": ["下水道堵塞", "路灯不亮"],
            "category_name_en": ["Blocked sewer", "Street light out"],
            "status": ["in_progress", "escalated"],
            "received_at": pd.to_datetime(["2026-10-01T02:00:00Z", "2026-06-01T02:00:00Z"]),
            "overdue": [False, True],
            "days_open": [31, 153],
        }
    )


def _result():  # type: ignore[no-untyped-def]
    from geogrid.hotspots import hotspots

    # A 6 × 6 lattice of grids around the small square, one busy corner.
    cells = gpd.GeoDataFrame(
        {"code": [f"c{r}{c}" for r in range(6) for c in range(6)], "name": None},
        geometry=[
            box(X0 + c * D / 3, Y0 + r * D / 3, X0 + (c + 1) * D / 3, Y0 + (r + 1) * D / 3)
            for r in range(6)
            for c in range(6)
        ],
        crs="EPSG:4326",
    )
    homes = gpd.GeoSeries([g.centroid for g in cells.geometry] * 10, crs="EPSG:4326")
    busy = [g.centroid for g in cells.geometry[:8]] * 6 + [g.centroid for g in cells.geometry]
    return hotspots(gpd.GeoSeries(busy, crs="EPSG:4326"), homes, unit="grids", grids=cells)


def test_hotspot_map_bins_tooltips_and_legend() -> None:
    result = _result()
    assert result.status == "ok" and result.hot > 0
    m = hotspot_map(result, requests=_requests(), grids=small_grids(), title="热点")
    cells = props(layers(m)["热点与冷点（Gi*）"])
    assert len(cells) == int((result.cells["requests"] > 0).sum())
    first = result.cells.iloc[0]
    tip = cells[0]
    assert tip["requests"] == str(int(first["requests"]))
    assert tip["z"] == f"{first['z']:.2f}" and tip["confidence"].startswith("热点")
    assert {c["confidence"] for c in cells} >= {"热点 99%"}
    assert layers(m)["未结诉求（聚合）"].count == 2
    assert "未结诉求密度" in layers(m)  # heat layer
    page = render_html(m)
    for text in ("热点 99%", "冷点 90%", "不显著", "Benjamini-Hochberg", "下水道堵塞"):
        assert text in page
    assert 'id="geogrid-notice"' not in page
    # Every bin in plain words in the legend; the heat layer and the requests there too.
    legend = m_meta(m)["legend"]
    assert "热点 99%：这片未结诉求的聚集极不可能是偶然" in legend
    assert "冷点 95%：此处未结诉求如此之少，不太可能是偶然" in legend
    assert any(label.startswith("未结诉求密度（热力图层") for label in m_meta(m)["legend_layers"])
    assert {c["meaning"] for c in cells if c["confidence"] == "热点 99%"} == {
        "热点 99%：这片未结诉求的聚集极不可能是偶然"
    }


def m_meta(m):  # type: ignore[no-untyped-def]
    from geogrid.maps.base import context_of

    ctx = context_of(m)
    assert ctx is not None
    return ctx.meta


def _holed_result():  # type: ignore[no-untyped-def]
    """A busy 3 × 3 block of a 6 × 6 lattice whose centre has no request: Gi* still calls
    that centre a 99% hot spot (its neighbours are busy)."""
    from geogrid.hotspots import hotspots

    cells = gpd.GeoDataFrame(
        {"code": [f"c{r}{c}" for r in range(6) for c in range(6)], "name": None},
        geometry=[
            box(X0 + c * D / 3, Y0 + r * D / 3, X0 + (c + 1) * D / 3, Y0 + (r + 1) * D / 3)
            for r in range(6)
            for c in range(6)
        ],
        crs="EPSG:4326",
    )
    inner = [int(c[1]) < 3 and int(c[2]) < 3 for c in cells["code"]]
    block = [
        g.centroid
        for g, i, c in zip(cells.geometry, inner, cells["code"], strict=True)
        if i and c != "c11"
    ]
    rest = [
        g.centroid
        for g, i, c in zip(cells.geometry, inner, cells["code"], strict=True)
        if not i and (int(c[1]) + int(c[2])) % 2
    ]
    homes = gpd.GeoSeries([g.centroid for g in cells.geometry] * 10, crs="EPSG:4326")
    reqs = gpd.GeoSeries(block * 8 + rest, crs="EPSG:4326")
    return hotspots(reqs, homes, unit="grids", grids=cells)


def test_cells_without_requests_are_never_hot_or_cold_spots() -> None:
    result = _holed_result()
    empty = result.cells[result.cells["requests"] == 0]
    assert (empty["confidence"] != 0).any()  # the statistics do mark an empty cell
    for lang, name in (("zh", "热点与冷点（Gi*）"), ("en", "Hot and cold spots (Gi*)")):
        m = hotspot_map(result, lang=lang)
        cells = props(layers(m)[name])
        assert len(cells) == int((result.cells["requests"] > 0).sum())
        assert all(c["requests"] != "0" for c in cells)
        shown = result.cells[result.cells["requests"] > 0]
        assert m_meta(m)["hot"] == int((shown["confidence"] > 0).sum())
    legend = m_meta(m)["legend"]
    assert "Hot spot 99%: this cluster of unresolved requests is very unlikely to be chance" in (
        legend
    )
    assert "Cold spot 90%: so few unresolved requests here is probably not chance" in legend


def test_hotspot_map_says_when_there_are_too_few_features() -> None:
    from geogrid.hotspots import hotspots

    homes = gpd.GeoSeries([g.centroid for g in small_grids().geometry] * 5, crs="EPSG:4326")
    reqs = gpd.GeoSeries([Point(X0 + 0.005, Y0 + 0.015)] * 12, crs="EPSG:4326")
    result = hotspots(reqs, homes, unit="grids", grids=small_grids())
    m = hotspot_map(result, requests=_requests(), lang="en")
    page = render_html(m)
    assert "Too few features (4; at least 30 are needed)" in page
    cells = props(layers(m)["Hot and cold spots (Gi*)"])
    assert {c["confidence"] for c in cells} == {"–"} and {c["fill"] for c in cells} == {"#bdbdbd"}
    assert "Hot spot 99%" not in page


# --- plan map ----------------------------------------------------------------------------------


def test_plan_changes_and_plan_map() -> None:
    active = gpd.GeoDataFrame(
        {"code": ["A", "B"], "name": ["甲", "乙"]},
        geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)],
        crs="EPSG:4326",
    ).assign(geometry=lambda f: f.geometry.translate(X0, Y0).scale(0.01, 0.01, origin=(X0, Y0)))
    draft = gpd.GeoDataFrame(
        {"code": ["A", "B"], "name": ["甲", "乙"]},
        geometry=[box(0, 0, 1.5, 1), box(1.5, 0, 2, 1)],
        crs="EPSG:4326",
    ).assign(geometry=lambda f: f.geometry.translate(X0, Y0).scale(0.01, 0.01, origin=(X0, Y0)))
    homes = gpd.GeoSeries(
        [Point(X0 + 0.001 * (k + 0.5), Y0 + 0.005) for k in range(20)], crs="EPSG:4326"
    )
    fields = gpd.GeoDataFrame(
        {"name": ["留", "移"]},
        geometry=[
            box(X0 + 0.016, Y0, X0 + 0.019, Y0 + 0.003),
            box(X0 + 0.011, Y0, X0 + 0.014, Y0 + 0.003),
        ],
        crs="EPSG:4326",
    )
    changes = plan_changes(active, draft, households=homes, fields=fields)
    # Doors at x = 0.0105 … 0.0145 (east of the old edge, west of the new one) move B → A.
    assert list(changes.households["from_code"]) == ["B"] * 5
    assert list(changes.households["to_code"]) == ["A"] * 5
    assert list(changes.fields["name"]) == ["移"]
    m = plan_map(active, draft, changes=changes, title="方案对比")
    assert {"现行方案网格", "草案网格", "调整网格的住户", "调整网格的责任田"} <= set(layers(m))
    page = render_html(m)
    assert "调整网格的住户: 5" in page and "调整网格的责任田: 1" in page
    # The same matching as the plan diff: what moves is what the diff calls rehomed.
    diff = diff_plans(active, draft, households=gpd.GeoDataFrame(geometry=homes))
    assert m_meta(m)["moved_households"] == diff.households_rehomed == 5
    assert m_meta(m)["renumbered"] == {}


def test_plan_map_tells_renumbering_from_moving() -> None:
    """A draft that only renumbers (A and B swap codes, same territory) moves nobody — as the
    diff says (households_rehomed 0) — though every household's code changes; the map names
    the renumbered grids, and colours drafts by households against the target."""
    active = gpd.GeoDataFrame(
        {"code": ["A", "B", "C"], "name": ["甲", "乙", "丙"]},
        geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(2, 0, 3, 1)],
        crs="EPSG:4326",
    ).assign(geometry=lambda f: f.geometry.translate(X0, Y0).scale(0.01, 0.01, origin=(X0, Y0)))
    renumbered = active.assign(code=["B", "A", "C"])
    homes = gpd.GeoDataFrame(
        geometry=[Point(X0 + 0.00004 * (k + 0.5), Y0 + 0.005) for k in range(250)]  # A: 250
        + [Point(X0 + 0.01 + 0.00002 * (k + 0.5), Y0 + 0.005) for k in range(350)]  # B: 350
        + [Point(X0 + 0.02 + 0.00001 * (k + 0.5), Y0 + 0.005) for k in range(600)],  # C: 600
        crs="EPSG:4326",
    )
    diff = diff_plans(active, renumbered, households=homes)
    assert diff.counts["households_rehomed"] == 0 and diff.counts["households_moved"] > 0
    m = plan_map(active, renumbered, households=homes, parents=diff.parents, lang="en")
    meta = m_meta(m)
    assert meta["moved_households"] == diff.households_rehomed == 0
    assert meta["households_by_code"] == diff.counts["households_moved"]
    assert meta["renumbered"] == {"A": "B", "B": "A"}
    assert "moved_households" not in layers(m) and "Households changing grid" not in layers(m)
    page = render_html(m)
    assert "Grids only renumbered (same territory, new code): B → A, A → B" in page
    assert "stay in their grid&#x27;s territory (grids split or renumbered): 600" in page
    assert meta["draft_classes"] == {"B": "under", "A": "within", "C": "over"}
    assert meta["legend"] == [
        "Under 300 households",
        "300–500 households (target)",
        "Over 500 households",
    ]
    # Without the diff's parents the map matches grids the same way.
    alone = plan_map(active, renumbered, households=homes)
    assert m_meta(alone)["moved_households"] == 0
    # A real move: C's western half goes to B (drafted as A's old code), nobody else moves.
    moved = renumbered.assign(
        geometry=[
            renumbered.geometry[0],
            renumbered.geometry[1].union(box(X0 + 0.02, Y0, X0 + 0.025, Y0 + 0.01)),
            box(X0 + 0.025, Y0, X0 + 0.03, Y0 + 0.01),
        ]
    )
    diff = diff_plans(active, moved, households=homes)
    m = plan_map(active, moved, households=homes, parents=diff.parents)
    assert m_meta(m)["moved_households"] == diff.households_rehomed > 0
    assert m_meta(m)["renumbered"] == {"B": "A"}
    assert layers(m)["调整网格的住户"].count > 0


# --- from the database (both backends) ---------------------------------------------------------


def _public_vocabulary(demo_data) -> str:  # type: ignore[no-untyped-def]
    """Words that legitimately appear on maps (places, units, labels)."""
    parts: list[str] = []
    for frame, cols in (
        (demo_data.streets, ["name"]),
        (demo_data.grids, ["name"]),
        (demo_data.fields, ["name"]),
        (demo_data.buildings, ["name", "compound"]),
        (demo_data.households, ["street_name", "compound", "building_name"]),
        (demo_data.branches, ["name"]),
        (demo_data.categories, ["name"]),
        (demo_data.resident_units, ["name"]),
    ):
        for col in cols:
            if col in frame.columns:
                parts.extend(str(v) for v in frame[col].dropna())
    parts.extend(m.string for m in catalog("zh") if m.id and isinstance(m.string, str))
    return "\n".join(parts)


def personal_names(demo_data) -> list[str]:  # type: ignore[no-untyped-def]
    """Members' and household heads' names, except 2-character ones that are also ordinary
    words of the map (a place name may contain a 2-character "name")."""
    vocabulary = _public_vocabulary(demo_data)
    names = set(demo_data.members["name"].dropna()) | set(
        demo_data.households["head_name"].dropna()
    )
    return sorted(n for n in names if len(n) >= 3 or n not in vocabulary)


def leaked(page: str, names: list[str]) -> list[str]:
    """The names found in ``page``: every run of Chinese characters is cut into all its 1–4
    character pieces once, so thousands of names are checked at the cost of one pass."""
    pieces: set[str] = set()
    for run in re.findall(r"[\u4e00-\u9fff*]+", page):
        for i in range(len(run)):
            for k in range(1, 5):
                pieces.add(run[i : i + k])
    return [n for n in names if n in pieces]


def test_public_maps_carry_no_personal_data(demo_engine: Engine, demo_data) -> None:  # type: ignore[no-untyped-def]
    names = personal_names(demo_data)
    assert len(names) > 5000
    with demo_engine.connect() as conn:
        coverage = render_html(build_coverage(conn, audience="public"))
        hot, _ = build_hotspots(conn, HotspotRequest(audience="public"))
        hot_page = render_html(hot)
    masked = {mask_name(n) for n in demo_data.members["name"]}
    for page in (coverage, hot_page):
        assert leaked(page, names) == []
        # Not even masked names: public maps say whether a field is held, not by whom.
        assert [n for n in masked if n and n in page] == []


def test_request_tooltips_link_to_the_request_page_on_official_maps_only(
    demo_engine: Engine,
    demo_data,  # type: ignore[no-untyped-def]
) -> None:
    """Officials' maps: each request's tooltip gives its number and grid, its popup links to
    its page; public maps give its grid and link nowhere (the public cannot open the page)."""
    with demo_engine.connect() as conn:
        official, _ = build_hotspots(
            conn, HotspotRequest(audience="official", lang="en"), request_url="../requests/{id}"
        )
        public, _ = build_hotspots(
            conn, HotspotRequest(audience="public"), request_url="../requests/{id}"
        )
    with demo_engine.connect() as conn:
        open_ids = set(
            conn.execute(select(m.Request.id).where(m.Request.status.in_(m.OPEN_STATUSES)))
            .scalars()
            .all()
        )
    layer = layers(official)["Open requests (clustered)"]
    rows, fields = json.loads(layer.rows_json), json.loads(layer.fields_json)
    assert [f[0] for f in fields[:2]] == ["Request", "Grid"] and fields[1][2]  # translate=no
    assert {row[2] for row in rows} == open_ids
    grids = set(demo_data.grids["code"].astype(str))
    assert sum(1 for row in rows if row[3] in grids) > 0.9 * len(rows)
    assert json.loads(layer.link_json) == {
        "field": 0,
        "href": "../requests/{id}",
        "text": "Open the request's page",
    }
    page = render_html(official)
    assert 'target="_top" href="' in page and "bindPopup" in page
    layer = layers(public)["未结诉求（聚合）"]
    rows = json.loads(layer.rows_json)
    assert json.loads(layer.link_json) is None and {row[2] for row in rows} == {None}
    assert sum(1 for row in rows if row[3] in grids) > 0.9 * len(rows)
    assert "../requests/" not in render_html(public)


def test_official_maps_show_masked_names_only(demo_engine: Engine, demo_data) -> None:  # type: ignore[no-untyped-def]
    with demo_engine.connect() as conn:
        m = build_coverage(conn, audience="official", measure="visit_coverage")
    page = render_html(m)
    assert leaked(page, personal_names(demo_data)) == []
    masked = {mask_name(n) for n in demo_data.members["name"]}
    assert sum(1 for n in masked if n and n in page) > 100
    assert len(layers(m)["党员位置"].rows_json) > 0 and layers(m)["党员位置"].count > 600


def test_coverage_from_the_demo(demo_engine: Engine, demo_data) -> None:  # type: ignore[no-untyped-def]
    with demo_engine.connect() as conn:
        m = build_coverage(conn, measure="open_per_100", lang="en")
    p = props(grid_layer(m))
    assert len(p) == 9 == len(demo_data.grids)
    assert sum(int(x["households"].replace(",", "")) for x in p) == len(demo_data.households)
    r = demo_data.requests
    assert sum(int(x["open_requests"]) for x in p) == int(
        r["status"].isin(["received", "registered", "dispatched", "in_progress", "escalated"]).sum()
    )
    assert sum(int(x["received"]) for x in p) == len(r)
    assert sum(int(x["uncovered"]) for x in p) > 0  # the compound without fields
    page = render_html(m)
    assert "Jinyuan Community · Grid coverage map" in page
    assert "Demo data" in page


def test_hotspots_from_the_demo_and_filters(demo_engine: Engine) -> None:
    with demo_engine.connect() as conn:
        _, result = build_hotspots(conn, HotspotRequest(audience="official"))
        assert result.status == "ok" and result.hot >= 9 and result.cold == 0
        by_grid, grid_result = build_hotspots(conn, HotspotRequest(unit="grids"))
        assert grid_result.status == "too_few_features"
        assert "单元太少（9 个" in render_html(by_grid)
        _, overdue = build_hotspots(conn, HotspotRequest(status="overdue"))
        assert overdue.n_requests < result.n_requests
        _, sewer = build_hotspots(conn, HotspotRequest(categories=["sewer_blocked"]))
        assert 0 < sewer.n_requests < result.n_requests
        _, care = build_hotspots(conn, HotspotRequest(programmes=["care"]))
        assert care.n_requests < result.n_requests
        with pytest.raises(InvalidInput) as err:
            build_hotspots(conn, HotspotRequest(categories=["no_such_thing"]))
        assert err.value.field == "category"
        with pytest.raises(InvalidInput) as err:
            build_hotspots(conn, HotspotRequest(programmes=["fun"]))
        assert err.value.field == "programme"
        with pytest.raises(NotFound):
            build_coverage(conn, community="999999999999")


# --- the API (TestClient; the real server is in test_maps_browser.py) --------------------------


def maps_app(url: str) -> Any:
    return create_app(Settings(database=DatabaseSettings(database_url=url)))


@pytest.fixture
def client(demo_engine: Engine) -> Iterator[TestClient]:
    with TestClient(maps_app(demo_engine.url.render_as_string(hide_password=False))) as c:
        yield c


def test_api_serves_maps_and_assets(client: TestClient) -> None:
    r = client.get("/maps/coverage", params={"measure": "visit_coverage", "lang": "en"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'src="assets/leaflet-1.9.4/dist/leaflet.js"' in r.text
    js = client.get("/maps/assets/leaflet-1.9.4/dist/leaflet.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "immutable" in js.headers["cache-control"]
    assert client.get("/maps/assets/leaflet-1.9.4/dist/images/layers.png").status_code == 200
    r = client.get("/maps/hotspots", params={"status": "overdue", "programme": "convenience"})
    assert r.status_code == 200 and "未结诉求热点图" in r.text


#: Bad requests and the status and field their error envelope names.
API_ERRORS = [
    ("/maps/coverage?measure=area", 422, "measure"),
    ("/maps/coverage?audience=press", 422, "audience"),
    ("/maps/hotspots?resolution=20", 422, "resolution"),
    ("/maps/hotspots?category=nope", 422, "category"),
    ("/maps/coverage?from=2026-13-01", 422, "from"),
    ("/maps/coverage?community=999999999999", 404, "community"),
    ("/maps/coverage?tiles=tianditu", 422, "tiles"),  # not configured here
    ("/maps/coverage?tiles=custom", 422, "tiles"),
    ("/maps/assets/../../pyproject.toml", 404, None),
    ("/maps/assets/manifest.json", 404, "path"),
]


def test_api_errors_use_the_envelope(client: TestClient) -> None:
    for path, status, field in API_ERRORS:
        r = client.get(path)
        assert r.status_code == status, (path, r.text)
        body = r.json()["error"]
        assert body["code"] and body["message"]
        if field is not None:
            assert body["field"] == field, (path, body)


# --- the CLI -----------------------------------------------------------------------------------


def test_cli_writes_standalone_maps(demo_engine: Engine, tmp_path: Path) -> None:
    url = demo_engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    out = tmp_path / "coverage.html"
    r = runner.invoke(map_app, ["coverage", "--out", str(out), "--database", url, "--lang", "en"])
    assert r.exit_code == 0, r.output
    page = out.read_text(encoding="utf-8")
    assert "<script src=" not in page and "Grid coverage map" in page
    hot = tmp_path / "hot.html"
    r = runner.invoke(
        map_app, ["hotspots", "--out", str(hot), "--database", url, "--json", "--unit", "h3"]
    )
    assert r.exit_code == 0, r.output
    stats = json.loads(r.stdout[r.stdout.index("{") :])
    assert stats["status"] == "ok" and stats["hot"] > 0
    assert hot.stat().st_size < 2_000_000
    r = runner.invoke(map_app, ["coverage", "--out", str(out), "--database", url, "--measure", "x"])
    assert r.exit_code == 1 and "measure" in r.output
    r = runner.invoke(map_app, ["coverage", "--database", url])
    assert r.exit_code == 1 and "--out" in r.output


def test_official_maps_need_an_official_key(client: TestClient, demo_engine: Engine) -> None:
    from tests.requests_factories import new_key

    for path in ("/maps/coverage", "/maps/hotspots"):
        anonymous = client.get(path, params={"audience": "official"})
        assert anonymous.status_code == 401, path
        assert anonymous.json()["error"]["code"] == "unauthorized"
        public_key = new_key(demo_engine, "public")
        r = client.get(path, params={"audience": "official"}, headers={"X-API-Key": public_key})
        assert r.status_code == 403, path
    official = new_key(demo_engine, "official")
    r = client.get(
        "/maps/coverage", params={"audience": "official"}, headers={"X-API-Key": official}
    )
    assert r.status_code == 200
    with demo_engine.connect() as conn:
        lead = conn.execute(
            select(m.Member.name).join(m.Grid, m.Grid.lead_member_id == m.Member.id).limit(1)
        ).scalar_one()
    masked = mask_name(lead)
    assert masked and masked != lead
    assert masked in r.text and lead not in r.text


def _audience_of(page: str) -> str:
    found = re.search(r'"audience":"(public|official)"', page)
    assert found, "no audience in the map's meta"
    return found.group(1)


def test_the_audience_follows_the_session(client: TestClient, demo_engine: Engine) -> None:
    """Signed in as an official, /maps/coverage and /maps/hotspots are the officials' maps
    without ?audience=official; anonymous viewers get the public map; an official map asked
    for without a session sends a browser to /login?next=…, an API client gets JSON 401."""
    from tests.requests_factories import new_key, sign_in

    browser = {"Accept": "text/html,application/xhtml+xml"}
    page = client.get("/maps/coverage", headers=browser)
    assert page.status_code == 200 and _audience_of(page.text) == "public"
    asked = client.get(
        "/maps/hotspots?audience=official&lang=en", headers=browser, follow_redirects=False
    )
    assert asked.status_code == 303
    assert (
        asked.headers["location"] == "/login?next=/maps/hotspots%3Faudience%3Dofficial%26lang%3Den"
    )
    api = client.get("/maps/hotspots?audience=official", headers={"Accept": "application/json"})
    assert api.status_code == 401 and api.json()["error"]["code"] == "unauthorized"

    assert sign_in(client, new_key(demo_engine, "official")).status_code == 303
    coverage = client.get("/maps/coverage", headers=browser)
    assert coverage.status_code == 200 and _audience_of(coverage.text) == "official"
    assert "内部版（姓名已脱敏）" in coverage.text
    hot = client.get("/maps/hotspots", params={"embed": "1"}, headers=browser)
    assert hot.status_code == 200 and "../requests/{id}" in hot.text
    assert 'class="geogrid-title"' not in hot.text and 'class="geogrid-embed"' in hot.text
    # Asked for explicitly, the public map is still there for an official.
    public = client.get("/maps/coverage?audience=public", headers=browser)
    assert _audience_of(public.text) == "public" and "../requests/" not in public.text
    client.cookies.clear()
    anonymous = client.get("/maps/hotspots", headers=browser)
    assert _audience_of(anonymous.text) == "public" and 'class="geogrid-title"' in anonymous.text


def _drawn_points(page: str) -> list[tuple[float, float]]:
    """Every [lon, lat] pair near Huizhou that a page draws."""
    pairs = re.findall(r"\[(11[34]\.\d+),\s*(2[23]\.\d+)\]", page)
    return sorted((round(float(x), 5), round(float(y), 5)) for x, y in pairs)


def test_builders_reproject_a_projected_frame_on_entry() -> None:
    """As geopandas.explore: a frame in UTM is drawn where it is, not stamped as degrees."""
    grids = small_grids()
    utm = grids.to_crs("EPSG:32650")  # UTM 50N, metres
    wgs = render_html(coverage_map(grids, tiles="none"))
    projected = render_html(coverage_map(utm, tiles="none"))
    assert _drawn_points(wgs) and _drawn_points(projected) == _drawn_points(wgs)
    # The plan map too (active and draft in different CRSs).
    plan_wgs = render_html(plan_map(grids, grids, tiles="none"))
    plan_mixed = render_html(plan_map(utm, grids.to_crs("EPSG:3857"), tiles="none"))
    assert _drawn_points(plan_mixed) == _drawn_points(plan_wgs)


def test_request_dates_are_read_in_each_communitys_zone() -> None:
    # 17:30 UTC on 1 March: already 2 March in Shanghai (UTC+8), still 1 March in Urumqi's
    # community time (UTC+6) and in a community that keeps UTC.
    requests = _requests().assign(
        received_at=pd.to_datetime(["2026-03-01T17:30:00Z", "2026-03-01T17:30:00Z"]),
        timezone=["Asia/Shanghai", "Asia/Urumqi"],
    )
    page = render_html(hotspot_map(_result(), requests=requests, grids=small_grids()))
    assert "2026-03-02" in page and "2026-03-01" in page
    shanghai_only = render_html(
        hotspot_map(_result(), requests=requests.drop(columns="timezone"), grids=small_grids())
    )
    assert "2026-03-02" in shanghai_only and "2026-03-01" not in shanghai_only

"""The plan map, for planners: a draft boundary plan over the active one, with the households
and responsibility fields that would change grid highlighted.

:func:`plan_changes` (pure) finds what moves; :func:`plan_map` draws it. Households are points
at their doors without any identity; when many move they are counted per H3 hexagon.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geogrid.maps import base
from geogrid.maps.labels import Lang, check_lang, t
from geogrid.maps.tiles import TileSource, tile_source
from geogrid.settings import MapSettings
from geogrid.spatial import assign_points

__all__ = ["PlanChanges", "plan_changes", "plan_map"]

#: Above this many moving households they are drawn as counts per H3 cell (resolution 11).
MAX_MOVED_POINTS: Final = 3000


@dataclass
class PlanChanges:
    """What a draft plan would move: households (``lon, lat, from_code, to_code``) and fields
    (their columns plus ``from_code, to_code``); a code is None outside every grid."""

    households: pd.DataFrame
    fields: gpd.GeoDataFrame


def _codes(points: np.ndarray, grids: gpd.GeoDataFrame, key: str) -> np.ndarray:
    keys = grids[key].astype(str).to_numpy()
    idx = assign_points(points, grids, key=keys)
    out = np.empty(len(idx), dtype=object)
    out[idx >= 0] = keys[idx[idx >= 0]]
    return out


def plan_changes(
    active: gpd.GeoDataFrame,
    draft: gpd.GeoDataFrame,
    *,
    households: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
    fields: gpd.GeoDataFrame | None = None,
    key: str = "code",
) -> PlanChanges:
    """Households and fields whose grid (``key``) differs between ``active`` and ``draft``.

    Households go to grids by the edge rule (:func:`geogrid.spatial.assign_points`); a field
    goes with its representative point (inside the polygon).
    """
    moved_h = pd.DataFrame(columns=["lon", "lat", "from_code", "to_code"])
    if households is not None and len(households):
        pts = np.asarray(households.geometry.values)
        before = _codes(pts, active, key)
        after = _codes(pts, draft, key)
        moved = before != after
        xy = shapely.get_coordinates(pts[moved])
        moved_h = pd.DataFrame(
            {"lon": xy[:, 0], "lat": xy[:, 1], "from_code": before[moved], "to_code": after[moved]}
        )
    moved_f = gpd.GeoDataFrame({"from_code": [], "to_code": []}, geometry=[], crs="EPSG:4326")
    if fields is not None and len(fields):
        reps = shapely.point_on_surface(np.asarray(fields.geometry.values))
        before = _codes(reps, active, key)
        after = _codes(reps, draft, key)
        moved = before != after
        moved_f = fields[moved].copy()
        moved_f["from_code"] = before[moved]
        moved_f["to_code"] = after[moved]
    return PlanChanges(households=moved_h.reset_index(drop=True), fields=moved_f)


def _outline(
    m: folium.Map,
    grids: gpd.GeoDataFrame,
    source: TileSource,
    *,
    name: str,
    colour: str,
    dash: str | None,
    fill: float,
    class_name: str,
) -> folium.GeoJson:
    frame = base.display_frame(
        gpd.GeoDataFrame(
            {
                "code": grids["code"].astype(str),
                "name": [base.text(v, "") for v in grids.get("name", [None] * len(grids))],
            },
            geometry=np.asarray(grids.geometry.values),
            crs="EPSG:4326",
        ),
        source,
        simplify=base.simplify_tolerance(grids.total_bounds),
        coverage=True,
    )
    layer = folium.GeoJson(
        base.geojson_data(frame, ["code", "name"]),
        name=name,
        style_function=lambda f: {
            "color": colour,
            "weight": 2.5,
            "dashArray": dash,
            "fillColor": colour,
            "fillOpacity": fill,
            "className": class_name,
        },
        tooltip=folium.GeoJsonTooltip(fields=["code", "name"], aliases=["", ""], labels=False),
    )
    layer.add_to(m)
    return layer


def plan_map(
    active: gpd.GeoDataFrame,
    draft: gpd.GeoDataFrame,
    *,
    households: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
    fields: gpd.GeoDataFrame | None = None,
    changes: PlanChanges | None = None,
    lang: str = "zh",
    tiles: str | TileSource | None = "none",
    title: str | None = None,
    subtitle: Sequence[str] = (),
    settings: MapSettings | None = None,
    m: folium.Map | None = None,
) -> folium.Map:
    """The draft plan (blue) over the active one (grey, dashed), with what would move.

    Give ``households``/``fields`` to have the changes computed, or ``changes``. Frames in
    another CRS than WGS 84 are reprojected on entry.
    """
    active, draft, households, fields = (
        base.in_wgs84(f) for f in (active, draft, households, fields)
    )
    lang_: Lang = check_lang(lang)
    if m is None:
        source = (
            tiles
            if isinstance(tiles, TileSource)
            else tile_source(tiles, lang=lang_, settings=settings)
        )
        bounds = np.array([active.total_bounds, draft.total_bounds])
        m = base.new_map(
            (*bounds[:, :2].min(axis=0), *bounds[:, 2:].max(axis=0)),
            tiles=source,
            lang=lang_,
            title=title,
        )
    ctx = base.context_of(m)
    assert ctx is not None
    source = ctx.tiles
    if changes is None:
        changes = plan_changes(active, draft, households=households, fields=fields)
    a_layer = _outline(
        m,
        active,
        source,
        name=t("layer_active", lang_),
        colour="#636363",
        dash="6 4",
        fill=0.0,
        class_name="geogrid-active",
    )
    d_layer = _outline(
        m,
        draft,
        source,
        name=t("layer_draft", lang_),
        colour="#2171b5",
        dash=None,
        fill=0.08,
        class_name="geogrid-draft",
    )
    reps = shapely.point_on_surface(np.asarray(draft.geometry.values))
    x, y = base.display_points(shapely.get_x(reps), shapely.get_y(reps), source)
    labels = base.LabelLayer(
        [
            (float(b), float(a_), [str(code)])
            for a_, b, code in zip(x, y, draft["code"], strict=True)
        ],
        name=t("layer_grid_labels", lang_),
    )
    labels.add_to(m)
    base.register_layers(m, active=a_layer, draft=d_layer, grid_labels=labels)

    moved_f = changes.fields
    if len(moved_f):
        shown = gpd.GeoDataFrame(
            {
                "name": [base.text(v) for v in moved_f.get("name", [None] * len(moved_f))],
                "from_code": [base.text(v) for v in moved_f["from_code"]],
                "to_code": [base.text(v) for v in moved_f["to_code"]],
            },
            geometry=np.asarray(moved_f.geometry.values),
            crs="EPSG:4326",
        )
        frame = base.display_frame(shown, source)
        f_layer = folium.GeoJson(
            base.geojson_data(frame, ["name", "from_code", "to_code"]),
            name=t("layer_moved_fields", lang_),
            style_function=lambda f: {
                "color": "#d94801",
                "weight": 2,
                "fillColor": "#fd8d3c",
                "fillOpacity": 0.45,
                "className": "geogrid-moved-field",
            },
            tooltip=folium.GeoJsonTooltip(
                fields=["name", "from_code", "to_code"],
                aliases=[t("field", lang_), t("moved_from", lang_), t("moved_to", lang_)],
            ),
        )
        f_layer.add_to(m)
        base.register_layers(m, moved_fields=f_layer)

    moved_h = changes.households
    if len(moved_h):
        pairs = moved_h.assign(
            from_code=moved_h["from_code"].fillna("–"), to_code=moved_h["to_code"].fillna("–")
        )
        if len(pairs) > MAX_MOVED_POINTS:
            import h3

            pairs["cell"] = [
                h3.latlng_to_cell(la, lo, 11)
                for lo, la in zip(pairs["lon"], pairs["lat"], strict=True)
            ]
            grouped = pairs.groupby(["cell", "from_code", "to_code"]).size().reset_index(name="n")
            centres = [h3.cell_to_latlng(c) for c in grouped["cell"]]
            lon = np.array([c[1] for c in centres])
            lat = np.array([c[0] for c in centres])
        else:
            grouped = (
                pairs.assign(lon=pairs["lon"].round(6), lat=pairs["lat"].round(6))
                .groupby(["lon", "lat", "from_code", "to_code"])
                .size()
                .reset_index(name="n")
            )
            lon, lat = grouped["lon"].to_numpy(), grouped["lat"].to_numpy()
        px, py = base.display_points(lon, lat, source)
        rows = [
            [float(b), float(a_), f, to, int(n), round(float(3 + 1.5 * np.sqrt(n)), 1)]
            for a_, b, f, to, n in zip(
                px, py, grouped["from_code"], grouped["to_code"], grouped["n"], strict=True
            )
        ]
        h_layer = base.PointLayer(
            rows,
            [
                (t("moved_from", lang_), None),
                (t("moved_to", lang_), None),
                (t("households", lang_), None),
                (None, None),
            ],
            name=t("layer_moved_households", lang_),
            colours=("#cb181d",),
            radius_field=3,
            class_name="geogrid-moved-household",
        )
        h_layer.add_to(m)
        base.register_layers(m, moved_households=h_layer)

    base.add_title(m, title or t("plan_title", lang_), subtitle)
    base.add_legend(
        m,
        t("plan_title", lang_),
        [
            ("#ffffff", t("layer_active", lang_)),
            ("#c6dbef", t("layer_draft", lang_)),
            ("#fd8d3c", f"{t('layer_moved_fields', lang_)}: {len(moved_f)}"),
            ("#cb181d", f"{t('layer_moved_households', lang_)}: {len(moved_h)}"),
        ],
    )
    ctx.meta.update(moved_households=len(moved_h), moved_fields=len(moved_f))
    return m

"""The plan map, for planners: a draft boundary plan over the active one, with the households
and responsibility fields that would really change grid highlighted.

:func:`plan_changes` (pure) finds what moves, matching grids as the plan diff does
(``geogrid.planning.diff``: a draft grid descends from the active grid it overlaps most), so a
grid only renumbered (same territory, new code) moves nobody — the map names those grids;
:func:`plan_map` draws it, draft grids coloured by households against the 300–500 target.
Households are points at their doors without any identity; when many move they are counted
per H3 hexagon.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geogrid.i18n import number
from geogrid.maps import base
from geogrid.maps.labels import Lang, check_lang, t
from geogrid.maps.tiles import TileSource, tile_source
from geogrid.settings import MapSettings
from geogrid.spatial import assign_points

__all__ = ["TARGET", "PlanChanges", "grid_parents", "plan_changes", "plan_map", "target_class"]

#: Above this many moving households they are drawn as counts per H3 cell (resolution 11).
MAX_MOVED_POINTS: Final = 3000


#: Households per grid aimed at (DESIGN.md: about 300–500, Haikou practice; the planner's
#: default target, ``geogrid.planning.common.DEFAULT_TARGET``).
TARGET: Final = (300, 500)
#: Fill of a draft grid under, within and over the target.
TARGET_COLOURS: Final = {"under": "#9ecae1", "within": "#a1d99b", "over": "#fc9272"}
RENUMBERED_COLOUR: Final = "#6a51a3"


@dataclass
class PlanChanges:
    """What a draft plan would really move, matched as the plan diff matches
    (``geogrid.planning.diff``: each draft grid descends from the active grid it overlaps
    most): households (``lon, lat, from_code, to_code``) whose new grid descends from another
    grid than theirs, and fields (their columns plus ``from_code, to_code``) likewise; a code
    is None outside every grid. A household whose grid is only renumbered does not move.

    ``parents``: draft code → active code it descends from. ``renumbered``: draft grids that
    are only renumbered (draft code → active code: the same households, another code).
    ``households_by_code``: households whose grid *code* changes (moved or renumbered).
    ``draft_households``: households per draft grid."""

    households: pd.DataFrame
    fields: gpd.GeoDataFrame
    parents: dict[str, str | None] = field(default_factory=dict)
    renumbered: dict[str, str] = field(default_factory=dict)
    households_by_code: int = 0
    draft_households: dict[str, int] = field(default_factory=dict)


def _codes(points: np.ndarray, grids: gpd.GeoDataFrame, key: str) -> np.ndarray:
    keys = grids[key].astype(str).to_numpy()
    idx = assign_points(points, grids, key=keys)
    out = np.empty(len(idx), dtype=object)
    out[idx >= 0] = keys[idx[idx >= 0]]
    return out


def grid_parents(
    active: gpd.GeoDataFrame, draft: gpd.GeoDataFrame, key: str = "code"
) -> dict[str, str | None]:
    """Draft code → the active code it overlaps most (None: none), as the plan diff's
    ``parents`` (areas in the local UTM zone)."""
    if not len(draft):
        return {}
    if not len(active):
        return {str(c): None for c in draft[key]}
    crs = draft.estimate_utm_crs()
    a = np.asarray(active.to_crs(crs).geometry.values)
    d = np.asarray(draft.to_crs(crs).geometry.values)
    id_, ia = shapely.STRtree(a).query(d, predicate="intersects")
    area = shapely.area(shapely.intersection(d[id_], a[ia]))
    a_codes = active[key].astype(str).to_numpy()
    best: dict[int, tuple[float, int]] = {}
    for i, j, ar in zip(id_, ia, area, strict=True):
        if ar > 0 and ar > best.get(int(i), (0.0, -1))[0]:
            best[int(i)] = (float(ar), int(j))
    return {
        str(code): (str(a_codes[best[i][1]]) if i in best else None)
        for i, code in enumerate(draft[key].astype(str))
    }


def _moved(before: np.ndarray, after: np.ndarray, parents: Mapping[str, str | None]) -> np.ndarray:
    """True where the new grid descends from another grid than the old (the diff's
    ``households_rehomed``)."""
    parent_of = np.array([parents.get(c) if c is not None else None for c in after], dtype=object)
    return np.asarray(parent_of != before, dtype=bool)


def plan_changes(
    active: gpd.GeoDataFrame,
    draft: gpd.GeoDataFrame,
    *,
    households: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
    fields: gpd.GeoDataFrame | None = None,
    key: str = "code",
    parents: Mapping[str, str | None] | None = None,
) -> PlanChanges:
    """Households and fields that would really change grid between ``active`` and ``draft``.

    Households go to grids by the edge rule (:func:`geogrid.spatial.assign_points`); a field
    goes with its representative point (inside the polygon). A draft grid's ``parents`` (the
    plan diff's, else :func:`grid_parents`) is the active grid it descends from: only a
    household whose new grid descends from another grid than its old one moves.
    """
    parents = dict(parents) if parents is not None else grid_parents(active, draft, key)
    moved_h = pd.DataFrame(columns=["lon", "lat", "from_code", "to_code"])
    renumbered: dict[str, str] = {}
    by_code = 0
    draft_households: dict[str, int] = {str(c): 0 for c in draft[key]}
    if households is not None and len(households):
        pts = np.asarray(households.geometry.values)
        before = _codes(pts, active, key)
        after = _codes(pts, draft, key)
        moved = _moved(before, after, parents)
        by_code = int(np.sum(before != after))
        xy = shapely.get_coordinates(pts[moved])
        moved_h = pd.DataFrame(
            {"lon": xy[:, 0], "lat": xy[:, 1], "from_code": before[moved], "to_code": after[moved]}
        )
        for code, n in pd.Series(after[after != None]).value_counts().items():  # noqa: E711
            draft_households[str(code)] = int(n)
        # Only renumbered: another code, one child of its parent, nobody in or out.
        children = pd.Series([p for p in parents.values() if p is not None]).value_counts()
        came, left = set(after[moved]), set(before[moved])
        for code, parent in parents.items():
            if (
                parent is not None
                and parent != code
                and children.get(parent, 0) == 1
                and code not in came
                and parent not in left
            ):
                renumbered[code] = parent
    moved_f = gpd.GeoDataFrame({"from_code": [], "to_code": []}, geometry=[], crs="EPSG:4326")
    if fields is not None and len(fields):
        reps = shapely.point_on_surface(np.asarray(fields.geometry.values))
        before = _codes(reps, active, key)
        after = _codes(reps, draft, key)
        moved = _moved(before, after, parents)
        moved_f = fields[moved].copy()
        moved_f["from_code"] = before[moved]
        moved_f["to_code"] = after[moved]
    return PlanChanges(
        households=moved_h.reset_index(drop=True),
        fields=moved_f,
        parents=parents,
        renumbered=renumbered,
        households_by_code=by_code,
        draft_households=draft_households,
    )


def target_class(n: int, target: tuple[int, int] = TARGET) -> str:
    """``under``, ``within`` or ``over`` the target range of households per grid."""
    low, high = target
    return "under" if n < low else "over" if n > high else "within"


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
    extra: dict[str, list[str]] | None = None,
    tooltip: Sequence[tuple[str, str]] = (),
) -> folium.GeoJson:
    """Grid outlines; ``extra`` columns (``fill``, ``stroke`` override the colours) and a
    ``tooltip`` of (column, label) after the code and name."""
    columns = {
        "code": list(grids["code"].astype(str)),
        "name": [base.text(v, "") for v in grids.get("name", [None] * len(grids))],
        **(extra or {}),
    }
    frame = base.display_frame(
        gpd.GeoDataFrame(columns, geometry=np.asarray(grids.geometry.values), crs="EPSG:4326"),
        source,
        simplify=base.simplify_tolerance(grids.total_bounds),
        coverage=True,
    )
    layer = folium.GeoJson(
        base.geojson_data(frame, list(columns)),
        name=name,
        style_function=lambda f: {
            "color": f["properties"].get("stroke") or colour,
            "weight": 2.5,
            "dashArray": dash,
            "fillColor": f["properties"].get("fill") or colour,
            "fillOpacity": fill,
            "className": class_name,
        },
        tooltip=folium.GeoJsonTooltip(
            fields=["code", "name", *(c for c, _ in tooltip)],
            aliases=["", "", *(label for _, label in tooltip)],
            labels=bool(tooltip),
        ),
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
    parents: Mapping[str, str | None] | None = None,
    target: tuple[int, int] = TARGET,
    settings: MapSettings | None = None,
    m: folium.Map | None = None,
) -> folium.Map:
    """The draft plan over the active one (grey, dashed), with what would really move.

    Draft grids are coloured by their households against ``target`` (under, within, over);
    grids only renumbered are outlined in purple and labelled with their old code. Give
    ``households``/``fields`` (and the plan diff's ``parents``, else they are computed the
    same way) to have the changes computed, or ``changes``. Frames in another CRS than
    WGS 84 are reprojected on entry.
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
        changes = plan_changes(active, draft, households=households, fields=fields, parents=parents)
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
    d_codes = [str(c) for c in draft["code"]]
    counts = [changes.draft_households.get(c, 0) for c in d_codes]
    classes = [target_class(n, target) for n in counts]
    low, high = target
    class_words = {
        "under": t("target_under", lang_, low=number(low, lang_)),
        "within": t("target_within", lang_, low=number(low, lang_), high=number(high, lang_)),
        "over": t("target_over", lang_, high=number(high, lang_)),
    }
    d_layer = _outline(
        m,
        draft,
        source,
        name=t("layer_draft", lang_),
        colour="#2171b5",
        dash=None,
        fill=0.45,
        class_name="geogrid-draft",
        extra={
            "households": [number(n, lang_) for n in counts],
            "target": [class_words[c] for c in classes],
            "renumbered_from": [changes.renumbered.get(c, "–") for c in d_codes],
            "parent": [changes.parents.get(c) or "–" for c in d_codes],
            "fill": [TARGET_COLOURS[c] for c in classes],
            "stroke": [RENUMBERED_COLOUR if c in changes.renumbered else "" for c in d_codes],
        },
        tooltip=[
            ("households", t("households", lang_)),
            ("target", t("target_heading", lang_)),
            ("renumbered_from", t("renumbered_from", lang_)),
            ("parent", t("descends_from", lang_)),
        ],
    )
    reps = shapely.point_on_surface(np.asarray(draft.geometry.values))
    x, y = base.display_points(shapely.get_x(reps), shapely.get_y(reps), source)
    labels = base.LabelLayer(
        [
            (
                float(b),
                float(a_),
                [code, f"← {changes.renumbered[code]}"] if code in changes.renumbered else [code],
            )
            for a_, b, code in zip(x, y, d_codes, strict=True)
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

    lines = [
        *subtitle,
        t("moved_really", lang_, n=number(len(moved_h), lang_)),
    ]
    recoded = changes.households_by_code - len(moved_h)
    if recoded > 0:
        lines.append(t("recoded_households", lang_, n=number(recoded, lang_)))
    if changes.renumbered:
        pairs_ = ", ".join(f"{old} → {new}" for new, old in sorted(changes.renumbered.items()))
        lines.append(t("renumbered_grids", lang_, codes=pairs_))
    base.add_title(m, title or t("plan_title", lang_), lines)
    layers = [(base.swatch("#636363", outline="dashed"), t("active_legend", lang_))]
    if changes.renumbered:
        layers.append(
            (
                base.swatch(RENUMBERED_COLOUR, outline="solid"),
                f"{t('renumbered_legend', lang_)}: {number(len(changes.renumbered), lang_)}",
            )
        )
    layers += [
        ("#fd8d3c", f"{t('layer_moved_fields', lang_)}: {number(len(moved_f), lang_)}"),
        (
            base.swatch("#cb181d", circle=True),
            f"{t('layer_moved_households', lang_)}: {number(len(moved_h), lang_)}",
        ),
    ]
    base.add_legend(
        m,
        t("target_heading", lang_),
        [(TARGET_COLOURS[c], class_words[c]) for c in ("under", "within", "over")],
        layers=layers,
    )
    ctx.meta.update(
        moved_households=len(moved_h),
        moved_fields=len(moved_f),
        households_by_code=changes.households_by_code,
        renumbered=changes.renumbered,
        draft_classes=dict(zip(d_codes, classes, strict=True)),
    )
    return m

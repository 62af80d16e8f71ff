"""The coverage map: grids coloured by a measure, fields per member, uncovered households.

:func:`coverage_map` is a builder in the manner of ``geopandas.explore``: it takes frames
(WGS 84), returns a :class:`folium.Map` and can draw onto one made before (``m=``). It knows
nothing of the database (``geogrid.maps.service`` reads the frames).

Measures (one colours the grids; every figure is in the popups):

=========================  ==================================================================
``households_per_member``  households in the grid ÷ members holding a field in it
``visit_coverage``         households visited in the period ÷ households (a rate, 0–1)
``open_per_100``           requests still open, received in the period, per 100 households
=========================  ==================================================================

Audiences: ``public`` maps carry no personal data at all — no member names, not even masked,
no member positions, and households outside every field only counted per H3 hexagon;
``official`` maps add masked names (张*明), members' positions and those households per door
(per small H3 cell when a district has more than 5,000 such doors), clustered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geogrid.errors import InvalidInput
from geogrid.i18n import number, percent
from geogrid.maps import base
from geogrid.maps.labels import KINDS, Lang, check_lang, pick, t
from geogrid.maps.tiles import TileSource, tile_source
from geogrid.rates import rate
from geogrid.settings import MapSettings

__all__ = ["AUDIENCES", "MEASURES", "coverage_map", "grid_measures"]

Measure = Literal["households_per_member", "visit_coverage", "open_per_100"]
Audience = Literal["public", "official"]
MEASURES: Final = ("households_per_member", "visit_coverage", "open_per_100")
AUDIENCES: Final = ("public", "official")
#: Hexagons that count uncovered households on public maps (H3 resolution 10, ~66 m edges).
UNCOVERED_RESOLUTION: Final = 10
#: Officials' maps: at most this many markers of uncovered households (else per H3 cell).
MAX_DOOR_MARKERS: Final = 5000


def check_measure(measure: str | None) -> Measure:
    value = measure or "households_per_member"
    if value not in MEASURES:
        raise InvalidInput(
            f"measure must be one of {', '.join(MEASURES)}, got {measure!r}", field="measure"
        )
    return value  # type: ignore[return-value]


def check_audience(audience: str | None) -> Audience:
    value = audience or "public"
    if value not in AUDIENCES:
        raise InvalidInput(
            f"audience must be public or official, got {audience!r}", field="audience"
        )
    return value  # type: ignore[return-value]


def _num(grids: pd.DataFrame, column: str) -> np.ndarray:
    if column not in grids.columns:
        return np.full(len(grids), np.nan)
    return pd.to_numeric(grids[column], errors="coerce").to_numpy(dtype=float)


def grid_measures(grids: pd.DataFrame) -> pd.DataFrame:
    """The three measures (and the resolution rate) from the per-grid counts.

    ``households_per_member`` is None without members; rates are None when their denominator
    is 0 (:func:`geogrid.rates.rate`).
    """
    out = pd.DataFrame(index=grids.index)
    homes = _num(grids, "households")
    members = _num(grids, "members")
    with np.errstate(divide="ignore", invalid="ignore"):
        hpm = np.where(members > 0, homes / members, np.nan)
        per100 = np.where(homes > 0, _num(grids, "open_requests") * 100.0 / homes, np.nan)
    columns = {
        "households_per_member": [None if np.isnan(v) else round(float(v), 1) for v in hpm],
        "open_per_100": [None if np.isnan(v) else round(float(v), 2) for v in per100],
        "visit_coverage": [
            rate(int(v), int(h)) if np.isfinite(v) and np.isfinite(h) else None
            for v, h in zip(_num(grids, "visited"), homes, strict=True)
        ],
        "resolution_rate": [
            rate(int(r), int(n)) if np.isfinite(r) and np.isfinite(n) else None
            for r, n in zip(_num(grids, "resolved"), _num(grids, "received"), strict=True)
        ],
    }
    for name, values in columns.items():
        # object columns: a missing figure stays None (pandas would make it NaN)
        out[name] = pd.Series(values, index=grids.index, dtype=object)
    return out


def _fmt_measure(measure: str, value: Any, lang: Lang = "zh") -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if measure == "visit_coverage":
        return percent(float(value), lang)
    return number(float(value), lang, digits=1)


def _classes(
    measure: str, values: Sequence[Any], lang: Lang = "zh"
) -> tuple[list[float], list[str], list[str]]:
    """Breaks, colours and labels of the measure's classes."""
    finite = [float(v) for v in values if v is not None and np.isfinite(float(v))]
    if measure == "visit_coverage":
        breaks = [0.2, 0.4, 0.6, 0.8]
        colours = base.palette("Greens", 5)
        labels = base.class_labels(breaks, lambda v: percent(v, lang, digits=0))
        return breaks, colours, labels
    breaks = base.quantile_breaks(finite, 5, decimals=1)
    colours = base.palette("YlOrRd", len(breaks) + 1)
    labels = base.class_labels(breaks, lambda v: number(v, lang, digits=1))
    return breaks, colours, labels


def _int(value: Any, lang: Lang = "zh") -> str:
    try:
        return number(int(value), lang)
    except (TypeError, ValueError):
        return "–"


def coverage_map(
    grids: gpd.GeoDataFrame,
    *,
    fields: gpd.GeoDataFrame | None = None,
    uncovered: pd.DataFrame | None = None,
    members: pd.DataFrame | None = None,
    streets: gpd.GeoDataFrame | None = None,
    boundary: gpd.GeoDataFrame | None = None,
    measure: str = "households_per_member",
    audience: str = "public",
    lang: str = "zh",
    tiles: str | TileSource | None = "none",
    title: str | None = None,
    subtitle: Sequence[str] = (),
    synthetic: bool = False,
    settings: MapSettings | None = None,
    m: folium.Map | None = None,
) -> folium.Map:
    """The coverage map of ``grids`` (see the module doc).

    ``grids``: ``code``, ``name`` and the counts ``households``, ``members``, ``visited``,
    ``open_requests``, ``received``, ``resolved`` (missing ones show as "–"), optionally
    ``residents``, ``fields``, ``fields_vacant``, ``uncovered``, ``branch``,
    ``lead_member_masked``, ``community_code``. ``fields``: ``field_id``, ``name``,
    ``member_id``, ``grid_code``, ``households``, ``member_masked``. ``uncovered``: ``lon``,
    ``lat`` of households outside every field. ``members`` (officials only): ``name_masked``,
    ``kind``, ``branch``, ``lon``, ``lat`` (WGS 84). GeoDataFrames in another CRS are
    reprojected on entry, as ``geopandas.explore`` does; the map shifts everything to the
    tiles' CRS (GCJ-02 for Amap).
    """
    grids, fields, streets, boundary = (
        base.in_wgs84(f) for f in (grids, fields, streets, boundary)
    )
    measure = check_measure(measure)
    audience = check_audience(audience)
    lang_: Lang = check_lang(lang)
    official = audience == "official"
    if m is None:
        source = (
            tiles
            if isinstance(tiles, TileSource)
            else tile_source(tiles, lang=lang_, settings=settings)
        )
        extent = grids.total_bounds if len(grids) else (113.0, 22.0, 115.0, 24.0)
        m = base.new_map(extent, tiles=source, lang=lang_, title=title)
    ctx = base.context_of(m)
    assert ctx is not None
    source = ctx.tiles
    tolerance = base.simplify_tolerance(grids.total_bounds) if len(grids) else 1e-5

    # --- grids coloured by the measure ----------------------------------------------------
    g = grids.reset_index(drop=True).copy()
    g = pd.concat([g, grid_measures(g)], axis=1)
    values = list(g[measure])
    breaks, colours, labels = _classes(measure, values, lang_)
    classes = [base.classify(None if v is None else float(v), breaks) for v in values]
    fills = [base.NO_DATA if c is None else colours[c] for c in classes]
    props = {
        "code": list(g["code"].astype(str)),
        "name": [base.text(v, "") for v in g.get("name", [None] * len(g))],
        "measure": [_fmt_measure(measure, v, lang_) for v in values],
        "households": [_int(v, lang_) for v in g.get("households", [None] * len(g))],
        "residents": [_int(v, lang_) for v in g.get("residents", [None] * len(g))],
        "members": [_int(v, lang_) for v in g.get("members", [None] * len(g))],
        "branch": [base.text(v) for v in g.get("branch", [None] * len(g))],
        "fields": [
            f"{_int(f)}（{t('vacant', lang_)} {_int(v)}）"
            if lang_ == "zh"
            else f"{_int(f)} ({_int(v)} {t('vacant', lang_)})"
            for f, v in zip(
                g.get("fields", [None] * len(g)), g.get("fields_vacant", [0] * len(g)), strict=True
            )
        ],
        "uncovered": [_int(v, lang_) for v in g.get("uncovered", [None] * len(g))],
        "open_requests": [_int(v, lang_) for v in g.get("open_requests", [None] * len(g))],
        "received": [_int(v, lang_) for v in g.get("received", [None] * len(g))],
        "resolution_rate": [percent(v, lang_) for v in g["resolution_rate"]],
        "visited": [_int(v, lang_) for v in g.get("visited", [None] * len(g))],
        "visit_coverage": [percent(v, lang_) for v in g["visit_coverage"]],
        "fill": fills,
    }
    if official:
        props["lead"] = [base.text(v) for v in g.get("lead_member_masked", [None] * len(g))]
    shown = pd.DataFrame(props)
    frame = base.display_frame(
        gpd.GeoDataFrame(shown, geometry=np.asarray(g.geometry.values), crs="EPSG:4326"),
        source,
        simplify=tolerance,
        coverage=True,
    )
    popup_fields = [
        ("code", "grid_code"),
        ("name", "grid_name"),
        ("households", "households"),
        ("residents", "residents"),
        ("members", "members"),
    ]
    if official:
        popup_fields.append(("lead", "lead_member"))
    popup_fields += [
        ("branch", "branch"),
        ("fields", "fields"),
        ("uncovered", "uncovered"),
        ("open_requests", "open_requests"),
        ("received", "received"),
        ("resolution_rate", "resolution_rate"),
        ("visited", "visited"),
        ("visit_coverage", "visit_coverage"),
    ]
    grid_layer = folium.GeoJson(
        base.geojson_data(frame, list(shown.columns)),
        name=f"{t('layer_grids', lang_)} — {t(measure, lang_)}",
        style_function=lambda f: {
            "fillColor": f["properties"]["fill"],
            "color": "#444",
            "weight": 1.5,
            "fillOpacity": 0.6,
            "className": "geogrid-grid",
        },
        highlight_function=lambda f: {"weight": 3, "color": "#000"},
        tooltip=folium.GeoJsonTooltip(
            fields=["code", "name", "measure"],
            aliases=[t("grid_code", lang_), t("grid_name", lang_), t(measure, lang_)],
            sticky=True,
        ),
        popup=folium.GeoJsonPopup(
            fields=[p for p, _ in popup_fields],
            aliases=[t(label, lang_) for _, label in popup_fields],
        ),
    )
    grid_layer.add_to(m)
    reps = shapely.point_on_surface(np.asarray(frame.geometry.values))
    label_rows = [
        (round(float(p.y), 6), round(float(p.x), 6), [code, name] if name else [code])
        for p, code, name in zip(reps, shown["code"], shown["name"], strict=True)
    ]
    labels_layer = base.LabelLayer(label_rows, name=t("layer_grid_labels", lang_))
    labels_layer.add_to(m)
    base.register_layers(m, grids=grid_layer, grid_labels=labels_layer)
    ctx.meta.update(grids=len(frame), measure=measure, audience=audience, lang=lang_)

    if streets is not None and len(streets):
        _streets_layer(m, streets, source, lang_, tolerance)
    if fields is not None and len(fields):
        _fields_layer(m, fields, source, lang_, official, tolerance)
    if uncovered is not None and len(uncovered):
        _uncovered_layer(m, uncovered, source, lang_, official)
    if official and members is not None and len(members):
        _members_layer(m, members, source, lang_)
    if boundary is not None and len(boundary):
        _boundary_layer(m, boundary, source, lang_, tolerance)

    if title or subtitle:
        heading = title or t("coverage_title", lang_)
        lines = [*subtitle, t("public" if not official else "official", lang_)]
        if synthetic:
            lines.append(t("synthetic", lang_))
        base.add_title(m, heading, lines)
    legend = list(zip(colours, labels, strict=True))
    legend.append((base.NO_DATA, t("no_data", lang_)))
    layers: list[tuple[str, str]] = [
        (base.swatch("#444", outline="solid"), t("grid_outline", lang_))
    ]
    if fields is not None and len(fields):
        layers.append((base.swatch("#1f78b4", outline="dotted"), t("field_held_legend", lang_)))
        layers.append((base.swatch("#d7191c", outline="dashed"), t("field_vacant_legend", lang_)))
    if uncovered is not None and len(uncovered):
        layers.append(
            (
                base.swatch("#e6550d", circle=official),
                t("uncovered_official_legend" if official else "uncovered_public_legend", lang_),
            )
        )
    if official and members is not None and len(members):
        layers.append((base.swatch(base.FIELD_COLOURS[0], circle=True), t("members_legend", lang_)))
    if streets is not None and len(streets):
        layers.append((base.swatch("#9a9a9a"), t("streets_legend", lang_)))
    if boundary is not None and len(boundary):
        layers.append((base.swatch("#222", outline="dashed"), t("boundary_legend", lang_)))
    base.add_legend(m, t(measure, lang_), legend, layers=layers)
    return m


def _streets_layer(
    m: folium.Map, streets: gpd.GeoDataFrame, source: TileSource, lang: Lang, tolerance: float
) -> None:
    frame = base.display_frame(streets[["name", "geometry"]], source, simplify=tolerance)
    layer = folium.GeoJson(
        base.geojson_data(frame, ["name"]),
        name=t("layer_streets", lang),
        style_function=lambda f: {"color": "#9a9a9a", "weight": 2, "opacity": 0.8},
        tooltip=folium.GeoJsonTooltip(fields=["name"], aliases=[t("street", lang)]),
    )
    layer.add_to(m)
    base.register_layers(m, streets=layer)


def _fields_layer(
    m: folium.Map,
    fields: gpd.GeoDataFrame,
    source: TileSource,
    lang: Lang,
    official: bool,
    tolerance: float,
) -> None:
    f = fields.reset_index(drop=True)
    member = f["member_id"] if "member_id" in f.columns else pd.Series([None] * len(f))
    vacant = member.isna().to_numpy()
    colour = [
        "#d7191c" if v else base.FIELD_COLOURS[int(mid) % len(base.FIELD_COLOURS)]
        for v, mid in zip(vacant, member.fillna(0), strict=True)
    ]
    if official and "member_masked" in f.columns:
        holder = [
            t("vacant", lang) if v else base.text(name, t("assigned", lang))
            for v, name in zip(vacant, f["member_masked"], strict=True)
        ]
    else:
        # Public maps: whether a field is held, never by whom.
        holder = [t("vacant", lang) if v else t("assigned", lang) for v in vacant]
    shown = gpd.GeoDataFrame(
        {
            "name": [base.text(v) for v in f.get("name", [None] * len(f))],
            "grid": [base.text(v) for v in f.get("grid_code", [None] * len(f))],
            "households": [_int(v) for v in f.get("households", [None] * len(f))],
            "member": holder,
            "colour": colour,
            "vacant": vacant.tolist(),
        },
        geometry=np.asarray(f.geometry.values),
        crs="EPSG:4326",
    )
    frame = base.display_frame(shown, source, simplify=tolerance / 2)
    layer = folium.GeoJson(
        base.geojson_data(frame, ["name", "grid", "households", "member", "colour", "vacant"]),
        name=t("layer_fields", lang),
        style_function=lambda feat: {
            "color": feat["properties"]["colour"],
            "weight": 2.5 if feat["properties"]["vacant"] else 1.5,
            "dashArray": "6 4" if feat["properties"]["vacant"] else "3 3",
            "fillOpacity": 0.04,
            "className": "geogrid-field",
        },
        tooltip=folium.GeoJsonTooltip(
            fields=["name", "grid", "households", "member"],
            aliases=[
                t("field", lang),
                t("grid_code", lang),
                t("households", lang),
                t("member", lang),
            ],
            sticky=True,
        ),
    )
    layer.add_to(m)
    base.register_layers(m, fields=layer)


def _uncovered_layer(
    m: folium.Map, uncovered: pd.DataFrame, source: TileSource, lang: Lang, official: bool
) -> None:
    lon = uncovered["lon"].to_numpy(dtype=float)
    lat = uncovered["lat"].to_numpy(dtype=float)
    name = t("layer_uncovered", lang)
    if official:
        counts = _door_groups(lon, lat)
        x, y = base.display_points(counts["lon"], counts["lat"], source)
        n = counts["n"].to_numpy()
        rows = [
            [float(b), float(a_), int(k), round(float(4 + 2 * np.sqrt(k)), 1)]
            for a_, b, k in zip(x, y, n, strict=True)
        ]
        layer: Any = base.PointLayer(
            rows,
            [(t("uncovered", lang), None), (None, None)],
            name=name,
            colours=("#e6550d",),
            radius_field=1,
            class_name="geogrid-uncovered",
            cluster=True,
            count_field=0,
            count_title=t("uncovered_title", lang),
        )
        layer.add_to(m)
        base.register_layers(m, uncovered=layer)
        return
    import h3

    cells = pd.Series(
        [h3.latlng_to_cell(b, a_, UNCOVERED_RESOLUTION) for a_, b in zip(lon, lat, strict=True)]
    ).value_counts()
    hexes = gpd.GeoDataFrame(
        {"count": [str(int(v)) for v in cells.to_numpy()]},
        geometry=[
            shapely.Polygon([(x, y) for y, x in h3.cell_to_boundary(c)]) for c in cells.index
        ],
        crs="EPSG:4326",
    )
    frame = base.display_frame(hexes, source)
    layer = folium.GeoJson(
        base.geojson_data(frame, ["count"]),
        name=name,
        style_function=lambda f: {
            "color": "#a63603",
            "weight": 1,
            "fillColor": "#e6550d",
            "fillOpacity": 0.55,
            "className": "geogrid-uncovered",
        },
        tooltip=folium.GeoJsonTooltip(fields=["count"], aliases=[t("uncovered", lang)]),
    )
    layer.add_to(m)
    base.register_layers(m, uncovered=layer)


def _door_groups(lon: np.ndarray, lat: np.ndarray) -> pd.DataFrame:
    """Households per door (``lon, lat, n``); when there are more than
    :data:`MAX_DOOR_MARKERS` doors, per H3 cell (centre) of the finest resolution that keeps
    them under it — a district's page stays light (benchmarks/README.md, "Maps")."""
    import h3

    doors = pd.DataFrame({"lon": np.round(lon, 6), "lat": np.round(lat, 6)})
    counts = doors.value_counts().reset_index(name="n")
    for resolution in (12, 11, 10, 9, 8):
        if len(counts) <= MAX_DOOR_MARKERS:
            break
        cells = pd.Series(
            [h3.latlng_to_cell(b, a, resolution) for a, b in zip(lon, lat, strict=True)]
        ).value_counts()
        centres = [h3.cell_to_latlng(c) for c in cells.index]
        counts = pd.DataFrame(
            {
                "lon": [c[1] for c in centres],
                "lat": [c[0] for c in centres],
                "n": cells.to_numpy(),
            }
        )
    return counts.sort_values(["lat", "lon"], ignore_index=True)


def _members_layer(m: folium.Map, members: pd.DataFrame, source: TileSource, lang: Lang) -> None:
    x, y = base.display_points(members["lon"], members["lat"], source)
    kinds = sorted(set(members["kind"].dropna()))
    kind_labels = [pick(KINDS, k, lang) for k in kinds]
    kind_index = {k: i for i, k in enumerate(kinds)}
    rows = [
        [float(b), float(a_), base.text(name), kind_index.get(kind, 0), base.text(branch)]
        for a_, b, name, kind, branch in zip(
            x, y, members["name_masked"], members["kind"], members["branch"], strict=True
        )
    ]
    layer = base.PointLayer(
        rows,
        [(t("member", lang), None), (t("kind", lang), kind_labels), (t("branch", lang), None)],
        name=t("layer_members", lang),
        colours=base.FIELD_COLOURS[: max(1, len(kinds))],
        colour_field=1,
        title_field=0,
        radius=5,
        cluster=True,
        class_name="geogrid-member",
        show=False,
    )
    layer.add_to(m)
    base.register_layers(m, members=layer)


def _boundary_layer(
    m: folium.Map, boundary: gpd.GeoDataFrame, source: TileSource, lang: Lang, tolerance: float
) -> None:
    frame = base.display_frame(boundary[["code", "name", "geometry"]], source, simplify=tolerance)
    layer = folium.GeoJson(
        base.geojson_data(frame, ["code", "name"]),
        name=t("layer_boundary", lang),
        style_function=lambda f: {"color": "#222", "weight": 3, "fill": False, "dashArray": "8 4"},
        tooltip=folium.GeoJsonTooltip(fields=["name"], aliases=[t("community", lang)]),
    )
    layer.add_to(m)
    base.register_layers(m, boundary=layer)

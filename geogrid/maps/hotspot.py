"""The hot-spot map: where unresolved requests concentrate beyond chance.

:func:`hotspot_map` draws a :class:`geogrid.hotspots.HotSpotResult` — hexagons or grids
binned hot/cold at 90/95/99 % after the FDR correction, with counts, rates and z-scores in
the tooltips — beside a density (heat) layer and the individual requests, clustered. When the
result says the statistics mean nothing (too few features or requests), the map says so and
colours nothing. A builder like ``geopandas.explore``: frames in, :class:`folium.Map` out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.plugins import HeatMap

from geogrid.hotspots import HotSpotResult
from geogrid.i18n import number, percent
from geogrid.maps import base
from geogrid.maps.labels import STATUSES, Lang, check_lang, pick, t
from geogrid.maps.tiles import TileSource, tile_source
from geogrid.periods import DEFAULT_TZ, zone
from geogrid.settings import MapSettings

__all__ = ["BIN_COLOURS", "bin_meaning", "hotspot_map"]

#: Colours of the confidence bins (after ArcGIS's hot-spot renderer: reds hot, blues cold).
BIN_COLOURS: Final[dict[int, str]] = {
    99: "#d7191c",
    95: "#f46d43",
    90: "#fdae61",
    0: "#f0f0f0",
    -90: "#abd9e9",
    -95: "#74add1",
    -99: "#4575b4",
}
#: Requests drawn individually (clustered) at most: a guard against an unfiltered city.
MAX_POINTS: Final = 50_000


def _bin_label(level: int, lang: Lang) -> str:
    if level == 0:
        return t("not_significant", lang)
    kind = t("hot" if level > 0 else "cold", lang)
    return f"{kind} {percent(abs(level) / 100, lang, digits=0)}"


def bin_meaning(level: int, lang: Lang) -> str:
    """A confidence bin in plain words: "Hot spot 99%: this cluster of unresolved requests
    is very unlikely to be chance"."""
    if level == 0:
        return t("not_significant_long", lang)
    key = f"{'hot' if level > 0 else 'cold'}_{abs(level)}"
    return t(key, lang, p=percent(abs(level) / 100, lang, digits=0))


def hotspot_map(
    result: HotSpotResult,
    *,
    requests: pd.DataFrame | None = None,
    grids: gpd.GeoDataFrame | None = None,
    boundary: gpd.GeoDataFrame | None = None,
    lang: str = "zh",
    tiles: str | TileSource | None = "none",
    title: str | None = None,
    subtitle: Sequence[str] = (),
    synthetic: bool = False,
    heat: bool = True,
    request_url: str | None = None,
    settings: MapSettings | None = None,
    m: folium.Map | None = None,
) -> folium.Map:
    """The hot-spot map of ``result`` (see the module doc).

    ``requests``: the requests analysed, ``lon``, ``lat`` (WGS 84) and optionally
    ``category_name``, ``status``, ``received_at``, ``overdue``, ``days_open`` for their
    tooltips (never a description, address or person), ``id`` and ``grid_code`` too: the
    request's number and grid are shown with ``request_url`` (officials' maps; ``{id}`` in it
    is replaced: a link to the request's page), only its grid without. ``grids``: outlines
    and labels
    (``code``, ``name``). ``boundary``: the communities' outlines. GeoDataFrames in another
    CRS are reprojected on entry.
    """
    lang_: Lang = check_lang(lang)
    grids, boundary = base.in_wgs84(grids), base.in_wgs84(boundary)
    cells = base.in_wgs84(result.cells)
    if m is None:
        source = (
            tiles
            if isinstance(tiles, TileSource)
            else tile_source(tiles, lang=lang_, settings=settings)
        )
        frames = [f for f in (cells, grids, boundary) if f is not None and len(f)]
        extent = (
            np.array([f.total_bounds for f in frames])
            if frames
            else np.array([[113.0, 22.0, 115.0, 24.0]])
        )
        bounds = (*extent[:, :2].min(axis=0), *extent[:, 2:].max(axis=0))
        m = base.new_map(bounds, tiles=source, lang=lang_, title=title)
    ctx = base.context_of(m)
    assert ctx is not None
    source = ctx.tiles
    tolerance = base.simplify_tolerance(cells.total_bounds) if len(cells) else 1e-5
    ok = result.status == "ok"

    # --- the features: binned when the statistics hold, counts only otherwise ---------------
    # Only cells with requests: one without (in a hot neighbourhood) is no hot spot to people.
    show = cells["requests"] > 0
    c = cells[show.to_numpy()].reset_index(drop=True)
    levels = [int(v) for v in c["confidence"]] if ok else [0] * len(c)
    unit_label = (
        t("unit_h3", lang_, res=result.resolution)
        if result.unit == "h3"
        else t("unit_grids", lang_)
    )
    shown = gpd.GeoDataFrame(
        {
            "cell": [str(v) for v in c["name"]],
            "requests": [number(int(v), lang_) for v in c["requests"]],
            "households": [number(int(v), lang_) for v in c["households"]],
            "rate": [
                number(100.0 * r / h, lang_, digits=1) if h > 0 else "–"
                for r, h in zip(c["requests"], c["households"], strict=True)
            ],
            "z": [("–" if not ok or np.isnan(z) else number(z, lang_, digits=2)) for z in c["z"]],
            "p": [("–" if not ok or np.isnan(p) else number(p, lang_, digits=4)) for p in c["p"]],
            "confidence": [_bin_label(v, lang_) if ok else "–" for v in levels],
            "meaning": [bin_meaning(v, lang_) if ok else "–" for v in levels],
            "level": levels,
            "fill": [BIN_COLOURS[v] if ok else "#bdbdbd" for v in levels],
        },
        geometry=np.asarray(c.geometry.values),
        crs="EPSG:4326",
    )
    frame = base.display_frame(shown, source, simplify=tolerance if result.unit == "grids" else 0.0)
    layer = folium.GeoJson(
        base.geojson_data(frame, [k for k in shown.columns if k != "geometry"]),
        name=t("layer_hotspots", lang_),
        style_function=lambda f: {
            "fillColor": f["properties"]["fill"],
            "color": "#555" if f["properties"]["level"] == 0 else "#222",
            "weight": 0.6 if f["properties"]["level"] == 0 else 1.2,
            "fillOpacity": 0.35 if f["properties"]["level"] == 0 else 0.75,
            "className": "geogrid-cell",
        },
        highlight_function=lambda f: {"weight": 3, "color": "#000"},
        # Folium refuses a tooltip whose fields no feature has: an empty selection (no
        # request in the period) draws an empty layer, not a 500 (issue 14).
        tooltip=None
        if shown.empty
        else folium.GeoJsonTooltip(
            fields=["confidence", "meaning", "cell", "requests", "households", "rate", "z", "p"],
            aliases=[
                t("confidence", lang_),
                t("meaning", lang_),
                t("cell", lang_) if result.unit == "h3" else t("grid_code", lang_),
                t("requests_in_cell", lang_),
                t("households", lang_),
                t("rate_per_100", lang_),
                t("z_score", lang_),
                t("p_value", lang_),
            ],
            sticky=True,
        ),
    )
    layer.add_to(m)
    base.register_layers(m, hotspots=layer)

    # --- grids and the communities' outlines -------------------------------------------------
    if grids is not None and len(grids):
        gframe = base.display_frame(
            gpd.GeoDataFrame(
                {"code": grids["code"].astype(str), "name": grids["name"].fillna("")},
                geometry=np.asarray(grids.geometry.values),
                crs="EPSG:4326",
            ),
            source,
            simplify=base.simplify_tolerance(grids.total_bounds),
            coverage=True,
        )
        outlines = folium.GeoJson(
            base.geojson_data(gframe, ["code", "name"]),
            name=t("layer_grids", lang_),
            style_function=lambda f: {
                "color": "#333",
                "weight": 1.5,
                "fill": False,
                "className": "geogrid-grid",
            },
        )
        outlines.add_to(m)
        reps = shapely.point_on_surface(np.asarray(gframe.geometry.values))
        labels = base.LabelLayer(
            [
                (round(float(p.y), 6), round(float(p.x), 6), [code, name] if name else [code])
                for p, code, name in zip(reps, gframe["code"], gframe["name"], strict=True)
            ],
            name=t("layer_grid_labels", lang_),
        )
        labels.add_to(m)
        base.register_layers(m, grids=outlines, grid_labels=labels)
    if boundary is not None and len(boundary):
        bframe = base.display_frame(boundary[["name", "geometry"]], source, simplify=tolerance)
        bl = folium.GeoJson(
            base.geojson_data(bframe, ["name"]),
            name=t("layer_boundary", lang_),
            style_function=lambda f: {
                "color": "#222",
                "weight": 3,
                "fill": False,
                "dashArray": "8 4",
            },
        )
        bl.add_to(m)
        base.register_layers(m, boundary=bl)

    # --- the requests: density and clusters ---------------------------------------------------
    if requests is not None and len(requests):
        r = requests.iloc[:MAX_POINTS]
        x, y = base.display_points(r["lon"], r["lat"], source)
        if heat:
            heat_layer = HeatMap(
                [[float(b), float(a_)] for a_, b in zip(x, y, strict=True)],
                name=t("layer_heat", lang_),
                radius=18,
                blur=14,
                min_opacity=0.25,
                show=False,
            )
            base.localize(heat_layer)
            heat_layer.add_to(m)
            base.register_layers(m, heat=heat_layer)
        _requests_layer(m, r, x, y, lang_, request_url)

    # --- words ---------------------------------------------------------------------------------
    if title or subtitle:
        lines = [*subtitle]
        if synthetic:
            lines.append(t("synthetic", lang_))
        base.add_title(m, title or t("hotspot_title", lang_), lines)
    if not ok:
        key = result.status
        n = result.n_features if key == "too_few_features" else result.n_requests
        minimum = result.min_features if key == "too_few_features" else result.min_requests
        base.add_notice(m, t(key, lang_, n=n, min=minimum))
    note = f"{t('fdr_note', lang_)}; {unit_label}"
    if result.normalize == "households":
        note += (
            f"; {t('rate_per_100', lang_)} (≥ {result.household_floor:g} {t('households', lang_)})"
        )
    if result.requests_outside:
        note += "; " + t("outside_units", lang_, n=result.requests_outside)
    entries = [(BIN_COLOURS[v], bin_meaning(v, lang_)) for v in (99, 95, 90, 0, -90, -95, -99)]
    if not ok:
        entries = [("#bdbdbd", t("requests_in_cell", lang_))]
    note = (
        f"{t('no_requests_no_spot', lang_)}. {note}"
        if lang_ == "en"
        else (f"{t('no_requests_no_spot', lang_)}。{note}")
    )
    layers: list[tuple[str, str]] = []
    if requests is not None and len(requests):
        if heat:
            layers.append((base.HEAT_SWATCH, t("heat_legend", lang_)))
        layers.append((base.swatch("#3182bd", circle=True), t("requests_legend", lang_)))
        layers.append((base.swatch("#de2d26", circle=True), t("requests_legend_overdue", lang_)))
    if grids is not None and len(grids):
        layers.append((base.swatch("#333", outline="solid"), t("grid_outline", lang_)))
    if boundary is not None and len(boundary):
        layers.append((base.swatch("#222", outline="dashed"), t("boundary_legend", lang_)))
    base.add_legend(m, t("confidence", lang_), entries, note=note, layers=layers)
    ctx.meta.update(
        cells=len(frame),
        hot=int(sum(v > 0 for v in levels)),
        cold=int(sum(v < 0 for v in levels)),
        status=result.status,
        requests=0 if requests is None else len(requests),
        lang=lang_,
    )
    return m


def _local_dates(instants: pd.Series, zones: pd.Series | None) -> pd.Series:
    """Each instant's date in its community's zone (``zones``; Asia/Shanghai when absent):
    a request received at 23:30 in Urumqi time is dated as Urumqi reads it."""
    utc = pd.to_datetime(instants, utc=True)
    zones = (
        pd.Series(DEFAULT_TZ, index=instants.index)
        if zones is None
        else zones.fillna(DEFAULT_TZ).astype(str)
    )
    out = pd.Series("–", index=instants.index, dtype=object)
    for name, rows in zones.groupby(zones).groups.items():
        out[rows] = utc[rows].dt.tz_convert(zone(str(name))).dt.strftime("%Y-%m-%d")
    return out.where(utc.notna(), "–")


def _requests_layer(
    m: folium.Map,
    r: pd.DataFrame,
    x: np.ndarray,
    y: np.ndarray,
    lang: Lang,
    request_url: str | None,
) -> None:
    names = (
        r["category_name_en"].fillna(r["category_name"])
        if lang == "en" and "category_name_en" in r.columns
        else r.get("category_name", pd.Series(["–"] * len(r), index=r.index))
    ).astype(str)
    categories = sorted(set(names))
    cat_index = {c: i for i, c in enumerate(categories)}
    statuses = sorted(set(r.get("status", pd.Series(["–"] * len(r))).astype(str)))
    status_index = {s: i for i, s in enumerate(statuses)}
    received = (
        _local_dates(r["received_at"], r.get("timezone"))
        if "received_at" in r.columns
        else pd.Series(["–"] * len(r), index=r.index)
    )
    days = r["days_open"] if "days_open" in r.columns else pd.Series([None] * len(r), index=r.index)
    overdue = (
        r["overdue"].astype(bool)
        if "overdue" in r.columns
        else pd.Series([False] * len(r), index=r.index)
    )
    yes_no = [t("no", lang), t("yes", lang)]
    linked = request_url is not None and "id" in r.columns
    ids = (
        [int(v) for v in r["id"]] if linked else [None] * len(r)  # officials' maps only
    )
    grids = (
        [base.text(v, "") or None for v in r["grid_code"]]
        if "grid_code" in r.columns
        else [None] * len(r)
    )
    rows = [
        [
            float(b),
            float(a_),
            i,
            g,
            cat_index[n],
            status_index[s],
            d,
            None if dd is None or pd.isna(dd) else int(dd),
            int(o),
        ]
        for a_, b, i, g, n, s, d, dd, o in zip(
            x,
            y,
            ids,
            grids,
            names,
            r.get("status", pd.Series(["–"] * len(r), index=r.index)).astype(str),
            received,
            days,
            overdue,
            strict=True,
        )
    ]
    layer = base.PointLayer(
        rows,
        [
            (t("request", lang), None),
            (t("grid", lang), None),
            (t("category", lang), categories),
            (t("status", lang), [pick(STATUSES, s, lang) for s in statuses]),
            (t("received_on", lang), None),
            (t("days_open", lang), None),
            (t("overdue", lang), yes_no),
        ],
        name=t("layer_requests", lang),
        colours=("#3182bd", "#de2d26"),
        colour_field=6,
        radius=5,
        cluster=True,
        class_name="geogrid-request",
        data_fields={1, 2},
        link=(0, request_url, t("open_request_page", lang)) if linked and request_url else None,
    )
    layer.add_to(m)
    base.register_layers(m, requests=layer)

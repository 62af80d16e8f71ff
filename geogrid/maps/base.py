"""The parts every geogrid map shares: the Folium map and base map, local assets, a title,
a legend, a notice, compact point and label layers, colour classes and the final HTML.

The pages link only to :mod:`geogrid.maps.assets` (no jQuery, Bootstrap or icon fonts), so
:func:`render_html` can guarantee that nothing but the tiles is fetched from elsewhere, and
with ``tiles=none`` nothing at all. ``window.geogrid`` exposes the Leaflet map and its named
layers to scripts and tests (``geogrid.layers.grids.getLayers().length``).
"""

from __future__ import annotations

import html
import itertools
import json
import weakref
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

import folium
import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely
from branca.element import Element, Figure, MacroElement
from folium.elements import JSCSSMixin
from folium.map import Layer
from folium.template import Template
from markupsafe import Markup

from geogrid.crs import WGS84, frame_from_wgs84, from_wgs84
from geogrid.errors import ConfigurationError
from geogrid.maps import assets as map_assets
from geogrid.maps.labels import Lang, t
from geogrid.maps.tiles import TileSource
from geogrid.values import plain

__all__ = [
    "LabelLayer",
    "MapContext",
    "PointLayer",
    "add_attribution",
    "add_legend",
    "add_notice",
    "add_title",
    "context_of",
    "geojson_data",
    "localize",
    "new_map",
    "register_layers",
    "render_html",
]

#: Sequential palettes (ColorBrewer, Cynthia Brewer, colorbrewer2.org), 5 classes.
PALETTES: Final[dict[str, tuple[str, ...]]] = {
    "YlOrRd": ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"),
    "Greens": ("#edf8e9", "#bae4b3", "#74c476", "#31a354", "#006d2c"),
}
NO_DATA: Final = "#d9d9d9"
#: Qualitative colours for one field per member (ColorBrewer Paired, 12).
FIELD_COLOURS: Final = (
    "#1f78b4",
    "#33a02c",
    "#e31a1c",
    "#ff7f00",
    "#6a3d9a",
    "#b15928",
    "#a6cee3",
    "#b2df8a",
    "#fb9a99",
    "#fdbf6f",
    "#cab2d6",
    "#8c6d31",
)
#: Coordinates are written with 6 decimals (~0.1 m): enough for a door, half the bytes.
PRECISION: Final = 6

_CSS: Final = """
<style>
.leaflet-container { font-family: system-ui, "Noto Sans CJK SC", "Noto Sans SC",
  "Microsoft YaHei", sans-serif; background: #f4f3ef; }
.geogrid-title { position: fixed; top: 10px; left: 50%; transform: translateX(-50%);
  z-index: 1000; background: rgba(255,255,255,.92); padding: 6px 14px; border-radius: 6px;
  box-shadow: 0 1px 4px rgba(0,0,0,.3); text-align: center; max-width: 70%;
  font-family: system-ui, "Noto Sans CJK SC", sans-serif; }
.geogrid-title h1 { font-size: 17px; margin: 0 0 2px 0; }
.geogrid-title p { font-size: 12px; margin: 0; color: #444; }
.geogrid-legend { position: fixed; bottom: 24px; right: 10px; z-index: 1000;
  background: rgba(255,255,255,.92); padding: 8px 10px; border-radius: 6px;
  box-shadow: 0 1px 4px rgba(0,0,0,.3); font: 12px system-ui, "Noto Sans CJK SC", sans-serif; }
.geogrid-legend h2 { font-size: 13px; margin: 0 0 4px 0; display: inline; }
.geogrid-legend summary { cursor: pointer; margin-bottom: 4px; }
.geogrid-legend i { display: inline-block; width: 16px; height: 12px; margin-right: 6px;
  vertical-align: middle; border: 1px solid #777; }
.geogrid-legend div { line-height: 17px; }
.geogrid-legend small { color: #555; display: block; max-width: 22em; margin-top: 4px; }
.geogrid-legend h3 { font-size: 12px; margin: 6px 0 2px 0; }
.geogrid-legend { max-width: 24em; max-height: 60vh; overflow-y: auto; }
.geogrid-legend div { text-indent: -22px; padding-left: 22px; }
.geogrid-tip a { font-weight: 600; }
.marker-cluster.geogrid-uncovered-cluster { background: rgba(253, 141, 60, .55); }
.marker-cluster.geogrid-uncovered-cluster div { background: rgba(230, 85, 13, .85);
  color: #fff; }
@media (max-width: 600px) {
  .geogrid-legend { max-width: 62vw; max-height: 42vh; font-size: 11px; bottom: 18px; }
  .geogrid-title { max-width: 86%; padding: 4px 8px; }
  .geogrid-title h1 { font-size: 14px; }
  .geogrid-notice { max-width: 86%; top: 88px; }
  .leaflet-control-layers { max-width: 62vw; font-size: 11px; }
}
.geogrid-embed .geogrid-notice { top: 10px; }
.geogrid-notice { position: fixed; top: 78px; left: 50%; transform: translateX(-50%);
  z-index: 1000; background: #fff3cd; border: 1px solid #d39e00; color: #533f03;
  padding: 6px 12px; border-radius: 6px; font: 13px system-ui, "Noto Sans CJK SC", sans-serif;
  max-width: 60%; text-align: center; }
.geogrid-label div { font: 600 11px system-ui, "Noto Sans CJK SC", sans-serif; color: #222;
  white-space: nowrap; text-align: center; text-shadow: 0 0 3px #fff, 0 0 3px #fff;
  transform: translate(-50%, -50%); }
.geogrid-tip b { font-weight: 600; }
</style>
"""


@dataclass
class MapContext:
    """What a geogrid map was made with: builders drawing onto it reuse it."""

    lang: Lang
    tiles: TileSource
    layers: dict[str, Any]
    meta: dict[str, Any]


_CONTEXTS: weakref.WeakKeyDictionary[folium.Map, MapContext] = weakref.WeakKeyDictionary()


def context_of(m: folium.Map) -> MapContext | None:
    """How ``m`` was made (None for a map not made by :func:`new_map`)."""
    return _CONTEXTS.get(m)


#: Folium's links that geogrid's pages do without (no jQuery, Bootstrap or icon fonts).
_DROPPED: Final = frozenset(
    {
        "jquery",
        "bootstrap",
        "awesome_markers",
        "bootstrap_css",
        "glyphicons_css",
        "awesome_markers_font_css",
        "awesome_markers_css",
        "awesome_rotate_css",
    }
)


def localize(element: JSCSSMixin) -> JSCSSMixin:
    """Point an element's JS/CSS at geogrid's local assets; drop what they do not need.

    A link with no local copy is an error rather than a silent CDN request.
    """
    names = [n for n, _ in [*element.default_js, *element.default_css]]
    unknown = [
        n for n in names if n not in map_assets.JS and n not in map_assets.CSS and n not in _DROPPED
    ]
    if unknown:
        raise ConfigurationError(f"no local asset for {', '.join(unknown)}", field="assets")
    element.default_js = [
        (n, map_assets.ASSET_PREFIX + map_assets.resolve_asset(map_assets.JS[n]))
        for n, _ in element.default_js
        if n in map_assets.JS
    ]
    element.default_css = [
        (n, map_assets.ASSET_PREFIX + map_assets.resolve_asset(map_assets.CSS[n]))
        for n, _ in element.default_css
        if n in map_assets.CSS
    ]
    return element


def new_map(
    bounds: Sequence[float],
    *,
    tiles: TileSource,
    lang: Lang,
    title: str | None = None,
) -> folium.Map:
    """An empty map fitted to ``bounds`` (minx, miny, maxx, maxy in WGS 84) over ``tiles``."""
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    (x0, x1), (y0, y1) = from_wgs84([minx, maxx], [miny, maxy], tiles.crs)
    m = folium.Map(
        location=[(y0 + y1) / 2, (x0 + x1) / 2],
        tiles=None,
        zoom_start=14,
        control_scale=True,
        zoom_snap=0.25,
    )
    # Leaflet.markercluster needs the map's own maxZoom (tile layers may be absent).
    m.options["max_zoom"] = max([19, *(spec.max_zoom for spec in tiles.layers)])
    localize(m)
    for i, spec in enumerate(tiles.layers):
        folium.TileLayer(
            tiles=spec.url,
            attr=spec.attribution,
            name=spec.name or tiles.key,
            subdomains=spec.subdomains,
            max_zoom=spec.max_zoom,
            overlay=i > 0,  # annotation layers (天地图注记) go on top of the base layer
            control=len(tiles.layers) > 1,
        ).add_to(m)
    m.fit_bounds([[y0, x0], [y1, x1]], padding=(12, 12))
    root = _figure(m)
    root.header.add_child(Element(_CSS), name="geogrid_css")
    if title:
        root.title = Markup(title).striptags() if isinstance(title, Markup) else title
    _CONTEXTS[m] = MapContext(lang=lang, tiles=tiles, layers={}, meta={"tiles": tiles.key})
    return m


def _figure(m: folium.Map) -> Figure:
    return cast(Figure, m.get_root())


def _context(m: folium.Map) -> MapContext:
    ctx = context_of(m)
    if ctx is None:
        raise ConfigurationError("draw onto a map made by geogrid.maps (new_map)", field="m")
    return ctx


def _html(text: str) -> str:
    """Text for the page: escaped, unless it is :class:`Markup` already (a data value
    wrapped in ``translate="no"``, see :func:`data_value`)."""
    return str(text) if isinstance(text, Markup) else html.escape(text)


def data_value(text: object) -> Markup:
    """A data value (a name as stored) in running text: not for a browser to translate."""
    return Markup('<span translate="no">{}</span>').format(str(text))


def add_title(m: folium.Map, heading: str, lines: Iterable[str]) -> None:
    body = "".join(f"<p>{_html(line)}</p>" for line in lines if line)
    _figure(m).html.add_child(
        Element(f'<div class="geogrid-title"><h1>{_html(heading)}</h1>{body}</div>'),
        name="geogrid_title",
    )


#: Legend swatches of layers that are not filled areas (``add_legend``'s ``layers``).
HEAT_SWATCH: Final = "background:linear-gradient(90deg,blue,cyan,lime,yellow,red)"


def swatch(colour: str, *, circle: bool = False, outline: str | None = None) -> str:
    """A legend swatch's style: a fill colour, round for point layers, or only an outline."""
    if outline is not None:
        return f"background:transparent;border:2px {outline} {colour}"
    return f"background:{colour}" + (";border-radius:50%" if circle else "")


def _legend_rows(entries: Sequence[tuple[str, str]]) -> str:
    return "".join(
        f'<div><i style="{html.escape(style if ":" in style else "background:" + style)}">'
        f"</i>{html.escape(label)}</div>"
        for style, label in entries
    )


def add_legend(
    m: folium.Map,
    heading: str,
    entries: Sequence[tuple[str, str]],
    note: str | None = None,
    *,
    layers: Sequence[tuple[str, str]] = (),
) -> None:
    """A legend box: ``entries`` of (colour, label) for what colours the main layer, then
    ``layers`` — every other layer drawn, with a swatch (a colour or a CSS style from
    :func:`swatch`) and words that say what it is."""
    ctx = _context(m)
    extra = f"<small>{html.escape(note)}</small>" if note else ""
    more = (
        f"<h3>{html.escape(t('legend_layers', ctx.lang))}</h3>{_legend_rows(layers)}"
        if layers
        else ""
    )
    # A <details>: on a phone it starts closed (the map stays visible), one tap opens it.
    _figure(m).html.add_child(
        Element(
            f'<details class="geogrid-legend" id="geogrid-legend" open><summary><h2>'
            f"{html.escape(heading)}</h2></summary>"
            f"{_legend_rows(entries)}{more}{extra}</details>"
            "<script>if (window.innerWidth < 600) "
            'document.getElementById("geogrid-legend").removeAttribute("open");</script>'
        ),
        name="geogrid_legend",
    )
    ctx.meta["legend"] = [label for _, label in entries]
    ctx.meta["legend_layers"] = [label for _, label in layers]


def add_notice(m: folium.Map, text: str) -> None:
    """A prominent message (e.g. "too few features …")."""
    _figure(m).html.add_child(
        Element(f'<div class="geogrid-notice" id="geogrid-notice">{html.escape(text)}</div>'),
        name="geogrid_notice",
    )
    _context(m).meta["notice"] = text


def js_json(value: Any) -> Markup:
    """JSON for a ``<script>``: UTF-8 kept (Chinese is 3 bytes, not 6), markup escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(ch, esc)
    return Markup(text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


# --- geometry for display ---------------------------------------------------------------------


def in_wgs84(frame: Any) -> Any:
    """``frame`` in WGS 84, as ``geopandas.explore`` does: a GeoDataFrame or GeoSeries in
    another CRS is reprojected; one without a CRS is taken as WGS 84 (what geogrid stores);
    plain DataFrames (``lon``/``lat`` columns, WGS 84 by contract) and None pass through."""
    projected = isinstance(frame, gpd.GeoDataFrame | gpd.GeoSeries) and frame.crs is not None
    if projected and not frame.crs.equals("EPSG:4326"):
        return frame.to_crs("EPSG:4326")
    return frame


def display_frame(
    gdf: gpd.GeoDataFrame, tiles: TileSource, *, simplify: float = 0.0, coverage: bool = False
) -> gpd.GeoDataFrame:
    """``gdf`` ready to draw: in WGS 84 (reprojected if it is in another CRS), simplified
    (degrees; ``coverage`` keeps shared edges shared), shifted to the tiles' CRS (GCJ-02 for
    Amap), rounded to :data:`PRECISION`."""
    out = in_wgs84(gdf).copy()
    geoms = np.asarray(out.geometry.values)
    if simplify > 0 and len(geoms):
        simplified = None
        # coverage_simplify (shapely ≥ 2.1, GEOS ≥ 3.12) keeps shared edges shared: no slivers.
        if coverage and hasattr(shapely, "coverage_simplify"):
            try:
                simplified = shapely.coverage_simplify(geoms, simplify)
            except shapely.errors.GEOSException:
                simplified = None
        if simplified is None:
            simplified = shapely.simplify(geoms, simplify, preserve_topology=True)
        geoms = simplified
    out = out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs="EPSG:4326"))
    if tiles.crs != WGS84:
        out = frame_from_wgs84(out, tiles.crs)
    rounded = shapely.set_precision(np.asarray(out.geometry.values), 10.0**-PRECISION)
    return out.set_geometry(gpd.GeoSeries(rounded, index=out.index, crs=out.crs))


def display_points(
    lon: npt.ArrayLike, lat: npt.ArrayLike, tiles: TileSource
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Points (WGS 84) in the tiles' CRS, rounded: (lat, lon) order is the caller's."""
    x, y = from_wgs84(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float), tiles.crs)
    return np.round(x, PRECISION), np.round(y, PRECISION)


def geojson_data(gdf: gpd.GeoDataFrame, properties: Sequence[str]) -> dict[str, Any]:
    """A FeatureCollection with only ``properties`` (no stray columns leave by accident)."""
    features = []
    geoms = shapely.to_geojson(np.asarray(gdf.geometry.values))
    records = gdf[list(properties)].to_dict("records")
    for i, (geom, props) in enumerate(zip(geoms, records, strict=True)):
        clean = {k: plain(v) for k, v in props.items()}
        features.append(
            {"type": "Feature", "id": i, "properties": clean, "geometry": json.loads(geom)}
        )
    return {"type": "FeatureCollection", "features": features}


def text(value: Any, default: str = "–") -> str:
    """A value for a label: missing (None, NaN, "") → ``default``."""
    value = plain(value)
    return default if value is None or value == "" else str(value)


def simplify_tolerance(bounds: Sequence[float]) -> float:
    """A simplification tolerance (degrees) of ~1/4000 of the extent: invisible at the zoom
    that shows the whole extent, ≥ 1e-5° (~1 m)."""
    minx, miny, maxx, maxy = bounds
    return max(1e-5, max(maxx - minx, maxy - miny) / 4000.0)


# --- classes -----------------------------------------------------------------------------------


def quantile_breaks(values: npt.ArrayLike, k: int = 5, decimals: int = 1) -> list[float]:
    """Up to ``k − 1`` rounded class breaks at quantiles of the finite ``values``."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return []
    qs = np.quantile(v, np.linspace(0, 1, k + 1)[1:-1])
    return sorted({round(float(x), decimals) for x in qs} - {round(float(v.min()), decimals)})


def classify(value: float | None, breaks: Sequence[float]) -> int | None:
    """Class of ``value``: 0 below the first break … len(breaks) at or above the last."""
    if value is None or not np.isfinite(value):
        return None
    return int(np.searchsorted(np.asarray(breaks, dtype=float), value, side="right"))


def class_labels(breaks: Sequence[float], fmt: Any) -> list[str]:
    """Labels of the classes of :func:`classify`: "< b0", "b0 – b1", …, "≥ bn"."""
    if not breaks:
        return ["all"]
    labels = [f"< {fmt(breaks[0])}"]
    labels += [f"{fmt(lo)} – {fmt(hi)}" for lo, hi in itertools.pairwise(breaks)]
    labels.append(f"≥ {fmt(breaks[-1])}")
    return labels


def palette(name: str, n: int) -> list[str]:
    """``n`` colours of a 5-class palette, spread over its range."""
    colours = PALETTES[name]
    if n >= len(colours):
        return list(colours)
    idx = np.round(np.linspace(0, len(colours) - 1, n)).astype(int)
    return [colours[i] for i in idx]


# --- compact layers ----------------------------------------------------------------------------


class PointLayer(JSCSSMixin, Layer):
    """Many points as circle markers from a compact table (one JSON array, not one JS object
    per point), optionally clustered (Leaflet.markercluster). Tooltips are built on demand
    from ``fields`` — (label, lookup list or None) per column after lat, lon — and escaped.

    ``rows``: ``[lat, lon, v0, v1, …]``. ``radius_field``/``colour_field``: index of the
    column (in ``v``) giving the radius in pixels / an index into ``colours``;
    ``count_field``: the column a cluster's badge sums (default: it counts markers), and
    ``count_title`` says what that number is (``{n}`` households …: a hover title).
    ``data_fields``: columns that are data values (names as stored), marked
    ``translate="no"``. ``link``: (column, URL with ``{id}``, text) — a popup with the
    tooltip's facts and that link (officials' maps: the request's page).
    """

    _template = Template(
        r"""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function () {
            var rows = {{ this.rows_json }};
            var fields = {{ this.fields_json }};
            var colours = {{ this.colours_json }};
            var esc = function (s) {
                return String(s).replace(/[&<>"']/g, function (c) {
                    return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
                });
            };
            var options = {{ this.cluster_json }};
            {% if this.count_index is not none %}
            // Cluster badges count what the markers stand for (households), not markers.
            options.iconCreateFunction = function (cluster) {
                var n = 0;
                cluster.getAllChildMarkers().forEach(function (mk) {
                    n += mk.options.row[{{ this.count_index }} + 2];
                });
                var size = n < 10 ? "small" : n < 100 ? "medium" : "large";
                var title = {{ this.count_title_json }}.replace("{n}", n);
                return L.divIcon({html: '<div title="' + esc(title) + '"><span>' + n
                                        + "</span></div>",
                                  className: "marker-cluster marker-cluster-" + size
                                             + " " + {{ this.class_name|tojson }} + "-cluster",
                                  iconSize: L.point(40, 40)});
            };
            {% endif %}
            var group = {% if this.cluster %}L.markerClusterGroup(options)
                {% else %}L.featureGroup(){% endif %};
            var tip = function (layer) {
                var r = layer.options.row, out = [];
                if ({{ this.title_index }} >= 0) {
                    out.push('<b>' + esc(r[{{ this.title_index }} + 2]) + '</b>');
                }
                for (var j = 0; j < fields.length; j++) {
                    if (j === {{ this.title_index }}) continue;
                    var v = r[j + 2];
                    if (v === null || v === undefined || fields[j][0] === null) continue;
                    if (fields[j][1]) v = fields[j][1][v];
                    // Data values (names as stored) are not for a browser to translate.
                    out.push(esc(fields[j][0]) + ': ' + (fields[j][2]
                        ? '<span translate="no">' + esc(v) + '</span>' : esc(v)));
                }
                return '<div class="geogrid-tip">' + out.join('<br>') + '</div>';
            };
            var link = {{ this.link_json }};
            var popup = function (layer) {
                var r = layer.options.row, href = link.href.replace(
                    "{id}", encodeURIComponent(r[link.field + 2]));
                return tip(layer).replace(/<\/div>$/, '<br><a target="_top" href="' + esc(href)
                    + '">' + esc(link.text) + '</a></div>');
            };
            var markers = [];
            for (var i = 0; i < rows.length; i++) {
                var r = rows[i];
                var marker = L.circleMarker([r[0], r[1]], {
                    radius: {{ this.radius_expr }}, color: "#333", weight: 1,
                    fillColor: colours[{{ this.colour_expr }}], fillOpacity: 0.85,
                    className: {{ this.class_name|tojson }}, row: r
                });
                marker.bindTooltip(tip);
                if (link) marker.bindPopup(popup);
                markers.push(marker);
            }
            {% if this.cluster %}group.addLayers(markers);{% else %}
            markers.forEach(function (mk) { group.addLayer(mk); });{% endif %}
            return group;
        })();
        {% endmacro %}
        """
    )

    def __init__(
        self,
        rows: Sequence[Sequence[Any]],
        fields: Sequence[tuple[str | None, Sequence[str] | None]],
        *,
        name: str,
        colours: Sequence[str] = ("#3388ff",),
        colour_field: int | None = None,
        radius: float = 5,
        radius_field: int | None = None,
        title_field: int | None = None,
        cluster: bool = False,
        count_field: int | None = None,
        class_name: str = "geogrid-point",
        show: bool = True,
        cluster_options: dict[str, Any] | None = None,
        data_fields: Collection[int] = (),
        link: tuple[int, str, str] | None = None,
        count_title: str | None = None,
    ) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "PointLayer"
        self.rows_json = js_json([list(r) for r in rows])
        self.fields_json = js_json(
            [
                [label, list(lk) if lk else None, i in data_fields]
                for i, (label, lk) in enumerate(fields)
            ]
        )
        self.link_json = js_json(
            None if link is None else {"field": link[0], "href": link[1], "text": link[2]}
        )
        self.count_title_json = js_json(count_title or "{n}")
        self.colours_json = js_json(list(colours))
        self.colour_expr = "0" if colour_field is None else f"r[{int(colour_field) + 2}]"
        self.radius_expr = (
            f"{float(radius):g}" if radius_field is None else f"r[{int(radius_field) + 2}]"
        )
        self.title_index = -1 if title_field is None else int(title_field)
        self.count_index = None if count_field is None else int(count_field)
        self.cluster = cluster
        self.class_name = class_name
        self.cluster_json = js_json(
            cluster_options or {"showCoverageOnHover": False, "chunkedLoading": True}
        )
        self.count = len(rows)
        self.default_js: list[tuple[str, str]] = []
        self.default_css: list[tuple[str, str]] = []
        if cluster:
            self.default_js = [("leaflet.markercluster.js", "")]
            self.default_css = [("markerclustercss", ""), ("markerclusterdefaultcss", "")]
            localize(self)


class LabelLayer(Layer):
    """Text labels (grid codes and names) at points, from one compact array."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function () {
            var rows = {{ this.rows_json }};
            var group = L.layerGroup();
            var esc = function (s) {
                return String(s).replace(/[&<>"']/g, function (c) {
                    return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
                });
            };
            for (var i = 0; i < rows.length; i++) {
                // Grid codes and names as stored: not for a browser to translate.
                var lines = '<span translate="no">' + rows[i][2].map(esc).join('<br>')
                    + '</span>';
                L.marker([rows[i][0], rows[i][1]], {
                    icon: L.divIcon({className: "geogrid-label", html: "<div>" + lines + "</div>",
                                     iconSize: null}),
                    interactive: false, keyboard: false
                }).addTo(group);
            }
            return group;
        })();
        {% endmacro %}
        """
    )

    def __init__(
        self, rows: Sequence[tuple[float, float, Sequence[str]]], *, name: str, show: bool = True
    ) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "LabelLayer"
        self.rows_json = js_json([[lat, lon, list(lines)] for lat, lon, lines in rows])
        self.count = len(rows)


class _Registry(MacroElement):
    _template = Template(
        """
        {% macro script(this, kwargs) %}
        window.geogrid = {
            map: {{ this._parent.get_name() }},
            layers: { {%- for key, name in this.names.items() %}
                {{ key|tojson }}: {{ name }},{% endfor %} },
            meta: {{ this.meta_json }}
        };
        {% endmacro %}
        """
    )

    def __init__(self, names: dict[str, str], meta: dict[str, Any]) -> None:
        super().__init__()
        self._name = "GeogridRegistry"
        self.names = names
        self.meta_json = js_json(meta)


class _Attribution(MacroElement):
    """Lines added to the map's attribution control (Leaflet's credit in the corner)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {%- for line in this.lines %}
        {{ this._parent.get_name() }}.attributionControl.addAttribution({{ line }});
        {%- endfor %}
        {% endmacro %}
        """
    )

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__()
        self._name = "GeogridAttribution"
        self.lines = [js_json(line) for line in lines]


def add_attribution(m: folium.Map, credits: Sequence[tuple[str, str | None]]) -> None:
    """Credit data sources in the map's attribution line: ``(text, url)`` pairs, each once.

    The data drawn (not only the tiles) may carry a licence that asks for it: OpenStreetMap
    buildings and streets are ODbL 1.0, "© OpenStreetMap contributors" with a link to
    openstreetmap.org/copyright (osmfoundation.org/wiki/Licence/Attribution_Guidelines)."""
    lines: list[str] = []
    for text, url in dict.fromkeys(credits):
        label = html.escape(text)
        line = f'<a href="{html.escape(url)}">{label}</a>' if url else label
        if line not in lines:
            lines.append(line)
    if lines:
        m.add_child(_Attribution(lines), name="geogrid_attribution")
        _context(m).meta["attribution"] = [text for text, _ in dict.fromkeys(credits)]


def register_layers(m: folium.Map, **layers: Any) -> None:
    """Remember named layers: ``window.geogrid.layers.<name>`` in the page."""
    _context(m).layers.update(layers)


def render_html(
    m: folium.Map, *, assets: str = "inline", assets_dir: Path | None = None, embed: bool = False
) -> str:
    """The page: ``assets="inline"`` for one standalone file, or a URL prefix of the served
    assets (``"assets/"`` from ``/maps/…``), from ``assets_dir`` (``MapSettings``; default the
    installed ones). ``embed``: for an ``<iframe>`` in a page that says what the map is (the
    dashboard) — no title box. Refuses to produce a page that would fetch any script or style
    sheet from another server."""
    ctx = _context(m)
    if embed:
        _figure(m).html._children.pop("geogrid_title", None)
        ctx.meta["embed"] = True
    # Both must come after every layer (their scripts name the layers): re-added last.
    for name in ("geogrid_layer_control", "geogrid_registry"):
        m._children.pop(name, None)
    m.add_child(folium.LayerControl(collapsed=False), name="geogrid_layer_control")
    m.add_child(
        _Registry({k: v.get_name() for k, v in ctx.layers.items()}, ctx.meta),
        name="geogrid_registry",
    )
    page = _figure(m).render()
    lang = "zh-CN" if ctx.lang == "zh" else "en"
    page = page.replace("<html>", f'<html lang="{lang}">', 1)
    if embed:
        page = page.replace("<body>", '<body class="geogrid-embed">', 1)
    # No favicon request: the page fetches nothing it does not need.
    page = page.replace("<head>", '<head>\n<link rel="icon" href="data:,">', 1)
    page = (
        map_assets.inline_assets(page, assets_dir)
        if assets == "inline"
        else map_assets.link_assets(page, assets, assets_dir)
    )
    outside = map_assets.external_links(page)
    if outside:
        raise ConfigurationError(
            f"the page would load from other servers: {outside[:3]}", field="assets"
        )
    return page

"""Base maps (tile sources) and the CRS every overlay must be drawn in to line up with them.

* ``none`` — no base map: the page fetches nothing from outside its own server (the default,
  right for an intranet). Streets and boundaries from the database orient the reader.
* ``osm`` — OpenStreetMap's standard tiles (WGS 84; internet).
* ``tianditu`` — 天地图 vector map with its annotation layer (``vec_w`` + ``cva_w``, or
  ``eva_w`` in English), Web Mercator, CGCS2000 (= WGS 84 here); needs a key
  (``GEOGRID_TIANDITU_KEY``).
* ``amap`` — 高德 road map (``webrd``), in Chinese or English; GCJ-02.
* ``custom`` — ``GEOGRID_MAP_TILE_URL`` (an XYZ template, e.g. an intranet tile server) with
  ``GEOGRID_MAP_TILE_CRS`` and ``GEOGRID_MAP_TILE_ATTRIBUTION``.

Amap's tiles are drawn in GCJ-02, offset by roughly 450–600 m from WGS 84 in China: every
overlay is shifted to GCJ-02 (:func:`geogrid.crs.frame_from_wgs84`) so that it lines up.
Tianditu's CGCS2000 agrees with WGS 84 to well under a metre: no shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from geogrid.crs import GCJ02, WGS84, normalize_crs
from geogrid.errors import ConfigurationError, InvalidInput
from geogrid.settings import MapSettings

__all__ = ["TILE_SOURCES", "TileSource", "tile_source"]

#: The ``tiles`` values accepted everywhere (``--tiles``, ``?tiles=``).
TILE_SOURCES: Final = ("none", "osm", "tianditu", "amap", "custom")


@dataclass(frozen=True)
class TileLayerSpec:
    url: str
    attribution: str
    subdomains: str = "abc"
    max_zoom: int = 19
    name: str = ""


@dataclass(frozen=True)
class TileSource:
    """A base map: its tile layers (none for ``none``) and the CRS overlays must be drawn in."""

    key: str
    crs: str
    layers: tuple[TileLayerSpec, ...]

    @property
    def shift(self) -> bool:
        """Whether overlays are moved off WGS 84 to line up (Amap: GCJ-02)."""
        return self.crs != WGS84


_OSM: Final = TileLayerSpec(
    "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
    subdomains="abc",
    max_zoom=19,
    name="OpenStreetMap",
)
# WMTS GetTile in the Web Mercator tile matrix set "w" (天地图 API: 地图服务, vec_w / cva_w).
_TIANDITU: Final = (
    "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={key}"
)
_AMAP: Final = (
    "https://webrd0{s}.is.autonavi.com/appmaptile?lang={lang}&size=1&scale=1&style=8"
    "&x={x}&y={y}&z={z}"
)


def tile_source(
    key: str | None, *, lang: str = "zh", settings: MapSettings | None = None
) -> TileSource:
    """The base map named ``key`` (default ``settings.map_tiles``) in ``lang`` (zh or en).

    A source that needs a setting the service lacks: :class:`InvalidInput` (``tiles``) when
    the caller asked for it — this service offers no such base map —, and
    :class:`ConfigurationError` when it is the service's own default."""
    settings = settings or MapSettings.defaults()
    missing: type[InvalidInput] | type[ConfigurationError] = (
        InvalidInput if key else ConfigurationError
    )
    key = (key or settings.map_tiles or "none").strip().lower()
    if key == "none":
        return TileSource("none", WGS84, ())
    if key == "osm":
        return TileSource("osm", WGS84, (_OSM,))
    if key == "tianditu":
        if not settings.tianditu_key:
            raise missing(
                "tiles=tianditu needs a Tianditu key: set GEOGRID_TIANDITU_KEY",
                field="tiles" if missing is InvalidInput else "tianditu_key",
            )
        attribution = '&copy; <a href="https://www.tianditu.gov.cn/">天地图 Tianditu</a>'
        note = "eva" if lang == "en" else "cva"
        layers = tuple(
            TileLayerSpec(
                _TIANDITU.replace("{layer}", layer).replace("{key}", settings.tianditu_key),
                attribution,
                subdomains="01234567",
                max_zoom=18,
                name=name,
            )
            for layer, name in (("vec", "天地图"), (note, "天地图注记"))
        )
        # CGCS2000 is taken as equal to WGS 84 (geogrid.crs): no shift.
        return TileSource("tianditu", WGS84, layers)
    if key == "amap":
        url = _AMAP.replace("{lang}", "en" if lang == "en" else "zh_cn")
        attribution = '&copy; <a href="https://www.amap.com/">高德 Amap</a>'
        return TileSource(
            "amap", GCJ02, (TileLayerSpec(url, attribution, "1234", 18, "高德 Amap"),)
        )
    if key == "custom":
        if not settings.map_tile_url:
            raise missing(
                "tiles=custom needs GEOGRID_MAP_TILE_URL (an XYZ template …/{z}/{x}/{y}.png)",
                field="tiles" if missing is InvalidInput else "map_tile_url",
            )
        crs = normalize_crs(settings.map_tile_crs, field="map_tile_crs")
        spec = TileLayerSpec(settings.map_tile_url, settings.map_tile_attribution, name="tiles")
        return TileSource("custom", crs, (spec,))
    raise InvalidInput(
        f"tiles must be one of {', '.join(TILE_SOURCES)}, got {key!r}", field="tiles"
    )

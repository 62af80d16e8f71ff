"""Reading import files into a WGS 84 GeoDataFrame, remembering where each row came from.

Formats are chosen by the file's extension:

=================  ===========================  ============================================
extension          format                       row location in problems
=================  ===========================  ============================================
``.geojson``,      GeoJSON (parsed here, so an  ``feature``: 0-based index into ``features``
``.json``          unclosed ring is reported,
                   not silently closed)
``.gpkg``          GeoPackage (pyogrio)         ``feature``: the feature id (FID, as QGIS
                                                shows it)
``.shp``           Shapefile (pyogrio)          ``feature``: the FID (0-based record number)
``.csv``, ``.txt`` CSV (comma, tab, semicolon   ``line``: the line in the file where the
                   or ``|``, from the header)   record starts; the header is line 1
``.xlsx``,         Excel workbook (openpyxl)    ``line``: the worksheet row; header = row 1
``.xlsm``
=================  ===========================  ============================================

A GeoPackage with several layers is read from the layer named like the import layer
(``grids``, …); an Excel workbook from the sheet so named, else its first sheet.

**Columns.** Names are stripped and lower-cased. In CSV and Excel files the point is given by
``lon``/``lat`` (also accepted: ``lng``, ``long``, ``longitude``, ``x``, ``经度``; ``latitude``,
``y``, ``纬度``), any geometry by WKT in a ``wkt`` (or ``geometry``, ``geom``) column.

**Text encoding.** GeoPackage and Excel are Unicode by definition. CSV, GeoJSON and Shapefile
(``.dbf``) text is decoded with ``encoding`` when given, else detected: UTF-8 (with or without
BOM) when the bytes decode as UTF-8, else charset-normalizer's guess — preferring GB18030 (a
superset of GBK and GB2312) whenever it is among the candidates, because short GBK samples
often score as Korean CP949 too and Chinese offices write GBK. A Shapefile with a ``.cpg`` file
is read as that file says unless ``encoding`` is given.

**CRS.** A file that declares its CRS (GeoPackage, a Shapefile's ``.prj``, a GeoJSON ``crs``
member) is read in it; ``crs`` is for files that do not, and a contradiction is refused
(``geogrid.crs.frame_to_wgs84``). A GeoJSON file without a ``crs`` member is WGS 84 (RFC 7946
§4) unless ``crs`` says otherwise — Amap exports are GCJ-02 GeoJSON. CSV and Excel files
declare nothing: with coordinates in them, ``crs`` is required. Coordinates in a geographic
CRS are checked to lie in lon −180..180, lat −90..90 before conversion.

Row-level faults found while reading (an unreadable or unclosed geometry, a non-numeric or
out-of-range coordinate) are collected in :attr:`ReadResult.problems` with the row's location;
the importer adds its own and refuses the file with all of them. Faults of the whole file
(unknown format, undecodable text, a missing or contradictory CRS) are collected the same way,
without a row.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import math
import warnings
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import charset_normalizer
import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from geogrid.crs import CRS_HELP, check_lonlat, finite_number, frame_to_wgs84, normalize_crs
from geogrid.errors import CRSError, ImportRefused, InvalidInput

__all__ = [
    "MAX_PROBLEMS",
    "Problem",
    "Problems",
    "ReadResult",
    "detect_encoding",
    "gdal_without_spatialite",
    "read_layer",
]

#: At most this many problems are collected (and listed) per file; the count goes on.
MAX_PROBLEMS = 100
WGS84 = "EPSG:4326"

Format = Literal["geojson", "gpkg", "shapefile", "csv", "xlsx"]
Locator = Literal["feature", "line"]

_FORMATS: dict[str, Format] = {
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
    ".shp": "shapefile",
    ".csv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
}
_COLUMN_ALIASES = {
    "lng": "lon",
    "long": "lon",
    "longitude": "lon",
    "x": "lon",
    "经度": "lon",
    "latitude": "lat",
    "y": "lat",
    "纬度": "lat",
    "geometry": "wkt",
    "geom": "wkt",
}
#: Encodings charset-normalizer may name for GBK/GB2312 text; all are read as GB18030.
_GB_FAMILY = {"gb18030", "gbk", "gb2312", "cp936", "hz"}
#: How many bytes charset-normalizer looks at (a sample is enough; files can be large).
_DETECT_SAMPLE = 512 * 1024
_CSV_DELIMITERS = (",", "\t", ";", "|")


@contextlib.contextmanager
def gdal_without_spatialite() -> Generator[None, None, None]:
    """Run pyogrio I/O with GDAL's own SpatiaLite switched off (``SPATIALITE_LOAD=NO``).

    SQLite loads ``mod_spatialite`` (geogrid's embedded backend) with ``RTLD_GLOBAL``, so its
    symbols then shadow the SpatiaLite copy inside pyogrio's bundled GDAL, and closing any
    GeoPackage crashes the process (segfault in ``spatialite_cleanup_ex`` →
    ``proj_context_destroy``; reproduced with pyogrio 0.13 / GDAL 3.12 and Debian's
    SpatiaLite 5.0.1). GeoPackage reading and writing need no SpatiaLite (only GDAL's SQLite
    SQL dialect does), so it is switched off for the process and left off: setting and
    restoring a global GDAL option per call would race between threads of the API.
    """
    import pyogrio

    if pyogrio.get_gdal_config_option("SPATIALITE_LOAD") != "NO":
        pyogrio.set_gdal_config_options({"SPATIALITE_LOAD": "NO"})
    yield


# --- problems --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One fault of an import file: where (file, feature or line, field) and what."""

    file: str
    message: str
    field: str | None = None
    locator: Locator = "feature"
    #: Feature index / FID or line number; None for a fault of the whole file.
    at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{file, feature|line, field, message}`` (JSON-able)."""
        return {
            "file": self.file,
            self.locator: self.at,
            "field": self.field,
            "message": self.message,
        }

    def __str__(self) -> str:
        where = [self.file]
        if self.at is not None:
            where.append(f"{self.locator} {self.at}")
        if self.field:
            where.append(self.field)
        return f"{', '.join(where)}: {self.message}"


class Problems:
    """Collects the problems of one file, up to ``limit`` (the rest are only counted)."""

    def __init__(self, file: str, locator: Locator, *, limit: int = MAX_PROBLEMS) -> None:
        self.file = file
        self.locator: Locator = locator
        self.limit = limit
        self.items: list[Problem] = []
        self.total = 0

    def add(self, message: str, *, field: str | None = None, at: int | None = None) -> None:
        self.total += 1
        if len(self.items) < self.limit:
            self.items.append(Problem(self.file, message, field, self.locator, at))

    @property
    def full(self) -> bool:
        """Whether the cap is reached (callers may stop looking)."""
        return self.total >= self.limit

    def __bool__(self) -> bool:
        return self.total > 0

    def __len__(self) -> int:
        return self.total

    def error(self, *, layer: str) -> ImportRefused:
        """The :class:`ImportRefused` listing every collected problem."""
        more = self.total - len(self.items)
        lines = [f"  {p}" for p in self.items]
        if more:
            lines.append(f"  … and {more} more (only the first {self.limit} are listed)")
        noun = "problem" if self.total == 1 else "problems"
        message = (
            f"{self.file}: import of {layer} refused, nothing written "
            f"({self.total} {noun}):\n" + "\n".join(lines)
        )
        first = self.items[0] if self.items else None
        return ImportRefused(
            message,
            field=first.field if first else None,
            details={
                "file": self.file,
                "layer": layer,
                "count": self.total,
                "truncated": more > 0,
                "problems": [p.to_dict() for p in self.items],
            },
        )

    def raise_if_any(self, *, layer: str) -> None:
        if self:
            raise self.error(layer=layer)


# --- result ----------------------------------------------------------------------------------


@dataclass
class ReadResult:
    """A file read into ``frame`` (EPSG:4326) with each row's location in the file."""

    path: Path
    format: Format
    #: Normalised columns plus ``geometry`` in EPSG:4326 (None where missing or unreadable).
    frame: gpd.GeoDataFrame
    #: Each row's geometry as read, in the file's CRS, 2D (for validity reasons in file terms).
    source_geometry: list[BaseGeometry | None]
    #: Each row's feature index/FID or line number (see the module docstring).
    locations: list[int]
    problems: Problems
    #: Canonical name of the CRS the coordinates were read in; None when there are none.
    crs: str | None = None
    encoding: str | None = None
    #: False when the CRS could not be settled: geometries are then not checked further.
    geometry_usable: bool = True
    #: CSV/Excel: which of ``lon``, ``lat``, ``wkt`` the file has (they become ``geometry``).
    coordinate_columns: tuple[str, ...] = ()
    #: Rows whose geometry already has a problem (no second "missing geometry" for them).
    bad_geometry: set[int] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)

    @property
    def file(self) -> str:
        return self.path.name

    @property
    def locator(self) -> Locator:
        return self.problems.locator

    @property
    def columns(self) -> list[str]:
        return [c for c in self.frame.columns if c != "geometry"]

    def problem(self, row: int | None, message: str, *, field: str | None = None) -> None:
        """Record a problem of row ``row`` (positional; None for the whole file)."""
        self.problems.add(message, field=field, at=None if row is None else self.locations[row])

    def subset(self, rows: Sequence[int]) -> ReadResult:
        """The rows ``rows`` (positions) as a result of their own. Problems are shared with
        this one and still name each row's place in the file."""
        rows = list(rows)
        new = {old: i for i, old in enumerate(rows)}
        return replace(
            self,
            frame=self.frame.iloc[rows].reset_index(drop=True),
            source_geometry=[self.source_geometry[i] for i in rows],
            locations=[self.locations[i] for i in rows],
            bad_geometry={new[i] for i in self.bad_geometry if i in new},
            warnings=[],
        )


# --- entry point -----------------------------------------------------------------------------


def read_layer(
    path: Path,
    *,
    crs: str | None = None,
    encoding: str | None = None,
    layer: str | None = None,
    max_problems: int = MAX_PROBLEMS,
) -> ReadResult:
    """Read ``path`` into EPSG:4326 (see the module docstring for formats, encodings, CRSs).

    ``layer`` names the GeoPackage layer or Excel sheet to prefer. Raises
    :class:`ImportRefused` only when nothing useful can be read (missing file, unknown
    format, undecodable text); other faults are returned in ``problems``.
    """
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    locator: Locator = "line" if fmt in ("csv", "xlsx") else "feature"
    problems = Problems(path.name, locator, limit=max_problems)
    if fmt is None:
        hint = " (save it as .xlsx)" if path.suffix.lower() == ".xls" else ""
        problems.add(
            f"unknown file format {path.suffix or '(no extension)'!r}{hint}; expected "
            + ", ".join(sorted(_FORMATS)),
            field="file",
        )
        raise problems.error(layer=layer or "data")
    if not path.is_file():
        problems.add("no such file", field="file")
        raise problems.error(layer=layer or "data")
    if encoding is not None:
        try:
            encoding = codecs.lookup(encoding).name
        except LookupError:
            problems.add(f"unknown text encoding {encoding!r}", field="encoding")
            raise problems.error(layer=layer or "data") from None

    raw = _READERS[fmt](path, problems, encoding=encoding, layer=layer)
    if problems and raw is None:
        raise problems.error(layer=layer or "data")
    assert raw is not None
    result = ReadResult(
        path=path,
        format=fmt,
        frame=gpd.GeoDataFrame(),
        source_geometry=[],
        locations=raw.locations,
        problems=problems,
        encoding=raw.encoding,
        warnings=raw.warnings,
    )
    _settle_geometry(result, raw, crs)
    return result


# --- raw reading -----------------------------------------------------------------------------


@dataclass
class _Raw:
    """What a format reader returns: records, geometries as read, locations, declared CRS."""

    records: list[dict[str, Any]]
    locations: list[int]
    #: Geometries as read (vector formats) or None; tables build theirs from columns.
    geometries: list[BaseGeometry | None] | None
    declared_crs: Any = None
    #: GeoJSON without ``crs`` member: WGS 84 by RFC 7946 unless ``--crs`` says otherwise.
    default_crs: str | None = None
    encoding: str | None = None
    #: Rows whose geometry could not be read (already reported).
    bad: set[int] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)


def _decode(data: bytes, problems: Problems, encoding: str | None) -> tuple[str, str] | None:
    """``(text, encoding)`` of ``data``; a whole-file problem and None when impossible."""
    if encoding is None:
        try:
            encoding = detect_encoding(data)
        except InvalidInput as exc:
            problems.add(exc.message, field="encoding")
            return None
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError as exc:
        problems.add(
            f"cannot decode the file as {encoding} (byte {exc.start}): give the right --encoding",
            field="encoding",
        )
        return None


def detect_encoding(data: bytes) -> str:
    """The text encoding of ``data``: ``utf-8-sig``, ``utf-8``, ``gb18030`` or another guess.

    Raises :class:`InvalidInput` when charset-normalizer finds no plausible encoding.
    """
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    names = [r.encoding for r in charset_normalizer.from_bytes(data[:_DETECT_SAMPLE])]
    # Short GBK samples often score as cp949 (Korean) or Big5 as well; the offices geogrid
    # serves write GBK, and GB18030 decodes every GBK and GB2312 file.
    if any(n.lower() in _GB_FAMILY for n in names):
        return "gb18030"
    if names:
        return codecs.lookup(names[0]).name
    raise InvalidInput("cannot detect the text encoding: give --encoding", field="encoding")


def _read_geojson(
    path: Path, problems: Problems, *, encoding: str | None, layer: str | None
) -> _Raw | None:
    decoded = _decode(path.read_bytes(), problems, encoding)
    if decoded is None:
        return None
    text, used = decoded
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.add(f"not valid JSON: {exc.msg} at line {exc.lineno}", field="file")
        return None
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        features: Any = [doc]
    elif isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        features = doc.get("features")
    else:
        features = None
    if not isinstance(features, list):
        problems.add("not a GeoJSON FeatureCollection", field="file")
        return None
    raw = _Raw(records=[], locations=[], geometries=[], encoding=used)
    declared = _geojson_crs(doc.get("crs"), problems)
    if declared is None:
        raw.default_crs = "wgs84"
    raw.declared_crs = declared
    assert raw.geometries is not None
    for i, feature in enumerate(features):
        raw.locations.append(i)
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            problems.add("not a GeoJSON Feature", field="geometry", at=i)
            raw.records.append({})
            raw.geometries.append(None)
            raw.bad.add(i)
            continue
        props = feature.get("properties") or {}
        raw.records.append(dict(props) if isinstance(props, dict) else {})
        geom, fault = _geojson_geometry(feature.get("geometry"))
        if fault:
            problems.add(fault, field="geometry", at=i)
            raw.bad.add(i)
        raw.geometries.append(geom)
    return raw


def _geojson_crs(member: Any, problems: Problems) -> str | None:
    """The CRS named by a (pre-RFC 7946) GeoJSON ``crs`` member, or None."""
    if member is None:
        return None
    props = member.get("properties", {}) if isinstance(member, dict) else {}
    name = props.get("name") or (f"EPSG:{props['code']}" if "code" in props else None)
    if not isinstance(name, str):
        problems.add(f"unreadable GeoJSON crs member {member!r}", field="crs")
        return None
    return name


def _geojson_geometry(obj: Any) -> tuple[BaseGeometry | None, str | None]:
    """``(geometry, fault)`` of a GeoJSON geometry object; rings must be closed as written."""
    if obj is None:
        return None, None
    if not isinstance(obj, dict):
        return None, "the geometry is not a GeoJSON object"
    fault = _unclosed_ring(obj)
    if fault:
        return None, fault
    try:
        geom = shape(obj)
    except Exception as exc:  # shapely raises several types for malformed coordinates
        return None, f"unreadable geometry: {exc}"
    return shapely.force_2d(geom), None


def _unclosed_ring(obj: dict[str, Any]) -> str | None:
    """A message for the first ring whose last position differs from its first (RFC 7946 §3.1.6).

    shapely closes such rings silently; the design asks for them to be refused.
    """
    kind = obj.get("type")
    if kind == "GeometryCollection":
        for part in obj.get("geometries") or []:
            if isinstance(part, dict) and (fault := _unclosed_ring(part)):
                return fault
        return None
    coords = obj.get("coordinates")
    if kind == "Polygon":
        polygons = [coords]
    elif kind == "MultiPolygon":
        polygons = coords if isinstance(coords, list) else []
    else:
        return None
    for p, rings in enumerate(polygons):
        for r, ring in enumerate(rings if isinstance(rings, list) else []):
            if isinstance(ring, list) and len(ring) >= 2 and list(ring[0]) != list(ring[-1]):
                part = f"polygon {p} " if kind == "MultiPolygon" else ""
                which = "exterior ring" if r == 0 else f"interior ring {r}"
                return (
                    f"{part}{which} is not closed: it starts at {_pos(ring[0])} "
                    f"but ends at {_pos(ring[-1])}"
                )
    return None


def _pos(position: Any) -> str:
    return "(" + " ".join(str(c) for c in position[:2]) + ")"


def _read_ogr(
    path: Path, problems: Problems, *, encoding: str | None, layer: str | None
) -> _Raw | None:
    """GeoPackage or Shapefile through pyogrio, geometries parsed one by one."""
    import pyogrio
    import pyogrio.raw

    raw = _Raw(records=[], locations=[], geometries=[])
    ogr_layer: str | None = None
    if path.suffix.lower() == ".gpkg":
        try:
            with gdal_without_spatialite():
                layers = [str(name) for name, _ in pyogrio.list_layers(path)]
        except Exception as exc:
            problems.add(f"cannot open the GeoPackage: {exc}", field="file")
            return None
        if layer in layers:
            ogr_layer = layer
        elif len(layers) == 1:
            ogr_layer = layers[0]
        else:
            problems.add(
                f"the GeoPackage holds {len(layers)} layers ({', '.join(layers)}) and none is "
                f"named {layer!r}: name the layer to import {layer!r}, or save it alone",
                field="layer",
            )
            return None
        encoding = None  # GeoPackage text is UTF-8 by definition
    elif encoding is None and not path.with_suffix(".cpg").exists():
        encoding = _dbf_encoding(path.with_suffix(".dbf"), problems)
    try:
        with warnings.catch_warnings(), gdal_without_spatialite():
            # GDAL warns "Non closed ring detected"; such rings are reported per feature below.
            warnings.simplefilter("ignore", RuntimeWarning)
            meta, fids, wkbs, columns = pyogrio.raw.read(
                path,
                layer=ogr_layer,
                encoding=encoding,
                return_fids=True,
                datetime_as_string=True,
                force_2d=True,
            )
    except Exception as exc:
        problems.add(f"cannot read the file: {exc}", field="file")
        return None
    raw.declared_crs = meta.get("crs")
    raw.encoding = encoding or meta.get("encoding")
    names = [str(n) for n in meta["fields"]]
    assert raw.geometries is not None
    n = len(fids)
    for i in range(n):
        fid = int(fids[i])
        raw.locations.append(fid)
        raw.records.append({name: _scalar(columns[j][i]) for j, name in enumerate(names)})
        blob = None if wkbs is None else wkbs[i]
        geom: BaseGeometry | None = None
        if blob is not None:
            try:
                geom = shapely.from_wkb(bytes(blob))
            except Exception as exc:  # GEOS refuses unclosed rings and short rings here
                problems.add(_geos_fault(str(exc)), field="geometry", at=fid)
                raw.bad.add(i)
        raw.geometries.append(geom)
    return raw


def _geos_fault(message: str) -> str:
    if "closed linestring" in message:
        return "a polygon ring is not closed: its first and last points differ"
    return f"unreadable geometry: {message}"


def _dbf_encoding(dbf: Path, problems: Problems) -> str | None:
    """The encoding of a ``.dbf`` without ``.cpg``: detected from its records; None if ASCII."""
    if not dbf.exists():
        return None
    data = dbf.read_bytes()
    # dBASE header: bytes 8–9 hold the header length; records follow.
    body = data[int.from_bytes(data[8:10], "little") :] if len(data) > 10 else b""
    if body.isascii():
        return None
    try:
        return detect_encoding(body)
    except InvalidInput as exc:
        problems.add(exc.message, field="encoding")
        return None


def _scalar(value: Any) -> Any:
    """A numpy scalar as a Python value; NaN/NaT as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _read_csv(
    path: Path, problems: Problems, *, encoding: str | None, layer: str | None
) -> _Raw | None:
    decoded = _decode(path.read_bytes(), problems, encoding)
    if decoded is None:
        return None
    text, used = decoded
    text = text.removeprefix("\ufeff")
    header_line = text.split("\n", 1)[0]
    delimiter = max(_CSV_DELIMITERS, key=header_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    last = 0
    try:
        for record in reader:
            start, last = last + 1, reader.line_num  # a quoted field may span lines
            rows.append((start, record))
    except csv.Error as exc:
        problems.add(f"malformed CSV: {exc}", field="file", at=last + 1)
        return None
    return _table(rows, problems, used)


def _read_xlsx(
    path: Path, problems: Problems, *, encoding: str | None, layer: str | None
) -> _Raw | None:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        problems.add(f"cannot open the workbook: {exc}", field="file")
        return None
    try:
        sheet = book[layer] if layer in book.sheetnames else book.worksheets[0]
        rows = [
            (i, list(values))
            for i, values in enumerate(sheet.iter_rows(min_row=1, values_only=True), start=1)
        ]
    finally:
        book.close()
    raw = _table(rows, problems, None)
    if raw is not None and len(book.sheetnames) > 1:
        raw.warnings.append(f"read sheet {sheet.title!r} of {len(book.sheetnames)}")
    return raw


def _table(
    rows: Sequence[tuple[int, list[Any]]], problems: Problems, used: str | None
) -> _Raw | None:
    """Records of a CSV/Excel table whose first row (line 1) is the header."""
    if not rows or not any(_blank(v) is not None for v in rows[0][1]):
        problems.add("the first line must be the header (column names)", field="header", at=1)
        return None
    header = [_column(v) for v in rows[0][1]]
    while header and header[-1] == "":
        header.pop()
    seen: set[str] = set()
    for j, name in enumerate(header):
        if name and name in seen:
            problems.add(
                f"column {j + 1} repeats the column {name!r} (aliases count as the same name)",
                field=name,
                at=rows[0][0],
            )
        seen.add(name)
    raw = _Raw(records=[], locations=[], geometries=None, encoding=used)
    for line, values in rows[1:]:
        cells = [_blank(v) for v in values]
        if all(v is None for v in cells):
            continue
        raw.locations.append(line)
        if len(cells) > len(header) and any(v is not None for v in cells[len(header) :]):
            problems.add(f"{len(cells)} values for {len(header)} columns", field="header", at=line)
        raw.records.append(
            {name: cells[j] if j < len(cells) else None for j, name in enumerate(header) if name}
        )
    return raw


def _column(value: Any) -> str:
    name = "" if value is None else str(value).strip().lstrip("\ufeff").lower()
    return _COLUMN_ALIASES.get(name, name)


def _blank(value: Any) -> Any:
    """Empty cells (None, blank strings) as None; strings stripped."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


_READERS = {
    "geojson": _read_geojson,
    "gpkg": _read_ogr,
    "shapefile": _read_ogr,
    "csv": _read_csv,
    "xlsx": _read_xlsx,
}


# --- geometry and CRS ------------------------------------------------------------------------


def _settle_geometry(result: ReadResult, raw: _Raw, crs: str | None) -> None:
    """Build ``result.frame`` in EPSG:4326 from ``raw``, checking and converting coordinates."""
    # Each distinct name normalised once (not once per cell: 10 columns × 500,000 rows).
    names = {k: _normal(k) for k in dict.fromkeys(k for r in raw.records for k in r)}
    records = [{names[k]: v for k, v in r.items()} for r in raw.records]
    columns = list(dict.fromkeys(names.values()))
    data = pd.DataFrame.from_records(records, columns=columns)
    data = data.astype(object).where(data.notna(), None)
    result.bad_geometry = set(raw.bad)
    tabular = raw.geometries is None
    if tabular:
        result.coordinate_columns = tuple(c for c in ("lon", "lat", "wkt") if c in columns)
        has_coords = bool(result.coordinate_columns)
    else:
        assert raw.geometries is not None
        has_coords = any(g is not None for g in raw.geometries)

    source = _source_crs(result, raw, crs) if has_coords else None
    result.crs = source
    if tabular:
        geoms: list[BaseGeometry | None] = (
            _table_geometries(result, data, source) if has_coords else [None] * len(data)
        )
        data = data.drop(columns=[c for c in ("lon", "lat", "wkt") if c in data.columns])
    else:
        assert raw.geometries is not None
        geoms = list(raw.geometries)
    result.source_geometry = geoms
    frame = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, index=data.index))
    if not has_coords or source is None:
        result.geometry_usable = not has_coords
        result.frame = _with_geometries(frame, [None] * len(frame))
        return
    try:
        if not tabular and raw.declared_crs is not None:
            frame = frame.set_crs(raw.declared_crs, allow_override=True)
        out = frame_to_wgs84(frame, crs=crs if crs is not None else raw.default_crs)
    except (CRSError, pyproj.exceptions.CRSError) as exc:
        result.problem(None, getattr(exc, "message", str(exc)), field="crs")
        result.geometry_usable = False
        result.frame = _with_geometries(frame, [None] * len(frame))
        return
    converted = list(out.geometry.to_numpy())
    if not tabular:
        # After the CRS is settled (a contradiction would make these checks meaningless).
        _check_range(result, geoms, source, field="geometry")
    _check_converted(result, converted)
    for i in result.bad_geometry:
        converted[i] = None
    result.frame = _with_geometries(out, converted)


def _with_geometries(frame: gpd.GeoDataFrame, geoms: list[Any]) -> gpd.GeoDataFrame:
    return frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=WGS84))


def _normal(name: Any) -> str:
    return str(name).strip().lower()


def _source_crs(result: ReadResult, raw: _Raw, crs: str | None) -> str | None:
    """The canonical CRS the coordinates are in; a whole-file problem and None if unknown.

    The conflict between a declared CRS and ``crs`` is judged by ``frame_to_wgs84`` later;
    here only the name used for range checks and the report is settled.
    """
    given = crs if crs is not None else raw.default_crs
    try:
        if given is not None:
            return normalize_crs(given)
        if raw.declared_crs is not None:
            return normalize_crs(raw.declared_crs)
    except CRSError as exc:
        if given is None and raw.declared_crs is not None:
            # A declared CRS without an EPSG code (a city's local grid): PROJ converts it.
            return str(pyproj.CRS.from_user_input(raw.declared_crs).name)
        result.problem(None, exc.message, field="crs")
        return None
    what = {
        "csv": "a CSV file declares no CRS",
        "xlsx": "an Excel file declares no CRS",
        "shapefile": "the Shapefile has no .prj file",
    }.get(result.format, "the file declares no CRS")
    result.problem(None, f"{what}: give --crs (one of: {CRS_HELP})", field="crs")
    return None


def _is_geographic(name: str) -> bool:
    """Whether coordinates in the canonical CRS ``name`` are longitude/latitude degrees."""
    if name in ("wgs84", "cgcs2000", "gcj02", "bd09"):
        return True
    try:
        return bool(pyproj.CRS.from_user_input(name).is_geographic)
    except pyproj.exceptions.CRSError:
        return False


def _table_geometries(
    result: ReadResult, data: pd.DataFrame, source: str | None
) -> list[BaseGeometry | None]:
    """Points from ``lon``/``lat`` or geometries from ``wkt``, per row, as read."""
    geographic = source is not None and _is_geographic(source)
    out: list[BaseGeometry | None] = []
    # Whole columns as lists: ``data.iloc[i]`` builds a Series per row (~60 µs each).
    nothing = [None] * len(data)
    wkts, lons, lats = (
        data[c].tolist() if c in data.columns else nothing for c in ("wkt", "lon", "lat")
    )
    # Points are made in one vectorised call at the end (a shapely.Point per row: ~5 µs).
    at: list[int] = []
    xs: list[float] = []
    ys: list[float] = []
    for i, (wkt, lon, lat) in enumerate(zip(wkts, lons, lats, strict=True)):
        geom: BaseGeometry | None = None
        if wkt is not None:
            try:
                geom = shapely.force_2d(shapely.from_wkt(str(wkt)))
            except Exception as exc:
                result.problem(i, _geos_fault(str(exc)), field="wkt")
                result.bad_geometry.add(i)
            else:
                if source is not None and geographic:
                    _check_range(result, [geom], source, field="wkt", rows=[i])
                    if i in result.bad_geometry:
                        geom = None
        elif lon is not None or lat is not None:
            if lon is None or lat is None:
                result.problem(i, "give both lon and lat", field="lat" if lat is None else "lon")
                result.bad_geometry.add(i)
            elif source is None:
                pass  # no CRS: reported once for the file
            else:
                try:
                    x, y = (
                        check_lonlat(lon, lat)
                        if geographic
                        # Projected: metres have no range to check, only finiteness.
                        else (finite_number(lon, "lon"), finite_number(lat, "lat"))
                    )
                except InvalidInput as exc:
                    result.problem(i, exc.message, field=exc.field)
                    result.bad_geometry.add(i)
                else:
                    at.append(i)
                    xs.append(x)
                    ys.append(y)
        out.append(geom)
    for i, point in zip(at, shapely.points(xs, ys).tolist(), strict=True):
        out[i] = point
    return out


def _check_range(
    result: ReadResult,
    geoms: list[BaseGeometry | None],
    source: str,
    *,
    field: str,
    rows: Sequence[int] | None = None,
) -> None:
    """Report geometries with a vertex outside lon −180..180 / lat −90..90 (geographic CRSs).

    The geometry is dropped (set to None) so it is not converted or checked again.
    """
    if not _is_geographic(source):
        return
    for k, geom in enumerate(geoms):
        if geom is None:
            continue
        row = rows[k] if rows is not None else k
        for v, (x, y) in enumerate(_bad_vertices(geom)):
            try:
                check_lonlat(x, y)
            except InvalidInput as exc:
                result.problem(row, f"vertex {v}: {exc.message}", field=field)
                result.bad_geometry.add(row)
                if rows is None:
                    geoms[k] = None
                break


def _bad_vertices(geom: BaseGeometry) -> Iterator[tuple[float, float]]:
    coords = shapely.get_coordinates(geom)
    x, y = coords[:, 0], coords[:, 1]
    bad = ~np.isfinite(x) | ~np.isfinite(y) | (np.abs(x) > 180) | (np.abs(y) > 90)
    for idx in np.flatnonzero(bad)[:1]:
        yield float(x[idx]), float(y[idx])


def _check_converted(result: ReadResult, geoms: list[BaseGeometry | None]) -> None:
    """Report rows whose converted coordinates are not finite lon/lat (outside a CRS's area)."""
    # One vectorised pass over every vertex; only the rows with a bad one are looked at again.
    coords, index = shapely.get_coordinates(np.asarray(geoms, dtype=object), return_index=True)
    xs, ys = coords[:, 0], coords[:, 1]
    bad = ~np.isfinite(xs) | ~np.isfinite(ys) | (np.abs(xs) > 180) | (np.abs(ys) > 90)
    for i in np.unique(index[bad]).tolist():
        geom = geoms[i]
        if geom is None or i in result.bad_geometry:
            continue
        for x, y in _bad_vertices(geom):
            result.problem(
                i,
                f"coordinates cannot be converted from {result.crs} to lon/lat "
                f"(got {x!r}, {y!r}): wrong --crs?",
                field="geometry",
            )
            result.bad_geometry.add(i)

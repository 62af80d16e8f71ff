"""Households files for batch assignment: coordinates as numpy arrays, read in partitions.

A :class:`Households` describes a file without reading its rows (it is small and pickles,
so Dask workers get it in every task); :meth:`Households.read` reads one
:class:`Partition`. GeoParquet is read through pyarrow: a geoarrow ``point`` column (a
``struct<x, y>`` or an interleaved ``fixed_size_list<double>[2]``) gives the coordinate
arrays with no geometry objects at all (a struct column of 1M rows: ~5 ms); WKB needs
shapely (~0.3 s per million); plain x/y columns are read as they are. GeoPackage goes through
pyogrio's Arrow reader (WKB).

Each row that cannot be placed gets a reason (no geometry, not a point, coordinates not
finite or out of range); the run writes those rows to the rejects file and goes on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyproj
import shapely
from geopandas import GeoDataFrame

from geogrid.crs import frame_to_wgs84, normalize_crs, to_wgs84
from geogrid.errors import InvalidInput

__all__ = ["Households", "Partition", "Points", "Reasons", "lookup_rows"]

FloatArray = npt.NDArray[np.float64]

#: Columns taken as coordinates when a file has no geometry column (first pair present).
XY_NAMES: Final = (("x", "y"), ("lon", "lat"), ("longitude", "latitude"), ("lng", "lat"))
#: Columns taken as the household's id, in this order, unless ``id_column`` is given.
ID_NAMES: Final = ("household_id", "id", "fid")

_TYPE_NAMES: Final = {
    1: "LineString",
    2: "LinearRing",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}
_PARQUET: Final = (".parquet", ".geoparquet", ".pq")
_OGR: Final = (".gpkg", ".geojson", ".json", ".fgb", ".shp")


@dataclass(frozen=True)
class Partition:
    """Rows ``start``…``stop − 1`` (0-based) of the input; Parquet row groups when read so."""

    number: int
    start: int
    stop: int
    row_groups: tuple[int, ...] = ()


@dataclass
class Points:
    """One partition's households: ids, WGS 84 coordinates and why a row is refused (or None)."""

    rows: npt.NDArray[np.int64]  # 1-based row numbers in the input
    ids: Any  # pyarrow Array (the id column) or None
    x: FloatArray
    y: FloatArray
    reasons: Reasons

    @property
    def good(self) -> npt.NDArray[np.bool_]:
        return self.reasons.code == 0

    def reason_texts(self, mask: npt.NDArray[np.bool_]) -> list[str]:
        """Why each row selected by ``mask`` was refused."""
        return [self.reasons.messages[c] for c in self.reasons.code[mask].tolist()]


class Reasons:
    """Why rows are refused: a small code per row (0 = good) and the message of each code
    (an object array of 5M ``None`` cost ~0.3 s to make and test; a uint8 array ~5 ms)."""

    def __init__(self, n: int) -> None:
        self.code = np.zeros(n, dtype=np.uint8)
        self.messages = [""]

    def set(self, mask: npt.NDArray[np.bool_], message: str) -> None:
        """Refuse the rows of ``mask`` with ``message`` (a row keeps its first reason)."""
        mask = mask & (self.code == 0)
        if not mask.any():
            return
        if message not in self.messages:
            self.messages.append(message)
        self.code[mask] = self.messages.index(message)

    @property
    def ok(self) -> npt.NDArray[np.bool_]:
        return self.code == 0


@dataclass(frozen=True)
class Households:
    """An input file of households and how to read its coordinates (see :meth:`open`)."""

    path: str
    kind: str  # "parquet" | "ogr"
    geometry: str  # "struct" | "interleaved" | "wkb" | "xy"
    columns: tuple[str, ...]  # the coordinate column(s): (geometry,) or (x, y)
    id_column: str | None
    crs: str  # canonical name (geogrid.crs.normalize_crs) of the coordinates
    num_rows: int
    row_group_rows: tuple[int, ...] = field(default=())
    layer: str | None = None

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        crs: str | None = None,
        id_column: str | None = None,
        x: str | None = None,
        y: str | None = None,
        layer: str | None = None,
    ) -> Households:
        """Inspect ``path`` (schema and metadata only) and decide how to read it.

        ``crs`` says what the coordinates are when the file cannot (GCJ-02, BD-09, x/y
        columns); a file's declared CRS that contradicts it is refused as
        :func:`geogrid.crs.frame_to_wgs84` refuses it. ``x``/``y`` name coordinate columns.
        """
        p = Path(path)
        if not p.exists():
            raise InvalidInput(f"no such file: {p}", field="households")
        suffix = p.suffix.lower()
        if p.is_dir() or suffix in _PARQUET:
            return _open_parquet(p, crs=crs, id_column=id_column, x=x, y=y)
        if suffix in _OGR:
            return _open_ogr(p, crs=crs, id_column=id_column, layer=layer)
        raise InvalidInput(
            f"{p}: households must be GeoParquet (.parquet) or GeoPackage (.gpkg)",
            field="households",
        )

    def partitions(self, rows: int) -> list[Partition]:
        """Partitions of at most ``rows`` rows each (whole row groups for Parquet: a bigger
        row group is a partition of its own)."""
        rows = max(int(rows), 1)
        parts: list[Partition] = []
        if self.kind == "parquet":
            start, size = 0, 0
            groups: list[int] = []
            for g, n in enumerate(self.row_group_rows):
                if groups and size + n > rows:  # row groups of 999,992 make 1 each, not 2
                    parts.append(Partition(len(parts), start, start + size, tuple(groups)))
                    start, groups, size = start + size, [], 0
                groups.append(g)
                size += n
            if groups:
                parts.append(Partition(len(parts), start, start + size, tuple(groups)))
            return parts
        for start in range(0, self.num_rows, rows):
            stop = min(start + rows, self.num_rows)
            parts.append(Partition(len(parts), start, stop))
        return parts

    def read(self, part: Partition) -> Points:
        """The partition's rows: ids, coordinates in WGS 84, and a reason for each bad row."""
        table = self._table(part)
        n = table.num_rows
        ids = table.column(self.id_column).combine_chunks() if self.id_column else None
        x, y, reasons = self._coordinates(table)
        x, y = _to_wgs84(x, y, reasons, self.crs)
        rows = np.arange(part.start + 1, part.start + n + 1, dtype=np.int64)
        return Points(rows, ids, x, y, reasons)

    def _table(self, part: Partition) -> Any:
        wanted = [*self.columns, *([self.id_column] if self.id_column else [])]
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(self.path).read_row_groups(list(part.row_groups), columns=wanted)
        import pyogrio

        meta, table = pyogrio.read_arrow(
            self.path,
            layer=self.layer,
            columns=[c for c in wanted if c != self.columns[0]],
            skip_features=part.start,
            max_features=part.stop - part.start,
        )
        names = list(table.column_names)
        names[names.index(meta.get("geometry_name") or "wkb_geometry")] = self.columns[0]
        return table.rename_columns(names)

    def _coordinates(self, table: Any) -> tuple[FloatArray, FloatArray, Reasons]:
        import pyarrow as pa
        import pyarrow.compute as pc

        n = table.num_rows
        reason = Reasons(n)
        if self.geometry == "xy":
            x = _floats(table.column(self.columns[0]), self.columns[0])
            y = _floats(table.column(self.columns[1]), self.columns[1])
            reason.set(np.isnan(x) | np.isnan(y), "no coordinates")
            return x, y, reason
        col = table.column(self.columns[0]).combine_chunks()
        if isinstance(col, pa.ExtensionArray):
            col = col.storage
        missing = np.asarray(pc.is_null(col).to_numpy(zero_copy_only=False), dtype=bool)
        if self.geometry == "struct":
            x = _floats(col.field(0), "x")
            y = _floats(col.field(1), "y")
        elif self.geometry == "interleaved":
            size = col.type.list_size
            values = col.values.slice(col.offset * size, n * size)
            xy = _floats(values, "coordinates").reshape(n, size)
            x, y = np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])
        else:
            wkb: Any = np.asarray(col.to_numpy(zero_copy_only=False), dtype=object)
            wkb[missing] = None
            geoms = shapely.from_wkb(wkb, on_invalid="ignore")
            types = shapely.get_type_id(geoms)
            bad_wkb = ~missing & (types == -1)
            reason.set(bad_wkb, "geometry is not valid WKB")
            wrong = (types > 0) & ~missing
            for t in np.unique(types[wrong]).tolist():
                reason.set(wrong & (types == t), f"not a point: {_TYPE_NAMES.get(t, t)}")
            empty = (types == 0) & shapely.is_empty(geoms)
            reason.set(empty, "empty point")
            x, y = np.full(n, np.nan), np.full(n, np.nan)
            pts = (types == 0) & ~empty
            x[pts], y[pts] = shapely.get_x(geoms[pts]), shapely.get_y(geoms[pts])
        x = np.where(missing, np.nan, x)
        y = np.where(missing, np.nan, y)
        reason.set(missing, "no geometry")
        return x, y, reason


def _floats(arr: Any, name: str) -> FloatArray:
    """A numeric Arrow array as float64 (nulls → NaN); anything else is refused."""
    import pyarrow as pa

    if not (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)):
        raise InvalidInput(f"column {name} must be numeric, not {arr.type}", field=name)
    out = arr.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return np.asarray(out, dtype=np.float64)


def _to_wgs84(
    x: FloatArray, y: FloatArray, reason: Reasons, crs: str
) -> tuple[FloatArray, FloatArray]:
    """Coordinates in WGS 84; rows not finite or out of range get a reason."""
    finite = np.isfinite(x) & np.isfinite(y)
    reason.set(~finite, "coordinates not finite")
    ok = reason.ok
    if crs not in ("wgs84", "cgcs2000"):
        lon, lat = np.full(len(x), np.nan), np.full(len(x), np.nan)
        if ok.any():
            lon[ok], lat[ok] = to_wgs84(x[ok], y[ok], crs)
        bad = ok & ~(np.isfinite(lon) & np.isfinite(lat))
        reason.set(bad, f"coordinates cannot be converted from {crs}")
        ok &= ~bad
        x, y = lon, lat
    out = ok & ~((x >= -180.0) & (x <= 180.0) & (y >= -90.0) & (y <= 90.0))
    reason.set(out, "out of range (longitude −180…180, latitude −90…90)")
    return x, y


def _resolve_crs(declared: pyproj.CRS | None, requested: str | None) -> str:
    """The coordinates' CRS: ``requested`` and the file's declared CRS under the rules of
    :func:`geogrid.crs.frame_to_wgs84` (it raises the same errors; it is asked on an empty
    frame so the rule exists once)."""
    frame_to_wgs84(GeoDataFrame(geometry=[], crs=declared), requested)
    if requested is not None:
        return normalize_crs(requested)
    assert declared is not None
    return normalize_crs(declared)


def _pick_id(names: list[str], id_column: str | None, path: Path) -> str | None:
    if id_column is not None:
        if id_column not in names:
            raise InvalidInput(
                f"{path} has no column {id_column!r}; it has: {', '.join(names)}", field="id"
            )
        return id_column
    return next((c for c in ID_NAMES if c in names), None)


def _open_parquet(
    p: Path, *, crs: str | None, id_column: str | None, x: str | None, y: str | None
) -> Households:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if p.is_dir():
        raise InvalidInput(f"{p}: give one GeoParquet file, not a folder", field="households")
    try:
        pf = pq.ParquetFile(str(p))
    except (OSError, pa.ArrowInvalid) as exc:
        raise InvalidInput(f"{p} is not a Parquet file: {exc}", field="households") from None
    schema = pf.schema_arrow
    names = list(schema.names)
    geo = json.loads((schema.metadata or {}).get(b"geo", b"null") or "null")
    declared: pyproj.CRS | None = None
    if (x is None) != (y is None):
        raise InvalidInput("give both --x and --y, or neither", field="x")
    if x is not None or (geo is None and _xy(names)):
        cx, cy = (x, y) if x and y else _xy(names) or ("x", "y")
        for c in (cx, cy):
            if c not in names:
                raise InvalidInput(f"{p} has no column {c!r}", field="households")
        columns: tuple[str, ...] = (cx, cy)
        kind = "xy"
        if crs is None:
            raise InvalidInput(
                f"{p}: x/y columns carry no CRS; pass --crs (e.g. wgs84 or gcj02)", field="crs"
            )
    else:
        gcol, meta = _geometry_column(p, names, geo)
        typ = schema.field(gcol).type
        if isinstance(typ, pa.ExtensionType):
            typ = typ.storage_type
        if pa.types.is_struct(typ):
            kind = "struct"
        elif pa.types.is_fixed_size_list(typ):
            kind = "interleaved"
        elif pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
            kind = "wkb"
        else:
            raise InvalidInput(
                f"{p}: geometry column {gcol} is {typ}; expected geoarrow points or WKB",
                field="households",
            )
        columns = (gcol,)
        # GeoParquet: a missing "crs" means OGC:CRS84; null means unknown.
        if "crs" not in meta:
            declared = pyproj.CRS.from_epsg(4326)
        elif meta["crs"] is not None:
            declared = (
                pyproj.CRS.from_json_dict(meta["crs"])
                if isinstance(meta["crs"], dict)
                else pyproj.CRS.from_user_input(meta["crs"])
            )
    md = pf.metadata
    groups = tuple(md.row_group(g).num_rows for g in range(md.num_row_groups))
    return Households(
        path=str(p),
        kind="parquet",
        geometry=kind,
        columns=columns,
        id_column=_pick_id(names, id_column, p),
        crs=_resolve_crs(declared, crs) if kind != "xy" else normalize_crs(crs),
        num_rows=md.num_rows,
        row_group_rows=groups,
    )


def _xy(names: list[str]) -> tuple[str, str] | None:
    lower = {n.lower(): n for n in names}
    for a, b in XY_NAMES:
        if a in lower and b in lower:
            return lower[a], lower[b]
    return None


def _geometry_column(p: Path, names: list[str], geo: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(geo, dict) and geo.get("primary_column") in names:
        col = geo["primary_column"]
        return col, dict(geo.get("columns", {}).get(col, {}))
    for c in ("geometry", "geom", "wkb_geometry"):
        if c in names:
            return c, {}
    raise InvalidInput(
        f"{p} has no geometry column and no x/y (or lon/lat) columns; it has: {', '.join(names)}",
        field="households",
    )


def _open_ogr(p: Path, *, crs: str | None, id_column: str | None, layer: str | None) -> Households:
    import pyogrio

    try:
        info = pyogrio.read_info(str(p), layer=layer)
    except Exception as exc:  # pyogrio raises its own DataSourceError / DataLayerError
        raise InvalidInput(f"{p} cannot be read: {exc}", field="households") from None
    names = list(info["fields"])
    declared = pyproj.CRS.from_user_input(info["crs"]) if info.get("crs") else None
    return Households(
        path=str(p),
        kind="ogr",
        geometry="wkb",
        columns=(str(info.get("geometry_name") or "wkb_geometry"),),
        id_column=_pick_id(names, id_column, p),
        crs=_resolve_crs(declared, crs),
        num_rows=int(info["features"]),
        layer=layer,
    )


def lookup_rows(path: str | Path, crs: str | None) -> tuple[list[dict[str, str]], list[str]]:
    """A GeoParquet file as the rows of ``geogrid lookup --file``: every non-geometry column
    as text, plus ``lon``/``lat`` in WGS 84 and ``crs`` (empty for a row that has no usable
    point; its lookup then says the coordinate is missing)."""
    import pyarrow.parquet as pq

    src = Households.open(path, crs=crs)
    rows: list[dict[str, str]] = []
    for part in src.partitions(100_000):
        table = pq.ParquetFile(src.path).read_row_groups(list(part.row_groups))
        pts = src.read(part)
        keep = [c for c in table.column_names if c not in src.columns]
        data = {c: table.column(c).to_pylist() for c in keep}
        good = pts.good
        for k in range(table.num_rows):
            row = {c: "" if data[c][k] is None else str(data[c][k]) for c in keep}
            ok = bool(good[k])
            row["lon"] = repr(float(pts.x[k])) if ok else ""
            row["lat"] = repr(float(pts.y[k])) if ok else ""
            row["crs"] = "wgs84" if ok else ""
            rows.append(row)
    names = list(dict.fromkeys([*rows[0].keys()] if rows else ["lon", "lat", "crs"]))
    return rows, names

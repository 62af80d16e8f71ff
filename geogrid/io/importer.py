"""Validating and writing an import file: ``import_layer`` behind ``geogrid import``.

One call reads a file (``geogrid.io.readers``), checks every row, and — only when no problem
was found — writes the rows in the caller's transaction. The CLI rolls that transaction back
unless ``--commit``, so a dry run reports exactly what a real run would do. A refused file
raises :class:`~geogrid.errors.ImportRefused` whose ``details["problems"]`` lists every fault
found (up to :data:`~geogrid.io.readers.MAX_PROBLEMS`), each
``{"file", "feature" | "line", "field", "message"}``; nothing is written.

Columns per layer
-----------------
Column names are case-insensitive; unknown columns are ignored (and named in a warning).
Text cells are stripped; an empty cell is a missing value. CSV/Excel files give points as
``lon``/``lat`` and other geometries as WKT in ``wkt`` (see ``geogrid.io.readers``). Excel
keeps 15 significant digits, so a key typed as a number from 10^15 on (an 18-digit
``address_id``) is refused: format such columns as text.

``communities`` — Polygon/MultiPolygon, stored as MultiPolygon; upserted by ``code``; imported
    into no community (it creates them)
    ``code`` (required, unique), ``name`` (required), ``name_en``, ``subdistrict``,
    ``subdistrict_code``, ``district``, ``district_code``, ``city``, ``province``, ``note``,
    ``country``
    (ISO 3166-1 alpha-2; ``CN`` for a 12-digit code when left out), ``timezone`` (IANA; default
    ``default_timezone``). A Chinese code's head gives the subdistrict (9) and district (6)
    codes. Refused: communities overlapping by more than :data:`SLIVER_M2`, a new boundary
    leaving grids of the active plan outside.
``grids`` — Polygon/MultiPolygon, stored as MultiPolygon; makes a new **draft** boundary plan
    ``code`` (required, unique in the file; for a community with a 12-digit code: 15 digits
    starting with it; otherwise the community code and a hyphen first), ``name``,
    ``lead_member`` (or ``lead_member_id``: a member id of the community). When the community
    has no active plan yet the new plan is activated and assignment runs; otherwise it stays a
    draft. Overlaps and gaps are reported as warnings.
``households`` — Point; upserted by ``address_id``
    ``address_id`` (required, unique), ``street_name``, ``house_number``, ``compound``,
    ``building_name``, ``unit``, ``room``, ``size`` (whole number ≥ 1, default 1),
    ``registered`` (true/false, 1/0, yes/no, 是/否; default false); personal, kept apart:
    ``head_name``, ``phone``, ``care_flags`` (separated by ``;`` ``|`` ``,`` ``，`` ``；`` ``、``).
    ``street_name`` and ``building_name`` + ``compound`` link the household to a known street
    and building when the names match.
``buildings`` — Polygon/MultiPolygon (courtyards, OSM multipolygons), stored as MultiPolygon;
    upserted by ``name`` + ``compound``
    ``name`` (required), ``compound``, ``aliases`` (separated by ``;``, ``；`` or ``|``),
    ``house_number``, ``floors`` (whole number ≥ 1), ``street_name`` (links a known street).
``streets`` — LineString/MultiLineString, stored as MultiLineString; upserted by ``name``
    ``name`` (required, unique), ``kind`` (路/街/巷…, at most 8 characters).
``members`` — optional Point (home or post); updated by ``id`` when given, else by ``name`` +
    ``phone``, else inserted
    ``id``, ``name`` (required), ``kind`` (required: ``resident``, ``registered_elsewhere``,
    ``duty_post``, ``new_org``, ``stationed``), ``phone``, ``home_unit`` (resident unit name;
    created when new), ``branch`` (branch name; created when new), ``active`` (default true),
    ``lead_grid`` (code of a grid of the active plan the member leads).
``fields`` — Polygon/MultiPolygon, stored as MultiPolygon; upserted by ``name`` when given
    ``member_id`` or ``member`` (the member's name, which must be unambiguous; empty: vacant),
    ``name`` (unique in the file), ``street`` (name of a known street).
``requests`` — Point; a row equal to a stored request (category, received_at, description)
    is left unchanged, so re-importing a file does not duplicate it
    ``category`` (required, a catalogue code), ``received_at`` (required), ``status``
    (default ``received``), ``description``, ``source``, ``address_id``, ``registered_at``,
    ``dispatched_at``, ``resolved_at``, ``closed_at``, ``escalated_to`` (department code),
    ``satisfaction``. Times are ISO 8601 (``2024-07-01T09:30+08:00``, ``2024-07-01 09:30``,
    ``2024/07/01 09:30``) or Excel dates; a time without zone is in the community's time zone.

Every geometry must be valid (``shapely.is_valid``; the reason and its location are quoted) and
lie inside the community boundary, with a tolerance of :data:`TOLERANCE_M` (1 m): the boundary
is buffered by 1 m expressed in degrees at the community's latitude (1 m ÷ the shorter of a
degree of longitude, 111 320 m × cos φ, and a degree of latitude, ≥ 110 574 m), so the margin is
at least 1 m in every direction. After households, fields or requests are written, assignment
(``geogrid.assign.assign_community``) runs when the community has an active plan: for a
community's first requests every status is assigned; later, closed imported requests keep no
grid (assignment re-routes only open requests).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import shapely
from shapely import affinity
from shapely.geometry import MultiPoint, MultiPolygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection

from geogrid import audit
from geogrid.access import Actor, as_actor
from geogrid.assign import assign_community
from geogrid.db import models, queries
from geogrid.db.queries import catalogue as catalogue_queries
from geogrid.db.queries import imports as import_queries
from geogrid.db.queries.imports import StoredRow
from geogrid.errors import InvalidInput
from geogrid.io.readers import ReadResult, read_layer
from geogrid.spatial import assign_points, metres_per_degree, multi, overlaps

__all__ = ["LAYERS", "TOLERANCE_M", "ImportReport", "import_layer"]

Layer = Literal[
    "communities", "grids", "households", "buildings", "streets", "members", "fields", "requests"
]
#: The layers ``geogrid import`` knows, in the order a community is usually built.
LAYERS: tuple[str, ...] = (
    "communities",
    "streets",
    "buildings",
    "members",
    "grids",
    "fields",
    "households",
    "requests",
)
#: How far (metres) a geometry may stick out of the community boundary.
TOLERANCE_M = 1.0
#: Overlaps and gaps between grids smaller than this (m²) are not reported.
SLIVER_M2 = 1.0

GeometryKind = Literal["polygon", "line", "point"]
_EXPECTED: dict[GeometryKind, tuple[tuple[str, ...], str]] = {
    "polygon": (("Polygon", "MultiPolygon"), "Polygon or MultiPolygon"),
    "line": (("LineString", "MultiLineString"), "LineString or MultiLineString"),
    "point": (("Point", "MultiPoint"), "Point"),
}
#: Floats from 10^15 on may not hold a whole number exactly (Excel keeps 15 digits).
_EXACT_DIGITS = 1e15
_TRUE = {"true", "t", "yes", "y", "1", "是", "对", "√"}
_FALSE = {"false", "f", "no", "n", "0", "否", "不是", "×"}
_LIST_SPLIT = re.compile(r"\s*[;|,\uff0c\uff1b\u3001]\s*")  # also ，；、
_ALIAS_SPLIT = re.compile(r"\s*[;|\uff1b]\s*")  # also ；


@dataclass
class ImportReport:
    """What an import did — or, rolled back as a dry run, would do."""

    layer: str
    file: str
    format: str
    #: The community imported into; None for the communities layer (it makes communities).
    community_code: str | None
    #: CRS the coordinates were read in (canonical name), None without coordinates.
    crs: str | None
    encoding: str | None
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    #: Rows created as a side effect (``resident_units``, ``branches``, ``request_events``).
    created: dict[str, int] = field(default_factory=dict)
    plan_id: int | None = None
    plan_version: int | None = None
    plan_status: str | None = None
    activated: bool = False
    #: A file spread over several communities: what each one got (inserted, updated, …).
    communities: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``AssignmentReport.to_dict()`` when assignment ran.
    assignment: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the report."""
        return asdict(self)


def import_layer(
    conn: Connection,
    *,
    layer: str,
    path: Path,
    crs: str | None = None,
    community_code: str | None = None,
    encoding: str | None = None,
    plan_name: str | None = None,
    source_layer: str | None = None,
    default_timezone: str = "Asia/Shanghai",
    actor: Actor | None = None,
) -> ImportReport:
    """Import ``path`` as ``layer`` into the community, in the caller's transaction.

    The community is ``community_code`` or the only one in the database. ``crs`` is for files
    that declare none (CSV, Excel, a Shapefile without ``.prj``); ``encoding`` overrides the
    detected text encoding. ``plan_name`` names the boundary plan a grids import creates.
    ``source_layer`` picks the GeoPackage layer or Excel sheet (default: the one named like
    ``layer``, else the only one). ``default_timezone`` is the zone of communities whose row
    names none (the communities layer; ``GEOGRID_TIMEZONE``).
    Raises :class:`~geogrid.errors.ImportRefused` listing every problem; nothing is written
    then. Roll the transaction back for a dry run. The import is one entry of the audit log
    (``actor``'s, default the local operator), with its counts.
    """
    if layer not in _PLANNERS:
        raise InvalidInput(
            f"unknown layer {layer!r}; expected one of {', '.join(LAYERS)}", field="layer"
        )
    # The communities layer makes communities: it is imported into none.
    if layer == "communities" and community_code is not None:
        raise InvalidInput(
            "the communities layer creates communities (matched on the file's code column): "
            "leave out --community",
            field="community",
        )
    # Without --community in a database of several communities, each row goes to the one it
    # lies in (or names in a community column): the file may hold a whole subdistrict.
    spread = (
        layer != "communities"
        and community_code is None
        and len(queries.list_communities(conn)) > 1
    )
    community = (
        None
        if layer == "communities" or spread
        else queries.community_row(conn, code=community_code)
    )
    read = read_layer(Path(path), crs=crs, encoding=encoding, layer=source_layer or layer)
    if spread:
        return _audited(conn, actor, _import_spread(conn, layer, read, plan_name, default_timezone))
    ctx = _Context(conn, layer, read, community, default_timezone=default_timezone)
    if community is not None:
        _check_community_column(ctx, community.code)
    report = _new_report(layer, read, community.code if community is not None else None)
    if len(read.frame) == 0:
        read.problem(None, "the file holds no rows", field="file")
    write = _PLANNERS[layer](ctx, plan_name)
    read.problems.raise_if_any(layer=layer)
    report.warnings.extend(ctx.warnings)
    unknown = [c for c in read.columns if c not in ctx.used]
    if unknown:
        report.warnings.append(f"ignored unknown columns: {', '.join(unknown)}")
    write(report)
    return _audited(conn, actor, report)


def _audited(conn: Connection, actor: Actor | None, report: ImportReport) -> ImportReport:
    """Record the import in the audit log: one entry with its counts (never its rows)."""
    audit.record(
        conn,
        actor=as_actor(actor),
        action="import",
        subject=report.layer,
        subject_id=report.community_code,
        details={
            "file": report.file,
            "rows_read": report.rows_read,
            "inserted": report.inserted,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "created": report.created,
            "plan_id": report.plan_id,
            "communities": sorted(report.communities),
        },
    )
    return report


def _new_report(layer: str, read: ReadResult, community_code: str | None) -> ImportReport:
    """An empty report of ``read`` (its rows, the reader's warnings) going into a community."""
    return ImportReport(
        layer=layer,
        file=read.file,
        format=read.format,
        community_code=community_code,
        crs=read.crs,
        encoding=read.encoding,
        rows_read=len(read.frame),
        warnings=list(read.warnings),
    )


#: Columns that may name a row's community.
_COMMUNITY_COLUMNS = ("community", "community_code")


def _check_community_column(ctx: _Context, code: str) -> None:
    """A row whose community column names another community than the one imported into."""
    column = ctx.first_column(*_COMMUNITY_COLUMNS)
    if column is None:
        return
    for i in ctx.rows:
        named = ctx.text(i, column)
        if named is not None and named != code:
            ctx.problem(
                i, f"the row names community {named}, but the file goes into {code}", column
            )


def _import_spread(
    conn: Connection, layer: str, read: ReadResult, plan_name: str | None, default_timezone: str
) -> ImportReport:
    """Import a file whose rows belong to several communities: each row goes to the community
    its geometry lies in (a point, or a polygon's or line's representative point, with the
    :data:`TOLERANCE_M` margin; on a shared edge the lowest code, as for grids), or that its
    ``community`` column names when it has no geometry. A column that disagrees with the
    geometry, a row in no community, or one without either is a problem of that row. Every
    community's rows are then checked and written as a file of their own, in one transaction."""
    whole = _Context(conn, layer, read, None, default_timezone=default_timezone)
    stored = import_queries.stored_communities(conn, columns=["code", "boundary"])
    by_code = {r["code"]: r for r in stored}
    owners = _spatial_owners(whole, stored)
    column = whole.first_column(*_COMMUNITY_COLUMNS)
    if len(read.frame) == 0:
        read.problem(None, "the file holds no rows", field="file")
    groups: dict[str, list[int]] = defaultdict(list)
    for i in whole.rows:
        named = whole.text(i, column) if column is not None else None
        owner = owners[i]
        if named is not None and named not in by_code:
            whole.problem(i, f"unknown community {named!r}", column)
            continue
        if named is not None and owner is not None and named != owner:
            whole.problem(
                i, f"the row lies in community {owner}, but names community {named}", column
            )
            continue
        code = owner or named
        if code is None:
            if i in read.bad_geometry:
                continue  # its geometry's problem is already recorded
            has_geometry = read.geometry_usable and read.frame.geometry.iloc[i] is not None
            whole.problem(
                i,
                "outside every community"
                if has_geometry
                else "no community: give coordinates, a community column or --community",
                "geometry" if has_geometry else (column or "community"),
            )
            continue
        groups[code].append(i)
    if layer == "households" and whole.has("address_id"):
        # Address ids are unique in the whole database, not per community.
        whole.duplicates(
            [whole.text(i, "address_id") for i in whole.rows], "address_id", "address_id"
        )
    parts = []
    for code in sorted(groups):
        row = queries.community_row(conn, code=code)
        ctx = _Context(
            conn, layer, read.subset(groups[code]), row, default_timezone=default_timezone
        )
        ctx.used.update(_COMMUNITY_COLUMNS)
        parts.append((code, ctx, _PLANNERS[layer](ctx, plan_name)))
    read.problems.raise_if_any(layer=layer)
    report = _new_report(layer, read, None)
    used = set().union(*(ctx.used for _, ctx, _ in parts)) if parts else set()
    unknown = [c for c in read.columns if c not in used | whole.used]
    if unknown:
        report.warnings.append(f"ignored unknown columns: {', '.join(unknown)}")
    for code, ctx, write in parts:
        part = _new_report(layer, ctx.read, code)
        part.warnings = list(ctx.warnings)
        write(part)
        report.inserted += part.inserted
        report.updated += part.updated
        report.unchanged += part.unchanged
        for name, n in part.created.items():
            report.created[name] = report.created.get(name, 0) + n
        report.warnings.extend(f"{code}: {w}" for w in part.warnings)
        report.communities[code] = {
            k: v
            for k, v in part.to_dict().items()
            if k not in ("layer", "file", "format", "crs", "encoding", "communities", "warnings")
        }
    return report


def _spatial_owners(ctx: _Context, stored: list[StoredRow]) -> list[str | None]:
    """The code of the community each row's geometry lies in (None: none, or no geometry).

    The communities' boundaries, each buffered by the tolerance at its own latitude, go through
    :func:`geogrid.spatial.assign_points` (the edge rule: on a shared edge the lowest code)."""
    read = ctx.read
    owners: list[str | None] = [None] * len(read.frame)
    if not read.geometry_usable or not stored or not len(read.frame):
        return owners
    geoms = np.asarray(read.frame.geometry.values, dtype=object)
    present = np.flatnonzero([g is not None and not g.is_empty for g in geoms])
    if not len(present):
        return owners
    points = shapely.point_on_surface(geoms[present])
    areas = []
    for r in stored:
        areas.append(
            r["boundary"].buffer(TOLERANCE_M / min(metres_per_degree(r["boundary"].centroid.y)))
        )
    hit = assign_points(points, areas, key=[r["code"] for r in stored])
    for row, k in zip(present.tolist(), hit.tolist(), strict=True):
        if k >= 0:
            owners[row] = stored[k]["code"]
    return owners


# --- context: typed access to cells, with problems recorded --------------------------------


class _Context:
    """One import in progress: the file read, the community, and cell accessors."""

    def __init__(
        self,
        conn: Connection,
        layer: str,
        read: ReadResult,
        community: Any,
        *,
        default_timezone: str = "Asia/Shanghai",
    ) -> None:
        self.conn = conn
        self.layer = layer
        self.read = read
        #: None for the communities layer: no boundary to stay inside.
        self.community = community
        self.frame = read.frame
        #: Columns as Python lists, made on first use: ``frame[column].iloc[row]`` costs
        #: ~10 µs a cell, which was most of a 500,000-household import (benchmarks.imports).
        self._cells: dict[str, list[Any]] = {}
        self._geoms: list[Any] | None = None
        self._geom_valid: list[bool] = []
        self._source_valid: list[bool] = []
        self._names = set(read.frame.columns)
        #: Column length limits by model attribute (SQLAlchemy's attribute proxies cost
        #: ~5 µs a lookup, paid per cell before).
        self._lengths: dict[int, int | None] = {}
        self.default_timezone = default_timezone
        zone = community.timezone if community is not None else None
        self.tz = ZoneInfo(zone or default_timezone)
        self.used: set[str] = set()
        self.missing: set[str] = set()
        self.warnings: list[str] = []
        self.boundary: BaseGeometry = (
            queries.community_boundary(conn, community_id=community.id)
            if community is not None
            else shapely.Point()
        )
        if community is None and read.geometry_usable and read.frame.geometry.notna().any():
            _, south, _, north = read.frame.geometry.total_bounds  # the file's own latitude
            lat = (south + north) / 2
        else:
            lat = self.boundary.centroid.y if not self.boundary.is_empty else 0.0
        # Local metres per degree (equirectangular, good to < 1 % over a community).
        self.mx, self.my = metres_per_degree(lat)
        self.tolerance_deg = TOLERANCE_M / min(self.mx, self.my)
        self.area: BaseGeometry | None = (
            self.boundary.buffer(self.tolerance_deg) if community is not None else None
        )
        if self.area is not None:
            shapely.prepare(self.area)

    @property
    def rows(self) -> range:
        return range(len(self.frame))

    @property
    def tabular(self) -> bool:
        return self.read.locator == "line"

    @property
    def has_coordinates(self) -> bool:
        """Whether rows can carry a geometry (always for vector files)."""
        return not self.tabular or bool(self.read.coordinate_columns)

    def require_coordinates(self, column: str = "lon") -> None:
        """A header problem when a CSV/Excel file has no coordinate column (``lon`` or ``wkt``).

        Points may come as lon/lat or WKT; other geometries only as WKT (``column="wkt"``).
        """
        columns = self.read.coordinate_columns
        if self.tabular and not (column in columns or (column == "lon" and "wkt" in columns)):
            self.require(column)

    def problem(self, row: int | None, message: str, field: str | None = None) -> None:
        self.read.problem(row, message, field=field)

    def has(self, column: str) -> bool:
        self.used.add(column)
        return column in self._names

    def first_column(self, *names: str) -> str | None:
        """The first of ``names`` present in the file (all count as used)."""
        found = [n for n in names if self.has(n)]
        return found[0] if found else None

    def require(self, column: str) -> bool:
        """Whether ``column`` is present; a problem on the header when it is not."""
        if self.has(column):
            return True
        if column not in self.missing:
            self.missing.add(column)
            present = ", ".join(self.read.columns) or "none"
            self.read.problems.add(
                f"missing required column {column!r} (columns: {present})",
                field=column,
                at=1 if self.tabular else None,
            )
        return False

    def raw(self, row: int, column: str) -> Any:
        if not self.has(column):
            return None
        return _none(self._column(column)[row])

    def _column(self, column: str) -> list[Any]:
        """A present column's cells as a list (made once)."""
        cells = self._cells.get(column)
        if cells is None:
            # object dtype keeps numpy scalars as ``.iloc`` gives them (np.int64 is no int).
            cells = self._cells[column] = list(self.frame[column].to_numpy(dtype=object))
        return cells

    def text(
        self, row: int, column: str, *, required: bool = False, limit: Any = None
    ) -> str | None:
        """A cell as stripped text; ``limit`` is a model column whose length caps it."""
        if required and not self.require(column):
            return None
        raw = self.raw(row, column)
        if isinstance(raw, float) and abs(raw) >= _EXACT_DIGITS:
            # Excel keeps 15 significant digits: an 18-digit id typed as a number is already
            # rounded in the file, and a silently wrong key is worse than a refusal.
            self.problem(
                row,
                f"{column} is stored as a number ({raw:.0f}), which keeps only 15 digits: "
                "format the column as text",
                column,
            )
            return None
        value = _text(raw)
        if value is None:
            if required:
                self.problem(row, f"{column} is required", column)
            return None
        length = self._length(limit)
        if length is not None and len(value) > length:
            self.problem(row, f"{column} is longer than {length} characters", column)
            return None
        return value

    def texts(self, column: str, *, required: bool = False, limit: Any = None) -> list[str | None]:
        """:meth:`text` of every row of ``column``, problems recorded alike.

        Why: the households layer reads six text columns of up to 500,000 rows; a method call
        per cell was a third of its checks (benchmarks.imports). Plain strings within the
        limit take a short path; any other cell goes through :meth:`text`.
        """
        if not self.has(column):
            if required:
                self.require(column)  # one problem, on the header
            return [None] * len(self.frame)
        cells = self._column(column)
        length = self._length(limit)
        out: list[str | None] = []
        for row, raw in enumerate(cells):
            if type(raw) is str:
                value = raw.strip()
                if value and (length is None or len(value) <= length):
                    out.append(value)
                    continue
            elif raw is None and not required:
                out.append(None)
                continue
            out.append(self.text(row, column, required=required, limit=limit))
        return out

    def _length(self, limit: Any) -> int | None:
        """The length limit of model column ``limit`` (None: no limit)."""
        if limit is None:
            return None
        length = self._lengths.get(id(limit), -1)
        if length == -1:
            length = self._lengths[id(limit)] = getattr(
                getattr(limit, "type", None), "length", None
            )
        return length

    def integer(self, row: int, column: str, *, minimum: int | None = None) -> int | None:
        value = self.raw(row, column)
        if value is None:
            return None
        number = _integer(value)
        if number is None or (minimum is not None and number < minimum):
            at_least = f" ≥ {minimum}" if minimum is not None else ""
            self.problem(row, f"{column} must be a whole number{at_least}, got {value!r}", column)
            return None
        return number

    def boolean(self, row: int, column: str) -> bool | None:
        value = self.raw(row, column)
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        key = str(_text(value)).lower()
        if key in _TRUE:
            return True
        if key in _FALSE:
            return False
        self.problem(
            row, f"{column} must be true or false (1/0, yes/no, 是/否), got {value!r}", column
        )
        return None

    def timestamp(self, row: int, column: str, *, required: bool = False) -> dt.datetime | None:
        if required and not self.require(column):
            return None
        value = self.raw(row, column)
        if value is None:
            if required:
                self.problem(row, f"{column} is required", column)
            return None
        parsed = _timestamp(value, self.tz)
        if parsed is None:
            self.problem(row, f"{column} must be a date and time (ISO 8601), got {value!r}", column)
        return parsed

    def geometry(
        self, row: int, kind: GeometryKind, *, required: bool = True
    ) -> BaseGeometry | None:
        """The row's geometry checked and in its stored form, or None (problem recorded)."""
        read = self.read
        if not read.geometry_usable or row in read.bad_geometry:
            return None
        if self._geoms is None:
            self._validity()
        assert self._geoms is not None
        geom = self._geoms[row]
        if geom is None:
            if required:
                self.problem(row, "missing geometry", "geometry")
            return None
        accepted, label = _EXPECTED[kind]
        if geom.geom_type not in accepted:
            self.problem(row, f"wrong geometry type {geom.geom_type}: expected {label}", "geometry")
            return None
        if geom.is_empty:
            self.problem(row, "empty geometry", "geometry")
            return None
        stored = _stored_form(geom, kind)
        if stored is None:
            self.problem(
                row,
                f"wrong geometry type: {len(geom.geoms)}-part {geom.geom_type}, expected {label}",
                "geometry",
            )
            return None
        source = read.source_geometry[row]
        if source is not None and not self._source_valid[row]:
            self.problem(row, f"invalid geometry: {shapely.is_valid_reason(source)}", "geometry")
            return None
        if not (self._geom_valid[row] if stored is geom else shapely.is_valid(stored)):
            reason = shapely.is_valid_reason(stored)
            self.problem(row, f"invalid geometry after conversion to WGS 84: {reason}", "geometry")
            return None
        if self.area is not None and not self.area.covers(stored):
            self.problem(row, self._outside(stored), "geometry")
            return None
        return stored

    def _validity(self) -> None:
        """The rows' geometries, and whether each is valid, checked in one vectorised call
        each (one ``shapely.is_valid`` call per row cost ~10 µs: ~10 s for 500,000 rows)."""
        self._geoms = list(self.frame.geometry.to_numpy())
        self._geom_valid = shapely.is_valid(np.asarray(self._geoms, dtype=object)).tolist()
        sources = np.asarray(self.read.source_geometry, dtype=object)
        self._source_valid = shapely.is_valid(sources).tolist()

    def _outside(self, geom: BaseGeometry) -> str:
        """How far ``geom`` reaches out of the community, in metres."""
        far = self.reach_outside(geom, self.boundary)
        c = self.community
        return (
            f"outside the boundary of community {c.code} ({c.name}) by {far:.0f} m "
            f"(tolerance {TOLERANCE_M:g} m)"
        )

    def reach_outside(self, geom: BaseGeometry, boundary: BaseGeometry) -> float:
        """How far (m) ``geom`` reaches out of ``boundary``: its farthest vertex outside."""
        outside = geom.difference(boundary)
        points = np.asarray(
            shapely.points(shapely.get_coordinates(outside if not outside.is_empty else geom))
        )
        return max(self.metres(boundary, p) for p in points)

    def metres(self, a: BaseGeometry, b: BaseGeometry) -> float:
        """Distance between two lon/lat geometries in metres (local equirectangular)."""
        at = None if self.community is not None else a.union(b)
        return float(self.local(a, at=at).distance(self.local(b, at=at)))

    def local(self, geom: BaseGeometry, *, at: BaseGeometry | None = None) -> BaseGeometry:
        """``geom`` scaled to local metres (areas and distances at community scale). Without a
        community (the communities layer, whose file may span the globe) the scale is taken
        at the latitude of ``at`` (default ``geom``) instead of the community's."""
        mx = self.mx
        if self.community is None and not geom.is_empty:
            mx, _ = metres_per_degree((at if at is not None else geom).centroid.y)
        return affinity.scale(geom, xfact=mx, yfact=self.my, origin=(0, 0))

    def duplicates(self, keys: Sequence[Any], field: str, what: str) -> None:
        """A problem for every row repeating an earlier row's key (None keys ignored)."""
        first: dict[Any, int] = {}
        for row, key in zip(self.rows, keys, strict=True):
            if key is None:
                continue
            if key in first:
                at = self.read.locations[first[key]]
                self.problem(
                    row, f"duplicate {what} {_show(key)} (also at {self.read.locator} {at})", field
                )
            else:
                first[key] = row


def _none(value: Any) -> Any:
    if value is None or type(value) is str:  # the common cells first (called per cell)
        return value
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NaT:
        return None
    return value


def _text(value: Any) -> str | None:
    """A cell as text: integral floats lose their ``.0`` (Excel stores codes as numbers)."""
    if type(value) is str:  # most cells: skip the type tests below
        return value.strip() or None
    value = _none(value)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    out = str(value).strip()
    return out or None


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = str(value).strip()
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else None


def _timestamp(value: Any, tz: ZoneInfo) -> dt.datetime | None:
    """An aware UTC datetime; naive values are in ``tz``."""
    if isinstance(value, dt.datetime):
        stamp = pd.Timestamp(value)
    elif isinstance(value, dt.date):
        stamp = pd.Timestamp(dt.datetime.combine(value, dt.time()))
    elif isinstance(value, str):
        try:
            stamp = pd.Timestamp(value.strip())
        except (ValueError, OverflowError):
            return None
    else:
        return None
    if stamp is pd.NaT:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(tz)
    return stamp.tz_convert(dt.UTC).to_pydatetime()


def _show(key: Any) -> str:
    if isinstance(key, tuple):
        return " + ".join(repr(k) for k in key)
    return repr(key)


def _split(value: str | None, pattern: re.Pattern[str]) -> list[str]:
    return [] if value is None else [p for p in pattern.split(value) if p]


def _stored_form(geom: BaseGeometry, kind: GeometryKind) -> BaseGeometry | None:
    """The geometry as its column stores it; None for a multi-part where one part is needed."""
    if kind in ("polygon", "line"):
        return multi(geom)
    if isinstance(geom, MultiPolygon | MultiPoint):
        return geom.geoms[0] if len(geom.geoms) == 1 else None
    return geom


# --- writing helpers ------------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    """Whether a stored value equals a new one (geometries compared exactly)."""
    if isinstance(a, BaseGeometry) or isinstance(b, BaseGeometry):
        return (
            isinstance(a, BaseGeometry)
            and isinstance(b, BaseGeometry)
            and a.geom_type == b.geom_type
            and bool(shapely.equals_exact(a, b, tolerance=1e-10))
        )
    return bool(a == b)


@dataclass
class _Upsert:
    """Rows to insert and to update (by id), and how many are unchanged."""

    inserts: list[dict[str, Any]] = field(default_factory=list)
    insert_rows: list[int] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    update_rows: list[int] = field(default_factory=list)
    unchanged: int = 0

    def add(self, row: int, values: dict[str, Any], old: dict[str, Any] | None) -> None:
        """Plan ``values`` for file row ``row``: an insert, an update of ``old``, or nothing."""
        if old is None:
            self.inserts.append(values)
            self.insert_rows.append(row)
        elif all(_same(old.get(k), v) for k, v in values.items() if k in old):
            self.unchanged += 1
        else:
            self.updates.append({"id": old["id"], **values})
            self.update_rows.append(row)

    def write(
        self, conn: Connection, model: Any, report: ImportReport, *, need_ids: bool = True
    ) -> list[int]:
        """Insert and update; return the new ids (in insert order), or none unless
        ``need_ids`` — then the inserts are bulk-loaded (``COPY`` on PostGIS)."""
        if need_ids:
            ids = queries.insert_returning_ids(
                conn, model, queries.bind_geometries(model, self.inserts)
            )
        else:
            queries.bulk_load(conn, model, self.inserts)
            ids = []
        updates = queries.bind_geometries(model, self.updates)
        import_queries.update_rows(conn, model=model, rows=updates)
        report.inserted, report.updated, report.unchanged = (
            len(self.inserts),
            len(self.updates),
            self.unchanged,
        )
        return ids


def _geom_values(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with shapely geometries as bind values."""
    return {
        k: queries.geom_value(v) if isinstance(v, BaseGeometry) else v for k, v in values.items()
    }


def _assign(ctx: _Context, report: ImportReport, *, all_requests: bool = False) -> None:
    """Run assignment when the community has an active plan; warn otherwise."""
    plan = queries.active_plan(ctx.conn, community_id=ctx.community.id)
    if plan is None:
        report.warnings.append(
            "the community has no active boundary plan: nothing assigned "
            "(import grids with --commit first)"
        )
        return
    result = assign_community(ctx.conn, community_id=ctx.community.id, all_requests=all_requests)
    report.assignment = result.to_dict()


Writer = Callable[[ImportReport], None]


# --- communities ----------------------------------------------------------------------------

#: A Chinese community code: 6-digit county (GB/T 2260) + 3-digit subdistrict + 3-digit community.
CHINESE_COMMUNITY_CODE = re.compile(r"\d{12}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_COMMUNITY_TEXT = (
    "name_en",
    "subdistrict",
    "subdistrict_code",
    "district",
    "district_code",
    "city",
    "province",
    "note",
)


def _plan_communities(ctx: _Context, plan_name: str | None) -> Writer:
    """Communities by ``code``: a re-import updates. Refused: overlaps between communities
    (> :data:`SLIVER_M2`), and a new boundary that would leave grids of an active plan out."""
    c = models.Community
    ctx.require_coordinates("wkt")
    has_code, has_name = ctx.require("code"), ctx.require("name")
    columns = ["code", "name", *_COMMUNITY_TEXT, "country", "timezone", "boundary"]
    stored = {r["code"]: r for r in import_queries.stored_communities(ctx.conn, columns=columns)}
    plan = _Upsert()
    codes: list[str | None] = []
    shapes: list[tuple[int, str, BaseGeometry]] = []
    for i in ctx.rows:
        code = ctx.text(i, "code", required=True, limit=c.code) if has_code else None
        codes.append(code)
        values: dict[str, Any] = {
            "code": code,
            "name": ctx.text(i, "name", required=True, limit=c.name) if has_name else None,
        }
        for column in _COMMUNITY_TEXT:
            if ctx.has(column):
                values[column] = ctx.text(i, column, limit=getattr(c, column))
        chinese = code is not None and CHINESE_COMMUNITY_CODE.fullmatch(code) is not None
        country = (ctx.text(i, "country") or "").upper() or None
        if country is None and code is not None:
            old_country = stored.get(code, {}).get("country")
            country = old_country or ("CN" if chinese else None)
            if country is None:
                ctx.problem(
                    i,
                    f"country is required for code {code!r}, which is not a 12-digit Chinese "
                    "community code (ISO 3166-1 alpha-2, e.g. FI)",
                    "country",
                )
        if country is not None and not _COUNTRY.fullmatch(country):
            ctx.problem(i, f"country must be two letters (ISO 3166-1), got {country!r}", "country")
        values["country"] = country
        if code is not None and country == "CN":
            _check_chinese_codes(ctx, i, code, values)
        zone = ctx.text(i, "timezone", limit=c.timezone)
        if zone is None:
            zone = stored.get(code or "", {}).get("timezone") or ctx.default_timezone
        try:
            ZoneInfo(zone)
        except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
            ctx.problem(i, f"unknown time zone {zone!r} (an IANA name: Asia/Shanghai)", "timezone")
        values["timezone"] = zone
        geom = ctx.geometry(i, "polygon")
        values["boundary"] = geom
        if code is not None and geom is not None:
            shapes.append((i, code, geom))
        old = stored.get(code) if code is not None else None
        if old is None:  # every insert names every column (one executemany)
            values = {**dict.fromkeys(_COMMUNITY_TEXT), **values}
        plan.add(i, values, old)
    ctx.duplicates(codes, "code", "community code")
    if not ctx.read.problems:
        _community_overlaps(ctx, shapes, stored)
        _grids_left_outside(ctx, shapes, stored)
    return _plain_writer(ctx, c, plan)


def _check_chinese_codes(ctx: _Context, row: int, code: str, values: dict[str, Any]) -> None:
    """A Chinese community's code is 12 digits whose head is its subdistrict's (9) and its
    county's (6) code; those are derived when the file leaves them out."""
    if not CHINESE_COMMUNITY_CODE.fullmatch(code):
        ctx.problem(
            row,
            f"a Chinese community code is 12 digits (6 county + 3 subdistrict + 3 community, "
            f"GB/T 2260), got {code!r}",
            "code",
        )
        return
    for column, width in (("subdistrict_code", 9), ("district_code", 6)):
        given = values.get(column)
        if given is None:
            values[column] = code[:width]
        elif given != code[:width]:
            ctx.problem(
                row,
                f"{column} {given!r} is not the head of community code {code!r} "
                f"(expected {code[:width]!r})",
                column,
            )


def _community_overlaps(
    ctx: _Context, shapes: list[tuple[int, str, BaseGeometry]], stored: dict[str, StoredRow]
) -> None:
    """A problem for every pair of communities (in the file, or one stored and not in the file)
    that overlap by more than :data:`SLIVER_M2`, naming both codes, the size and where
    (``geogrid.spatial.overlaps``, which ``geogrid check`` uses too)."""
    in_file = {code for _, code, _ in shapes}
    others = [
        (None, code, r["boundary"])
        for code, r in stored.items()
        if code not in in_file and r.get("boundary") is not None
    ]
    every: list[tuple[int | None, str, BaseGeometry]] = [*shapes, *others]
    found = overlaps([g for _, _, g in every], min_area_m2=SLIVER_M2, first=len(shapes))
    for a, b, area, where in found:
        row, code = every[a][0], every[a][1]
        other = every[b][1] + ("" if every[b][0] is not None else " (stored)")
        ctx.problem(
            row,
            f"community {code} overlaps community {other} by {area:,.0f} m² "
            f"around {where.x:.6f}, {where.y:.6f}",
            "geometry",
        )


def _grids_left_outside(
    ctx: _Context, shapes: list[tuple[int, str, BaseGeometry]], stored: dict[str, StoredRow]
) -> None:
    """A re-imported boundary must still hold the grids of the community's active plan."""
    again = {stored[code]["id"]: (row, code, geom) for row, code, geom in shapes if code in stored}
    if not again:
        return
    for grid in import_queries.active_grids(ctx.conn, community_ids=list(again)):
        row, code, geom = again[grid.community_id]
        if geom.buffer(ctx.tolerance_deg).covers(grid.geom):
            continue
        far = ctx.reach_outside(grid.geom, geom)
        ctx.problem(
            row,
            f"the new boundary of community {code} would leave grid {grid.code} of its active "
            f"plan v{grid.plan_version} outside, by up to {far:,.0f} m (redraw the grids first)",
            "geometry",
        )


# --- grids ----------------------------------------------------------------------------------


def _plan_grids(ctx: _Context, plan_name: str | None) -> Writer:
    c = models.Grid
    ctx.require_coordinates("wkt")
    chinese = bool(re.fullmatch(r"\d{12}", ctx.community.code))
    lead_col = ctx.first_column("lead_member", "lead_member_id")
    ctx.has("households")  # informational (geogrid plan propose writes it): no warning
    members = import_queries.member_ids(ctx.conn, community_id=ctx.community.id)
    has_code = ctx.require("code")
    rows: list[dict[str, Any]] = []
    codes: list[str | None] = []
    for i in ctx.rows:
        code = ctx.text(i, "code", required=True, limit=c.code) if has_code else None
        if (
            code is not None
            and chinese
            and not (re.fullmatch(r"\d{15}", code) and code.startswith(ctx.community.code))
        ):
            ctx.problem(
                i,
                f"grid code must be 15 digits starting with the community code "
                f"{ctx.community.code} (+ a 3-digit sequence), got {code!r}",
                "code",
            )
        elif code is not None and not chinese and not code.startswith(f"{ctx.community.code}-"):
            # Grid codes are unique in the whole database: outside China the community's code
            # and a hyphen make them so (docs/api.md, "Codes").
            ctx.problem(
                i,
                f"grid code must start with the community code and a hyphen "
                f"({ctx.community.code}-…), got {code!r}",
                "code",
            )
        codes.append(code)
        lead = ctx.integer(i, lead_col, minimum=1) if lead_col else None
        if lead is not None and lead not in members:
            ctx.problem(i, f"unknown member id {lead} (not a member of this community)", lead_col)
        geom = ctx.geometry(i, "polygon")
        rows.append(
            {
                "code": code,
                "name": ctx.text(i, "name", limit=c.name),
                "lead_member_id": lead,
                "geom": geom,
            }
        )
    ctx.duplicates(codes, "code", "grid code")
    if not ctx.read.problems:
        ctx.warnings.extend(_tiling_warnings(ctx, rows))

    def write(report: ImportReport) -> None:
        conn, cid = ctx.conn, ctx.community.id
        before = queries.active_plan(conn, community_id=cid)
        name = plan_name or f"import of {ctx.read.file}"
        plan_id = queries.create_plan(
            conn,
            community_id=cid,
            name=name,
            source=f"geogrid import grids {ctx.read.file} (CRS {ctx.read.crs})",
        )
        queries.bulk_insert(
            conn, models.Grid, [_geom_values({"plan_id": plan_id, **r}) for r in rows]
        )
        report.inserted = len(rows)
        report.plan_id = plan_id
        report.plan_version = queries.plan_row(conn, plan_id=plan_id).version
        if before is None:
            queries.mark_plan_active(conn, community_id=cid, plan_id=plan_id)
            report.activated = True
            report.plan_status = models.PlanStatus.ACTIVE.value
            # The community's first plan: requests of every status get their grid.
            result = assign_community(conn, community_id=cid, plan_id=plan_id, all_requests=True)
            report.assignment = result.to_dict()
        else:
            report.plan_status = models.PlanStatus.DRAFT.value
            report.warnings.append(
                f"plan v{report.plan_version} is a draft; the active plan v{before.version} "
                "is unchanged (review the draft, then activate it)"
            )

    return write


def _tiling_warnings(ctx: _Context, rows: list[dict[str, Any]]) -> list[str]:
    """Overlaps between grids and gaps in the community's cover (grids should tile it)."""
    geoms = [r["geom"] for r in rows]
    codes = [r["code"] for r in rows]
    out: list[str] = []
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    for a, b in zip(left, right, strict=True):
        if a >= b:
            continue
        area = ctx.local(geoms[a].intersection(geoms[b])).area
        if area > SLIVER_M2:
            out.append(f"grids {codes[a]} and {codes[b]} overlap by {area:,.0f} m²")
    if len(out) > 10:
        out = [*out[:10], f"… and {len(out) - 10} more overlaps"]
    gap = ctx.local(ctx.boundary.difference(shapely.union_all(geoms))).area
    total = ctx.local(ctx.boundary).area
    if gap > SLIVER_M2 and total > 0:
        out.append(f"the grids leave {gap:,.0f} m² ({gap / total:.1%}) of the community uncovered")
    return out


# --- streets and buildings -----------------------------------------------------------------


@dataclass
class _Stored:
    """Stored rows by natural key; keys held by several rows are ``ambiguous``."""

    rows: dict[Any, dict[str, Any]]
    ambiguous: dict[Any, int]

    @classmethod
    def of(cls, rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any]) -> _Stored:
        groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            groups[key(r)].append(r)
        return cls(
            rows={k: g[0] for k, g in groups.items() if len(g) == 1},
            ambiguous={k: len(g) for k, g in groups.items() if len(g) > 1},
        )

    def match(
        self, ctx: _Context, row: int, key: Any, what: str, field: str
    ) -> dict[str, Any] | None:
        """The stored row with ``key``; a problem when several have it (an update would guess)."""
        if key in self.ambiguous:
            ctx.problem(
                row,
                f"{self.ambiguous[key]} stored {what}s have {_show(key)}: cannot tell which "
                "to update",
                field,
            )
            return None
        return self.rows.get(key)


def _plan_streets(ctx: _Context, plan_name: str | None) -> Writer:
    c, cid = models.Street, ctx.community.id
    ctx.require_coordinates("wkt")
    has_name = ctx.require("name")
    stored = _Stored.of(
        import_queries.stored_rows(
            ctx.conn, model=c, columns=["name", "kind", "geom"], community_id=cid
        ),
        lambda r: r["name"],
    )
    plan = _Upsert()
    names: list[str | None] = []
    for i in ctx.rows:
        name = ctx.text(i, "name", required=True, limit=c.name) if has_name else None
        names.append(name)
        values: dict[str, Any] = {"community_id": cid, "name": name}
        if ctx.has("kind"):
            values["kind"] = ctx.text(i, "kind", limit=c.kind)
        values["geom"] = ctx.geometry(i, "line")
        old = stored.match(ctx, i, name, "street", "name") if name is not None else None
        plan.add(i, values, old)
    ctx.duplicates(names, "name", "street name")
    return _plain_writer(ctx, c, plan)


def _plan_buildings(ctx: _Context, plan_name: str | None) -> Writer:
    c, cid = models.Building, ctx.community.id
    ctx.require_coordinates("wkt")
    has_name = ctx.require("name")
    columns = [
        *("name", "compound", "aliases", "house_number", "floors", "street_id", "street_name"),
        "geom",
    ]
    stored = _Stored.of(
        import_queries.stored_rows(ctx.conn, model=c, columns=columns, community_id=cid),
        lambda r: (r["name"], r["compound"]),
    )
    streets = import_queries.ids_by_name(ctx.conn, model=models.Street, community_id=cid)
    plan = _Upsert()
    keys: list[tuple[str, str | None] | None] = []
    for i in ctx.rows:
        name = ctx.text(i, "name", required=True, limit=c.name) if has_name else None
        compound = ctx.text(i, "compound", limit=c.compound)
        key = (name, compound) if name is not None else None
        keys.append(key)
        values: dict[str, Any] = {"community_id": cid, "name": name, "compound": compound}
        if ctx.has("aliases"):
            values["aliases"] = _split(ctx.text(i, "aliases"), _ALIAS_SPLIT)
        if ctx.has("house_number"):
            values["house_number"] = ctx.text(i, "house_number", limit=c.house_number)
        if ctx.has("floors"):
            values["floors"] = ctx.integer(i, "floors", minimum=1)
        if ctx.has("street_name"):
            street_name = ctx.text(i, "street_name", limit=c.street_name)
            values["street_name"] = street_name
            values["street_id"] = _unique(streets, street_name)
        values["geom"] = ctx.geometry(i, "polygon")
        old = stored.match(ctx, i, key, "building", "name") if key is not None else None
        plan.add(i, values, old)
    ctx.duplicates(keys, "name", "building name + compound")
    return _plain_writer(ctx, c, plan)


def _unique(ids_by_name: dict[str, list[int]], name: str | None) -> int | None:
    """The id of the one row so named, else None (a link by name is only made when certain)."""
    ids = ids_by_name.get(name or "", [])
    return ids[0] if len(ids) == 1 else None


def _plain_writer(ctx: _Context, model: Any, plan: _Upsert) -> Writer:
    """A writer that only upserts (streets, buildings)."""

    def write(report: ImportReport) -> None:
        plan.write(ctx.conn, model, report)

    return write


# --- households -----------------------------------------------------------------------------

_HOUSEHOLD_TEXT = ("street_name", "house_number", "compound", "building_name", "unit", "room")
_PERSONAL = ("head_name", "phone", "care_flags")


def _plan_households(ctx: _Context, plan_name: str | None) -> Writer:
    c, cid = models.Household, ctx.community.id
    ctx.require_coordinates()
    has_key = ctx.require("address_id")
    present = [col for col in _HOUSEHOLD_TEXT if ctx.has(col)]
    columns = [
        "address_id",
        "community_id",
        *present,
        "size",
        "registered",
        "street_id",
        "building_id",
        "geom",
    ]
    ids: list[str | None] = (
        ctx.texts("address_id", required=True, limit=c.address_id)
        if has_key
        else [None] * len(ctx.rows)
    )
    wanted = [a for a in ids if a is not None]
    existing = {
        r["address_id"]: r
        for r in import_queries.stored_households(ctx.conn, address_ids=wanted, columns=columns)
    }
    streets = import_queries.ids_by_name(ctx.conn, model=models.Street, community_id=cid)
    buildings = import_queries.building_ids_by_key(ctx.conn, community_id=cid)
    personal = [col for col in _PERSONAL if ctx.has(col)]
    texts = {col: ctx.texts(col, limit=getattr(c, col)) for col in present}
    plan = _Upsert()
    people: dict[int, dict[str, Any]] = {}
    for i, address_id in zip(ctx.rows, ids, strict=True):
        old = existing.get(address_id) if address_id is not None else None
        if old is not None and old["community_id"] != cid:
            ctx.problem(i, f"address_id {address_id!r} belongs to another community", "address_id")
            old = None
        values: dict[str, Any] = {"community_id": cid, "address_id": address_id}
        for col in present:
            values[col] = texts[col][i]
        if ctx.has("size") or old is None:
            values["size"] = ctx.integer(i, "size", minimum=1) or 1
        if ctx.has("registered") or old is None:
            values["registered"] = bool(ctx.boolean(i, "registered"))
        if "street_name" in present:
            values["street_id"] = _unique(streets, values["street_name"])
        if "building_name" in present:
            key = (values["building_name"], values.get("compound", old and old.get("compound")))
            found = buildings.get(key, [])
            values["building_id"] = found[0] if len(found) == 1 else None
        values["geom"] = ctx.geometry(i, "point")
        if personal:
            person: dict[str, Any] = {}
            if "head_name" in personal:
                person["head_name"] = ctx.text(
                    i, "head_name", limit=models.HouseholdPersonal.head_name
                )
            if "phone" in personal:
                person["phone"] = ctx.text(i, "phone", limit=models.HouseholdPersonal.phone)
            if "care_flags" in personal:
                person["care_flags"] = _split(ctx.text(i, "care_flags"), _LIST_SPLIT)
            people[i] = person
        plan.add(i, values, old)
    ctx.duplicates(ids, "address_id", "address_id")

    def write(report: ImportReport) -> None:
        # Households are looked up by address_id afterwards: no ids back, so a bulk load.
        plan.write(ctx.conn, c, report, need_ids=False)
        if personal:
            _write_personal(ctx, ids, people, report)
        _assign(ctx, report)

    return write


def _write_personal(
    ctx: _Context,
    address_ids: list[str | None],
    people: dict[int, dict[str, Any]],
    report: ImportReport,
) -> None:
    """Upsert ``household_personal`` for the file's households (only the columns given)."""
    conn, p = ctx.conn, models.HouseholdPersonal
    wanted = [a for a in address_ids if a is not None]
    hid = import_queries.household_ids(conn, address_ids=wanted)
    have = import_queries.households_with_personal(conn, household_ids=list(hid.values()))
    inserts, updates = [], []
    for row, values in people.items():
        household = hid[address_ids[row]]  # type: ignore[index]
        if household in have:
            updates.append({"household_id": household, **values})
        elif any(values.values()):  # no empty rows for households without personal data
            inserts.append({"household_id": household, **values})
    queries.bulk_insert(conn, p, inserts)
    import_queries.update_rows(conn, model=p, rows=updates, key="household_id")
    report.created["household_personal"] = len(inserts)


# --- members --------------------------------------------------------------------------------

_MEMBER_KINDS = tuple(k.value for k in models.MemberKind)


@dataclass(frozen=True)
class _NewRef:
    """A resident unit or branch to be created: replaced by its id when written."""

    model: Any
    name: str


def _plan_members(ctx: _Context, plan_name: str | None) -> Writer:
    c, cid = models.Member, ctx.community.id
    has_name = ctx.require("name")
    has_kind = ctx.require("kind")
    columns = ["name", "phone", "kind", "home_unit_id", "branch_id", "active", "position"]
    stored_rows = import_queries.stored_rows(ctx.conn, model=c, columns=columns, community_id=cid)
    by_id = {r["id"]: r for r in stored_rows}
    stored = _Stored.of(stored_rows, lambda r: (r["name"], r["phone"]))
    known = {
        model: {
            n: ids[0]
            for n, ids in import_queries.ids_by_name(
                ctx.conn, model=model, community_id=cid
            ).items()
        }
        for model in (models.ResidentUnit, models.Branch)
    }
    new: dict[_NewRef, None] = {}

    def ref(model: Any, name: str | None) -> int | _NewRef | None:
        if name is None:
            return None
        if name in known[model]:
            return known[model][name]
        new[_NewRef(model, name)] = None
        return _NewRef(model, name)

    has_position = ctx.has_coordinates
    plan = _Upsert()
    keys: list[Any] = []
    leads: dict[int, str] = {}
    matched: dict[int, int] = {}
    active = queries.active_plan(ctx.conn, community_id=cid)
    grid_codes = import_queries.grid_codes(ctx.conn, plan_id=active.id) if active else set()
    for i in ctx.rows:
        lead = ctx.text(i, "lead_grid")
        if lead is not None:
            if lead in grid_codes:
                leads[i] = lead
            else:
                plan_text = f"plan v{active.version}" if active else "plan (there is none)"
                ctx.problem(i, f"unknown grid {lead!r} in the active {plan_text}", "lead_grid")
        member_id = ctx.integer(i, "id", minimum=1) if ctx.has("id") else None
        name = ctx.text(i, "name", required=True, limit=c.name) if has_name else None
        phone = ctx.text(i, "phone", limit=c.phone)
        old: dict[str, Any] | None = None
        if member_id is not None:
            old = by_id.get(member_id)
            if old is None:
                ctx.problem(i, f"unknown member id {member_id} in this community", "id")
            keys.append(("id", member_id))
        elif name is not None:
            old = stored.match(ctx, i, (name, phone), "member", "name")
            keys.append((name, phone))
        else:
            keys.append(None)
        kind = ctx.text(i, "kind", required=True) if has_kind else None
        if kind is not None and kind.lower() not in _MEMBER_KINDS:
            ctx.problem(
                i,
                f"unknown member kind {kind!r}; expected one of {', '.join(_MEMBER_KINDS)}",
                "kind",
            )
        values: dict[str, Any] = {"community_id": cid, "name": name, "phone": phone}
        values["kind"] = kind.lower() if kind else None
        if ctx.has("home_unit"):
            values["home_unit_id"] = ref(
                models.ResidentUnit, ctx.text(i, "home_unit", limit=models.ResidentUnit.name)
            )
        if ctx.has("branch"):
            values["branch_id"] = ref(
                models.Branch, ctx.text(i, "branch", limit=models.Branch.name)
            )
        is_active = ctx.boolean(i, "active")
        if ctx.has("active") or old is None:
            values["active"] = True if is_active is None else is_active
        geom = ctx.geometry(i, "point", required=False)
        if has_position:
            values["position"] = geom
        if old is not None:
            matched[i] = old["id"]
        plan.add(i, values, old)
    ctx.duplicates(keys, "name", "member")
    ctx.duplicates([leads.get(i) for i in ctx.rows], "lead_grid", "lead of grid")
    if new:
        ctx.warnings.append(
            "will create: " + ", ".join(f"{r.model.__tablename__} {r.name!r}" for r in new)
        )

    def write(report: ImportReport) -> None:
        made: dict[_NewRef, int] = {}
        for model in (models.ResidentUnit, models.Branch):
            wanted = [r for r in new if r.model is model]
            ids = queries.insert_returning_ids(
                ctx.conn, model, [{"community_id": cid, "name": r.name} for r in wanted]
            )
            made.update(zip(wanted, ids, strict=True))
            report.created[model.__tablename__] = len(ids)
        for values in (*plan.inserts, *plan.updates):
            for k, v in values.items():
                if isinstance(v, _NewRef):
                    values[k] = made[v]
        new_ids = plan.write(ctx.conn, c, report)
        # Stored members (updated or unchanged) keep their id; inserted ones get a new one.
        member_of = {**matched, **dict(zip(plan.insert_rows, new_ids, strict=True))}
        for row, code in leads.items():
            assert active is not None  # leads are only accepted with an active plan
            import_queries.set_grid_lead(
                ctx.conn, plan_id=active.id, code=code, member_id=member_of[row]
            )
        if leads:
            report.created["grid_leads"] = len(leads)

    return write


# --- responsibility fields ------------------------------------------------------------------


def _plan_fields(ctx: _Context, plan_name: str | None) -> Writer:
    c, cid = models.ResponsibilityField, ctx.community.id
    ctx.require_coordinates("wkt")
    members = import_queries.member_names(ctx.conn, community_id=cid)
    by_name: dict[str, list[int]] = defaultdict(list)
    for mid, mname in sorted(members.items()):
        by_name[mname].append(mid)
    streets = import_queries.ids_by_name(ctx.conn, model=models.Street, community_id=cid)
    id_col = ctx.first_column("member_id")
    name_col = ctx.first_column("member", "member_name")
    stored = _Stored.of(
        [
            r
            for r in import_queries.stored_rows(
                ctx.conn,
                model=c,
                columns=["name", "member_id", "street_id", "geom"],
                community_id=cid,
            )
            if r["name"] is not None
        ],
        lambda r: r["name"],
    )
    plan = _Upsert()
    names: list[str | None] = []
    for i in ctx.rows:
        name = ctx.text(i, "name", limit=c.name)
        names.append(name)
        values: dict[str, Any] = {"community_id": cid, "name": name}
        old = stored.match(ctx, i, name, "field", "name") if name is not None else None
        if id_col or name_col or old is None:
            values["member_id"] = _member_ref(ctx, i, id_col, name_col, members, by_name)
        if ctx.has("street"):
            street = ctx.text(i, "street")
            found = streets.get(street or "", [])
            if street is not None and len(found) != 1:
                what = "unknown street" if not found else f"{len(found)} streets are named"
                ctx.problem(i, f"{what} {street!r}", "street")
            values["street_id"] = found[0] if len(found) == 1 else None
        values["geom"] = ctx.geometry(i, "polygon")
        plan.add(i, values, old)
    ctx.duplicates(names, "name", "field name")

    def write(report: ImportReport) -> None:
        plan.write(ctx.conn, c, report)
        _assign(ctx, report)

    return write


def _member_ref(
    ctx: _Context,
    row: int,
    id_col: str | None,
    name_col: str | None,
    members: dict[int, str],
    by_name: dict[str, list[int]],
) -> int | None:
    """The member a row names by id or by (unambiguous) name; None for a vacancy."""
    if id_col is not None and ctx.raw(row, id_col) is not None:
        member_id = ctx.integer(row, id_col, minimum=1)
        if member_id is not None and member_id not in members:
            ctx.problem(row, f"unknown member id {member_id} in this community", id_col)
            return None
        return member_id
    name = ctx.text(row, name_col) if name_col is not None else None
    if name is None:
        return None
    found = by_name.get(name, [])
    if not found:
        ctx.problem(row, f"unknown member {name!r} in this community", name_col)
        return None
    if len(found) > 1:
        ctx.problem(row, f"{len(found)} members are named {name!r}: give member_id", name_col)
        return None
    return found[0]


# --- requests -------------------------------------------------------------------------------

_STATUSES = tuple(s.value for s in models.RequestStatus)
_LATER_TIMES = ("registered_at", "dispatched_at", "resolved_at", "closed_at")


def _plan_requests(ctx: _Context, plan_name: str | None) -> Writer:
    r, cid, conn = models.Request, ctx.community.id, ctx.conn
    categories = {row.code: row for row in catalogue_queries.categories_for_intake(conn)}
    departments = catalogue_queries.department_ids(conn)
    category_col = ctx.first_column("category", "category_code")
    if category_col is None:
        ctx.require("category")
    ctx.require("received_at")
    ctx.require_coordinates()
    stored = import_queries.request_keys(conn, community_id=cid)
    first_load = not stored
    rows: list[dict[str, Any]] = []
    skipped = 0
    for i in ctx.rows:
        category = None
        code = ctx.text(i, category_col, required=True) if category_col else None
        if code is not None:
            category = categories.get(code)
            if category is None:
                sample = ", ".join(sorted(categories)[:8]) or "none: load the catalogue"
                ctx.problem(i, f"unknown category {code!r} (known: {sample}…)", category_col)
        received = ctx.timestamp(i, "received_at", required=ctx.has("received_at"))
        status = (ctx.text(i, "status") or models.RequestStatus.RECEIVED.value).lower()
        if status not in _STATUSES:
            ctx.problem(
                i, f"unknown status {status!r}; expected one of {', '.join(_STATUSES)}", "status"
            )
        times = {col: ctx.timestamp(i, col) for col in _LATER_TIMES}
        for col, when in times.items():
            if when is not None and received is not None and when < received:
                ctx.problem(i, f"{col} is before received_at", col)
        escalated = ctx.text(i, "escalated_to")
        if escalated is not None and escalated not in departments:
            ctx.problem(i, f"unknown department {escalated!r}", "escalated_to")
        description = ctx.text(i, "description")
        values: dict[str, Any] = {
            "community_id": cid,
            "category_id": category.id if category else None,
            "programme": category.programme if category else None,
            "description": description,
            "source": ctx.text(i, "source", limit=r.source),
            "address_id": ctx.text(i, "address_id", limit=r.address_id),
            "status": status,
            "received_at": received,
            **times,
            "due_at": (
                times["dispatched_at"] + dt.timedelta(hours=int(category.sla_hours))
                if category and times["dispatched_at"]
                else None
            ),
            "escalated_to_id": departments.get(escalated) if escalated else None,
            "satisfaction": ctx.text(i, "satisfaction", limit=r.satisfaction),
            "version": 1,
            "updated_at": max(
                (t for t in (received, *times.values()) if t is not None), default=None
            ),
            "geom": ctx.geometry(i, "point"),
        }
        key = (values["category_id"], received, description)
        if key in stored:
            skipped += 1
            continue
        stored.add(key)
        rows.append(values)
    if skipped:
        ctx.warnings.append(f"{skipped} rows equal stored or earlier requests: left unchanged")

    def write(report: ImportReport) -> None:
        ids = queries.insert_returning_ids(conn, r, [_geom_values(v) for v in rows])
        queries.bulk_insert(
            conn,
            models.RequestEvent,
            [
                {
                    "request_id": rid,
                    "at": v["received_at"],
                    "actor": "import",
                    "from_status": None,
                    "to_status": v["status"],
                    "note": f"imported from {ctx.read.file}",
                }
                for rid, v in zip(ids, rows, strict=True)
            ],
        )
        report.inserted, report.unchanged = len(ids), skipped
        report.created["request_events"] = len(ids)
        # A community's first requests are all assigned; later closed ones keep no grid
        # (assign_community re-assigns only open requests once a community has history).
        _assign(ctx, report, all_requests=first_load)

    return write


_PLANNERS: dict[str, Callable[[_Context, str | None], Writer]] = {
    "communities": _plan_communities,
    "grids": _plan_grids,
    "households": _plan_households,
    "buildings": _plan_buildings,
    "streets": _plan_streets,
    "members": _plan_members,
    "fields": _plan_fields,
    "requests": _plan_requests,
}

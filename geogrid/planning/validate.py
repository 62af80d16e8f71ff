"""Validation of a boundary plan: the checks a plan must pass before it can be activated.

The grids of a plan must tile their community (DESIGN.md, glossary): each grid one valid
polygon with a well-formed, unique code, no overlaps, no gaps, nothing outside the community.
:func:`validate_plan` runs every check and reports every problem it finds — it never stops at
the first — with the grid codes, the feature index a planner sees in the GeoJSON file, a point
inside the problem (WGS 84) and its size, so each one can be found on a map and fixed.

The overlays (intersections, differences, unions) run on the WGS 84 coordinates themselves,
because that is where a plan's edges are straight lines (GeoJSON, RFC 7946 §3.1.1): a grid
edge with a vertex in its middle and the community edge without one coincide in lon/lat, but
not after projection, where the parallel through them curves (by ~3 cm over 2 km, ~40 m² of
false "outside" area). Only the resulting pieces are projected, to the local azimuthal
equidistant projection (:func:`.common.local_crs`), to measure their areas in m². Areas up to
``tolerance_m2`` are not reported: slivers that coordinate rounding (6 decimals of a degree
≈ 0.1 m) leaves along shared edges are not planning faults.

The geometric checks are vectorised shapely 2 operations, so a city plan of 10,000 grids
validates in about a second: GEOS's coverage validator answers "no overlaps" for a clean
tiling at once, and only a plan that fails it is checked pair by pair.

A :class:`~geogrid.budget.Budget` bounds the time: it is checked before each check and between
chunks of the pairwise work (``geogrid.budget.CHUNK`` pairs or grids a call), so a plan of
thousands of overlapping grids — 2,500 overlapping discs make 773,578 candidate pairs, 2 min
and 5 GB validated whole — stops within a fraction of a second of its deadline or of the
server's shutdown.

Example — a 2 × 1 tiling with the eastern grid pushed 0.001° too far east:

>>> from shapely.geometry import box
>>> import geopandas as gpd
>>> grids = gpd.GeoDataFrame(
...     {"code": ["441302011005001", "441302011005002"]},
...     geometry=[box(114.40, 23.10, 114.41, 23.11), box(114.41, 23.10, 114.421, 23.11)],
...     crs="EPSG:4326")
>>> report = validate_plan(grids, box(114.40, 23.10, 114.42, 23.11),
...     community_code="441302011005")
>>> report.valid, [p.check for p in report.problems]
(False, ['outside_community'])
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pyproj
import shapely
from shapely.geometry import GeometryCollection, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geogrid.budget import CHUNK, Budget
from geogrid.errors import CRSError, InvalidGeometry, InvalidInput
from geogrid.planning.common import local_crs, number_grids

__all__ = ["CHECKS", "PlanProblem", "Severity", "ValidationReport", "validate_plan"]

Severity = Literal["error", "warning"]

#: Every check, in the order problems are reported.
CHECKS: Final[tuple[str, ...]] = (
    "empty",
    "missing_code",
    "duplicate_code",
    "code_format",
    "geometry_type",
    "invalid_geometry",
    "not_contiguous",
    "outside_community",
    "overlap",
    "gap",
    "numbering",
)
#: Checks whose problems do not make a plan invalid.
WARNINGS: Final = frozenset({"numbering"})
#: Grids this close to a gap (metres) are named as its neighbours: a gap's edge and a grid's
#: edge rarely coincide exactly once coordinates were rounded.
NEIGHBOUR_DISTANCE_M: Final = 5.0
#: Problems that leave the numbering rule nothing sound to compare.
_BLOCK_NUMBERING: Final = frozenset(
    {"missing_code", "duplicate_code", "code_format", "geometry_type", "invalid_geometry"}
)
#: At most this many code changes are spelt out in the numbering warning.
_LISTED: Final = 5
#: Candidate pairs (grids whose shapes meet) per grid up to which GEOS's coverage validator is
#: tried first. A tiling has about 3 (edges of a planar map, < 3 per face) plus grids meeting
#: only at a corner; the validator is one call that cannot be interrupted, and on a plan of
#: overlapping grids it costs as much as the pairs themselves (21 s for 2,500 overlapping
#: discs, 310 pairs a grid), so beyond this the pairwise check, chunked, runs at once.
_TILING_PAIRS: Final = 8

# GEOS's validity reasons end with the location of the fault: "Self-intersection[x y]".
_REASON = re.compile(r"^(?P<reason>[^\[]*)\[(?P<x>\S+)\s+(?P<y>\S+)\]\s*$")
_POLYGON, _MULTIPOLYGON = 3, 6  # shapely.get_type_id

Array = npt.NDArray[Any]


@dataclass
class PlanProblem:
    """One problem found in a plan, located so a planner can find it on a map."""

    check: str
    severity: Severity
    #: One English line naming the grid code(s), the location and the size.
    message: str
    #: Codes of the grids involved (empty for a gap next to no grid, or grids without codes).
    codes: list[str] = field(default_factory=list)
    #: 0-based row of the first grid involved: the feature index in the GeoJSON file.
    feature: int | None = None
    #: A point inside the problem, WGS 84.
    lon: float | None = None
    lat: float | None = None
    #: Size of the problem (m² for areas), None where no size applies.
    size: float | None = None
    unit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The problem as plain JSON-ready values."""
        return {
            "check": self.check,
            "severity": self.severity,
            "message": self.message,
            "codes": list(self.codes),
            "feature": None if self.feature is None else int(self.feature),
            "lon": None if self.lon is None else float(self.lon),
            "lat": None if self.lat is None else float(self.lat),
            "size": None if self.size is None else float(self.size),
            "unit": self.unit,
        }


@dataclass
class ValidationReport:
    """Everything :func:`validate_plan` found; ``valid`` when no problem is an error."""

    valid: bool
    grids: int
    tolerance_m2: float
    #: Errors first, then warnings; within a severity in :data:`CHECKS` order, then larger first.
    problems: list[PlanProblem]
    #: Code → the code the numbering rule would give it; only codes that differ.
    renumbering: dict[str, str] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        """Number of problems that make the plan invalid."""
        return sum(p.severity == "error" for p in self.problems)

    @property
    def warnings(self) -> int:
        """Number of problems that do not."""
        return sum(p.severity == "warning" for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready values."""
        return {
            "valid": bool(self.valid),
            "grids": int(self.grids),
            "tolerance_m2": float(self.tolerance_m2),
            "errors": self.errors,
            "warnings": self.warnings,
            "problems": [p.to_dict() for p in self.problems],
            "renumbering": dict(self.renumbering),
        }


def validate_plan(
    grids: gpd.GeoDataFrame,
    community: BaseGeometry | None,
    *,
    community_code: str | None = None,
    tolerance_m2: float = 1.0,
    budget: Budget | None = None,
) -> ValidationReport:
    """Check a plan's ``grids`` (WGS 84, a ``code`` column) against its ``community`` boundary.

    Every check of :data:`CHECKS` runs; broken grids (no geometry, wrong type, invalid) are
    reported and left out of the later geometric checks, and with no ``community`` the
    outside and gap checks are skipped. With a ``community_code`` of 12 digits every grid
    code must be 15 digits starting with it (Beijing DB11 practice); with any
    ``community_code`` a plan whose codes are all well-formed is compared with the numbering
    rule (:func:`.common.number_grids`), and codes that differ give one warning. Areas up to
    ``tolerance_m2`` are ignored. ``budget`` (default: none) is checked between the checks
    and their chunks: it raises :class:`~geogrid.errors.TooComplex` when its time is up and
    :class:`~geogrid.errors.ShuttingDown` when its stop event is set.
    """
    if not math.isfinite(tolerance_m2) or tolerance_m2 < 0:
        raise InvalidInput(
            f"tolerance must be a non-negative area in m², got {tolerance_m2!r}",
            field="tolerance_m2",
        )
    frame = _wgs84(grids)
    checker = _Checker(
        frame, _community(community), community_code, float(tolerance_m2), budget or Budget(None)
    )
    checker.run()
    problems = sorted(checker.problems, key=_order)
    return ValidationReport(
        valid=not any(p.severity == "error" for p in problems),
        grids=len(frame),
        tolerance_m2=float(tolerance_m2),
        problems=problems,
        renumbering=checker.renumbering,
    )


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def _wgs84(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``grids`` in WGS 84; no CRS is taken as WGS 84 when the coordinates can be lon/lat."""
    if grids.crs is None:
        x0, y0, x1, y1 = shapely.total_bounds(np.asarray(grids.geometry.values))
        if all(map(math.isfinite, (x0, y0, x1, y1))) and not (
            -180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90
        ):
            raise CRSError(
                "grids have no CRS and their coordinates are not longitude/latitude",
                field="grids",
            )
        return grids.set_crs("EPSG:4326")
    if grids.crs.to_epsg() != 4326:
        return grids.to_crs("EPSG:4326")
    return grids


def _community(community: BaseGeometry | None) -> BaseGeometry | None:
    """The community boundary as a valid (Multi)Polygon, or None."""
    if community is None:
        return None
    if not isinstance(community, Polygon | MultiPolygon) or community.is_empty:
        raise InvalidGeometry(
            f"the community boundary must be a Polygon or MultiPolygon, got {community.geom_type}",
            field="community",
        )
    if not community.is_valid:
        # A boundary is reference data, not the plan under review: repair it and go on.
        return _polygonal(shapely.make_valid(community))
    return community


def _code_text(value: object) -> str:
    """A code cell as text; missing values (None, NaN, NA) as ``""``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = str(value)
    return "" if text in ("<NA>", "nan", "None") else text


def _polygonal(geom: BaseGeometry | None) -> BaseGeometry | None:
    """The polygonal part of ``geom`` (e.g. of ``make_valid``'s collection), None if none."""
    if geom is None or geom.is_empty:
        return None
    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, Polygon | MultiPolygon)]
    if isinstance(geom, GeometryCollection) and parts:
        return shapely.union_all(parts)
    return None


def _fmt_area(area: float) -> str:
    return f"{area:,.0f} m²" if area >= 10 else f"{area:,.1f} m²"


def _order(problem: PlanProblem) -> tuple[int, int, float, int]:
    """Sort key: errors first, then by check, larger first, then by feature."""
    return (
        problem.severity != "error",
        CHECKS.index(problem.check),
        -problem.size if problem.size is not None else math.inf,
        problem.feature if problem.feature is not None else 1 << 62,
    )


def _largest_polygon(geom: BaseGeometry) -> BaseGeometry:
    """The largest polygon of ``geom``: where to put the problem's point."""
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, Polygon)]
    if not parts:
        return geom
    return max(parts, key=lambda p: p.area)


# --------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------


class _Checker:
    """State shared by the checks of one plan: codes, geometries, masks, the local CRS."""

    def __init__(
        self,
        frame: gpd.GeoDataFrame,
        community: BaseGeometry | None,
        community_code: str | None,
        tolerance: float,
        budget: Budget,
    ) -> None:
        self.n = len(frame)
        self.budget = budget
        self.community = community
        self.community_code = community_code.strip() if community_code else None
        self.tolerance = tolerance
        self.problems: list[PlanProblem] = []
        self.renumbering: dict[str, str] = {}
        raw = frame["code"].tolist() if "code" in frame.columns else [None] * self.n
        self.codes = [_code_text(v) for v in raw]
        self.code_count: dict[str, int] = {}
        for code in self.codes:
            self.code_count[code] = self.code_count.get(code, 0) + 1
        self.geoms: Array = np.asarray(frame.geometry.values, dtype=object)
        self.type_id: Array = shapely.get_type_id(self.geoms)
        #: Polygonal and non-empty.
        self.shaped: Array = np.isin(self.type_id, (_POLYGON, _MULTIPOLYGON)) & ~shapely.is_empty(
            self.geoms
        )
        self.valid: Array = np.zeros(self.n, dtype=bool)
        self.valid[self.shaped] = shapely.is_valid(self.geoms[self.shaped])
        #: Usable in the geometric checks: polygonal, non-empty and valid.
        self.good: Array = self.shaped & self.valid
        self.reps: Array = np.full(self.n, None, dtype=object)
        self.reps[self.good] = shapely.point_on_surface(self.geoms[self.good])
        self.to_local: pyproj.Transformer | None = None
        #: NEIGHBOUR_DISTANCE_M in degrees, the longer (east–west) way: at least that far.
        self.near_deg = 0.0
        box = [shapely.total_bounds(self.geoms[self.shaped])] if self.shaped.any() else []
        if community is not None:
            box.append(np.asarray(community.bounds))
        bounds = np.vstack(box) if box else np.empty((0, 4))
        bounds = bounds[np.isfinite(bounds).all(axis=1)]
        if len(bounds):
            x0, y0 = bounds[:, 0].min(), bounds[:, 1].min()
            x1, y1 = bounds[:, 2].max(), bounds[:, 3].max()
            crs = local_crs([x0, y0, x1, y1])
            self.to_local = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
            widest = min(math.cos(math.radians(max(abs(y0), abs(y1)))), 1.0)
            self.near_deg = NEIGHBOUR_DISTANCE_M / (111_320.0 * max(widest, 0.01))

    # -- helpers ------------------------------------------------------------------------------

    def area_m2(self, geoms: Array | BaseGeometry) -> Array:
        """Areas (m²) of WGS 84 geometries, measured in the local projection."""
        transformer = self.to_local
        if transformer is None:
            return np.asarray(shapely.area(geoms), dtype=float) * 0.0

        def project(coords: Array) -> Array:
            x, y = transformer.transform(coords[:, 0], coords[:, 1])
            return np.column_stack([x, y])

        return np.asarray(shapely.area(shapely.transform(geoms, project)), dtype=float)

    def label(self, row: int) -> str:
        """How a message names a grid: its code, with the feature when the code is ambiguous."""
        code = self.codes[row]
        if not code.strip():
            return f"feature {row} (no code)"
        if self.code_count[code] > 1:
            return f"{code} (feature {row})"
        return code

    def anchor(self, row: int) -> tuple[float, float] | None:
        """A point of grid ``row``: inside it when it is usable, else its first vertex."""
        if self.good[row]:
            return _lonlat(self.reps[row])
        geom = self.geoms[row]
        if geom is None or geom.is_empty:
            return None
        x, y = shapely.get_coordinates(geom)[0]
        return (float(x), float(y)) if math.isfinite(x) and math.isfinite(y) else None

    def add(
        self,
        check: str,
        text: str,
        rows: Sequence[int],
        where: tuple[float, float] | None,
        size: float | None = None,
    ) -> None:
        """Record a problem; ``text`` is completed with the location."""
        rows = sorted({int(r) for r in rows})
        codes = list(dict.fromkeys(self.codes[r] for r in rows if self.codes[r].strip()))
        if where is not None:
            text = f"{text} near {where[0]:.6f}, {where[1]:.6f}"
        self.problems.append(
            PlanProblem(
                check=check,
                severity="warning" if check in WARNINGS else "error",
                message=text,
                codes=codes,
                feature=rows[0] if rows else None,
                lon=None if where is None else round(where[0], 6),
                lat=None if where is None else round(where[1], 6),
                size=None if size is None else float(size),
                unit=None if size is None else "m²",
            )
        )

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> None:
        if self.n == 0:
            self.add("empty", "the plan has no grids", [], None)
            return
        check = self.budget.check
        check("the code checks")
        self.check_codes()
        check("the geometry checks")
        self.check_geometry()
        check("the contiguity check")
        self.check_contiguity()
        check("the outside check")
        self.check_outside()
        check("the overlap check")
        union = self.check_overlaps()
        check("the gap check")
        self.check_gaps(union)
        check("the numbering check")
        self.check_numbering()

    def check_codes(self) -> None:
        """Missing, duplicate and (for 12-digit community codes) malformed codes."""
        pattern = None
        if self.community_code and re.fullmatch(r"\d{12}", self.community_code):
            # DB11: 6 district + 3 subdistrict + 3 community + 3 sequence digits.
            pattern = re.compile(re.escape(self.community_code) + r"\d{3}")
        seen: dict[str, list[int]] = {}
        for row, code in enumerate(self.codes):
            if not code.strip():
                self.add(
                    "missing_code", f"grid at feature {row} has no code", [row], self.anchor(row)
                )
                continue
            seen.setdefault(code, []).append(row)
            if pattern is not None and not pattern.fullmatch(code):
                self.add(
                    "code_format",
                    f"grid code {code!r} (feature {row}) is not 15 digits starting with the "
                    f"community code {self.community_code}",
                    [row],
                    self.anchor(row),
                )
        for code, rows in seen.items():
            if len(rows) > 1:
                features = ", ".join(map(str, rows))
                self.add(
                    "duplicate_code",
                    f"code {code} is used by {len(rows)} grids (features {features})",
                    rows,
                    self.anchor(rows[0]),
                )

    def check_geometry(self) -> None:
        """Geometry type (non-empty (Multi)Polygon) and validity with GEOS's reason."""
        for row in map(int, np.flatnonzero(~self.shaped)):
            geom = self.geoms[row]
            if geom is None:
                what = "has no geometry"
            elif geom.is_empty:
                what = "has an empty geometry"
            else:
                what = f"is a {geom.geom_type}, not a Polygon or MultiPolygon"
            self.add("geometry_type", f"grid {self.label(row)} {what}", [row], self.anchor(row))
        invalid = [int(r) for r in np.flatnonzero(self.shaped & ~self.valid)]
        for row, reason in zip(invalid, shapely.is_valid_reason(self.geoms[invalid]), strict=True):
            # GEOS names the fault and where it is: "Self-intersection[114.40 23.14]".
            where: tuple[float, float] | None = None
            text = str(reason)
            m = _REASON.match(text)
            if m:
                text = m["reason"].strip()
                try:
                    x, y = float(m["x"]), float(m["y"])
                except ValueError:
                    pass
                else:
                    where = (x, y) if math.isfinite(x) and math.isfinite(y) else None
            self.add(
                "invalid_geometry",
                f"grid {self.label(row)} is not a valid polygon ({text})",
                [row],
                where or self.anchor(row),
            )

    def check_contiguity(self) -> None:
        """A grid must be one piece: a MultiPolygon with two or more parts above tolerance."""
        rows = np.flatnonzero(self.good & (self.type_id == _MULTIPOLYGON))
        if not len(rows):
            return
        parts, owner = shapely.get_parts(self.geoms[rows], return_index=True)
        areas = self.area_m2(parts)
        for k, row in enumerate(rows):
            mine = np.flatnonzero((owner == k) & (areas > self.tolerance))
            if len(mine) < 2:
                continue
            mine = mine[np.argsort(-areas[mine], kind="stable")]
            smaller = mine[1:]
            size = float(areas[smaller].sum())
            self.add(
                "not_contiguous",
                f"grid {self.label(int(row))} is in {len(mine)} separate parts; the "
                f"{len(smaller)} smaller cover{'s' if len(smaller) == 1 else ''} "
                f"{_fmt_area(size)}",
                [int(row)],
                _lonlat(shapely.point_on_surface(parts[smaller[0]])),
                size,
            )

    def check_outside(self) -> None:
        """Area of each grid outside the community, counted in pieces above tolerance."""
        community = self.community
        if community is None:
            return
        shapely.prepare(community)
        rows = np.flatnonzero(self.good)
        # Most grids lie well inside: a prepared covers test spares their overlay.
        rows = rows[~shapely.covers(community, self.geoms[rows])]
        if not len(rows):
            return
        outside = np.empty(len(rows), dtype=object)
        for start in range(0, len(rows), CHUNK):
            self.budget.check("the outside check")
            outside[start : start + CHUNK] = shapely.difference(
                self.geoms[rows[start : start + CHUNK]], community
            )
        parts, owner = shapely.get_parts(outside, return_index=True)
        areas = self.area_m2(parts)
        for k, row in enumerate(rows):
            mine = np.flatnonzero((owner == k) & (areas > self.tolerance))
            if not len(mine):
                continue
            size = float(areas[mine].sum())
            largest = mine[int(np.argmax(areas[mine]))]
            self.add(
                "outside_community",
                f"grid {self.label(int(row))} extends {_fmt_area(size)} outside the community",
                [int(row)],
                _lonlat(shapely.point_on_surface(parts[largest])),
                size,
            )

    def check_overlaps(self) -> BaseGeometry | None:
        """Overlaps between pairs of grids; returns the union of the usable grids."""
        rows = np.flatnonzero(self.good)
        if not len(rows):
            return None
        geoms = self.geoms[rows]
        # Candidate pairs from the tree, a chunk of grids at a time.
        tree = shapely.STRtree(geoms)
        found: list[tuple[Array, Array]] = []
        for start in range(0, len(geoms), CHUNK):
            self.budget.check("the overlap check")
            a, b = tree.query(geoms[start : start + CHUNK], predicate="intersects")
            a += start
            keep = a < b
            found.append((a[keep], b[keep]))
        a = np.concatenate([f[0] for f in found])
        b = np.concatenate([f[1] for f in found])
        # A valid coverage (GEOS CoverageValidator: edges matched exactly, interiors
        # disjoint) has no overlaps at all and can be unioned by matching edges, ~20× faster
        # than an overlay union (shapely docs: coverage_is_valid, coverage_union_all).
        if len(a) <= _TILING_PAIRS * len(geoms):
            self.budget.check("the overlap check")
            if bool(shapely.coverage_is_valid(geoms)):
                return shapely.coverage_union_all(geoms)
        # The overlay only on the candidate pairs, vectorised a chunk at a time.
        for start in range(0, len(a), CHUNK):
            self.budget.check("the overlap check")
            ca, cb = a[start : start + CHUNK], b[start : start + CHUNK]
            shared = shapely.intersection(geoms[ca], geoms[cb])
            # Most candidate pairs merely touch (a line or a point): nothing to measure.
            pieces = np.flatnonzero(shapely.area(shared) > 0)
            areas = self.area_m2(shared[pieces])
            for k, size in zip(pieces, areas, strict=True):
                if size <= self.tolerance:
                    continue
                i, j = int(rows[ca[k]]), int(rows[cb[k]])
                self.add(
                    "overlap",
                    f"grids {self.label(i)} and {self.label(j)} overlap by {_fmt_area(size)}",
                    [i, j],
                    _lonlat(shapely.point_on_surface(_largest_polygon(shared[k]))),
                    float(size),
                )
        self.budget.check("the overlap check")
        return shapely.union_all(geoms)

    def check_gaps(self, union: BaseGeometry | None) -> None:
        """Pieces of the community no grid covers, each above tolerance, with neighbours."""
        community = self.community
        if community is None:
            return
        # An invalid grid still holds its ground: count its repaired shape as covered, so the
        # one fault is not reported twice (as invalid, and as a gap where it lies).
        rows = [int(r) for r in np.flatnonzero(self.good)]
        shapes = list(self.geoms[rows])
        cover = [] if union is None else [union]
        for row in map(int, np.flatnonzero(self.shaped & ~self.valid)):
            fixed = _polygonal(shapely.make_valid(self.geoms[row]))
            if fixed is not None:
                rows.append(row)
                shapes.append(fixed)
                cover.append(fixed)
        left = shapely.difference(community, shapely.union_all(cover)) if cover else community
        parts = shapely.get_parts(left)
        parts = parts[shapely.get_type_id(parts) == _POLYGON]
        areas = self.area_m2(parts)
        big = np.flatnonzero(areas > self.tolerance)
        if not len(big):
            return
        near: list[set[int]] = [set() for _ in big]
        if rows:
            self.budget.check("the gap check")
            # Neighbours: grids touching the gap or within a few metres of it.
            piece_idx, grid_idx = shapely.STRtree(np.asarray(shapes, dtype=object)).query(
                parts[big], predicate="dwithin", distance=self.near_deg
            )
            for p, g in zip(piece_idx, grid_idx, strict=True):
                near[p].add(rows[g])
        for k, piece in enumerate(big):
            size = float(areas[piece])
            grids = sorted(near[k])
            names = [self.label(r) for r in grids]
            if not names:
                next_to = "next to no grid"
            elif len(names) == 1:
                next_to = f"next to grid {names[0]}"
            else:
                next_to = f"between grids {', '.join(names[:-1])} and {names[-1]}"
            self.add(
                "gap",
                f"gap of {_fmt_area(size)} {next_to}",
                grids,
                _lonlat(shapely.point_on_surface(parts[piece])),
                size,
            )

    def check_numbering(self) -> None:
        """Warn when well-formed codes differ from the west→east, north→south numbering."""
        if not self.community_code:
            return
        # Numbering needs every grid's code and shape; those faults are reported already.
        if any(p.check in _BLOCK_NUMBERING for p in self.problems):
            return
        try:
            expected = number_grids(
                gpd.GeoDataFrame(geometry=self.geoms, crs="EPSG:4326"), self.community_code
            )
        except InvalidInput:
            return  # more grids than a 3-digit sequence holds
        rows = [r for r in range(self.n) if self.codes[r] != expected[r]]
        if not rows:
            return
        self.renumbering = {self.codes[r]: expected[r] for r in rows}
        listed = ", ".join(f"{self.codes[r]} → {expected[r]}" for r in rows[:_LISTED])
        more = f" and {len(rows) - _LISTED} more" if len(rows) > _LISTED else ""
        are = "grid is" if len(rows) == 1 else "grids are"
        self.add(
            "numbering",
            f"{len(rows)} {are} not numbered west→east, north→south: {listed}{more}",
            rows,
            self.anchor(rows[0]),
        )


def _lonlat(point: BaseGeometry | None) -> tuple[float, float] | None:
    """A WGS 84 point as (lon, lat)."""
    if point is None or point.is_empty:
        return None
    return float(shapely.get_x(point)), float(shapely.get_y(point))

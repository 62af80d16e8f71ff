"""The data-quality report (``geogrid check``): what is wrong with a community's data.

Read-only. :func:`check_data` reads the communities, grids, fields, buildings and households
through ``geogrid.db.queries.quality`` and does the spatial work in shapely (STRtree bulk
queries and vectorised predicates, no loop over households), so it is the same on PostGIS
and SpatiaLite and fit for a district (200 communities, 500,000 households).

Each :class:`Finding` is one check for one community: a stable ``check`` code, a severity, a
count, the first :data:`MAX_IDS` ids (address ids, building ids, grid codes, field ids, member
ids, community codes: never names or phones) and a message. Errors are data the service
cannot work with (a household no community holds, overlapping communities); warnings are gaps
to fill before the data serves requests well. :data:`CHECKS` lists every code.

Addresses
---------
A building's address is its street (by link) and house number; a household's is its
``street_name`` and ``house_number``. The buildings of a compound share its gate's number
(金源路88号, as in the demo), so ``compound`` and the building's name (a household's
``building_name``) complete an address: two buildings are duplicates only when all four agree.
Texts are compared after NFKC (full/half width), trimming and case folding.

Distances
---------
In metres in a local equirectangular frame at the community's latitude (the centroid of its
boundary), as the importer measures (``geogrid.spatial.metres_per_degree``): within 0.5 % of
the geodesic distance over a community (latitude's metres per degree are the equator's lower
bound, 0.2 % short at 23° N).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection

from geogrid.db import queries
from geogrid.db.queries import quality as rows
from geogrid.errors import NotFound
from geogrid.spatial import metres_per_degree, overlaps

__all__ = [
    "CHECKS",
    "FAR_FROM_BUILDING_M",
    "MAX_IDS",
    "SLIVER_M2",
    "TOLERANCE_M",
    "Finding",
    "QualityReport",
    "check_data",
    "subdistrict_community_codes",
]

Severity = Literal["error", "warning"]

#: How far (metres) a household or building may lie outside every community: the importer's
#: tolerance (``geogrid.io.importer.TOLERANCE_M``, kept equal by a test).
TOLERANCE_M = 1.0
#: Communities overlapping by more than this (m²) are an error, as the communities import
#: refuses them (``geogrid.io.importer.SLIVER_M2``, kept equal by a test).
SLIVER_M2 = 1.0
#: A household whose address finds a building farther than this (metres) from its door.
FAR_FROM_BUILDING_M = 50.0
#: How many ids a finding lists (the count says how many there are).
MAX_IDS = 10


class Check(NamedTuple):
    """A check: its severity and what it counts (``one``/``many``, then ``what``)."""

    severity: Severity
    one: str
    many: str
    what: str

    @property
    def description(self) -> str:
        return f"{self.many} {self.what}"


#: Every check by code. The codes are stable (scripts test them); errors first.
CHECKS: dict[str, Check] = {
    "households_outside_communities": Check(
        "error",
        "household",
        "households",
        f"outside every community boundary (tolerance {TOLERANCE_M:g} m)",
    ),
    "buildings_outside_communities": Check(
        "error",
        "building",
        "buildings",
        f"outside every community boundary (representative point, tolerance {TOLERANCE_M:g} m)",
    ),
    "communities_overlap": Check(
        "error", "community", "communities", f"overlapping by more than {SLIVER_M2:g} m²"
    ),
    "households_outside_grids": Check(
        "warning", "household", "households", "outside every grid of the active plan"
    ),
    "households_outside_fields": Check(
        "warning", "household", "households", "outside every responsibility field"
    ),
    "buildings_without_address": Check(
        "warning", "building", "buildings", "without an address (street and house number)"
    ),
    "duplicate_building_addresses": Check(
        "warning",
        "building",
        "buildings",
        "sharing an address (street, house number, compound, building name) with another",
    ),
    "duplicate_household_addresses": Check(
        "warning",
        "household",
        "households",
        "sharing an address with a household in another building",
    ),
    "households_far_from_building": Check(
        "warning",
        "household",
        "households",
        f"whose address finds buildings only more than {FAR_FROM_BUILDING_M:g} m from the door",
    ),
    "grids_without_lead": Check("warning", "grid", "grids", "of the active plan without a lead"),
    "fields_without_holder": Check(
        "warning", "field", "fields", "without a holder (no member: vacant)"
    ),
    "members_without_branch": Check("warning", "member", "members", "(active) without a branch"),
    "community_without_active_plan": Check(
        "warning", "community", "communities", "without an active boundary plan"
    ),
}
# Duplicate address ids are not checked: households.address_id is UNIQUE in the schema
# (uq_households_address_id, migration 0001, on both backends), so the database cannot hold
# two households with one address id; a check could never find anything.


@dataclass(frozen=True)
class Finding:
    """One check's result for one community: how many, the first ids, and what it means."""

    community: str
    check: str
    count: int
    ids: list[int | str]
    message: str

    @property
    def severity(self) -> Severity:
        return CHECKS[self.check].severity

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": self.severity,
            "count": self.count,
            "ids": self.ids,
            "message": self.message,
        }


@dataclass
class QualityReport:
    """The findings of a check, per community (``communities``: the codes checked)."""

    communities: list[str]
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``geogrid check --json`` (docs/api.md, "Data-quality report")."""
        by_community: dict[str, list[Finding]] = defaultdict(list)
        for f in self.findings:
            by_community[f.community].append(f)
        order = {code: i for i, code in enumerate(CHECKS)}
        communities = []
        for code in self.communities:
            found = sorted(
                by_community[code], key=lambda f: (f.severity != "error", order[f.check])
            )
            communities.append(
                {
                    "code": code,
                    "errors": sum(f.severity == "error" for f in found),
                    "warnings": sum(f.severity == "warning" for f in found),
                    "findings": [f.to_dict() for f in found],
                }
            )
        return {
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "communities": communities,
        }


def subdistrict_community_codes(conn: Connection, *, subdistrict_code: str) -> list[str]:
    """The codes of the communities of a subdistrict (``subdistrict_code``), by code."""
    codes = [c.code for c in queries.community_listing(conn, subdistrict_code=subdistrict_code)]
    if not codes:
        raise NotFound(f"no community in subdistrict {subdistrict_code!r}", field="subdistrict")
    return codes


def check_data(
    conn: Connection,
    *,
    community_codes: Sequence[str] | None = None,
    community_ids: Sequence[int] | None = None,
) -> QualityReport:
    """Check the data of the given communities (by code or id; neither: every community).

    An import's dry run can pass the one community id it wrote to: then only that
    community's households, buildings, grids and fields are read (all boundaries are, for
    "outside every community" and the overlaps; a few hundred polygons).
    """
    shapes = rows.community_shapes(conn)
    selected = _select(shapes, community_codes, community_ids)
    report = QualityReport(communities=[s.code for s in selected])
    if not selected:
        return report
    whole = community_codes is None and community_ids is None
    ids: list[int] | None = None if whole else [s.id for s in selected]
    code_of = {s.id: s.code for s in shapes}
    add = report.findings.extend

    households = _household_frame(rows.household_addresses(conn, community_ids=ids))
    buildings = _building_frame(rows.building_addresses(conn, community_ids=ids))
    plans = {p.community_id: p.plan_id for p in rows.active_plans(conn, community_ids=ids)}
    grids = rows.grid_shapes(conn, plan_ids=list(plans.values())) if plans else []
    fields = rows.field_shapes(conn, community_ids=ids)
    doors = shapely.points(households["lon"].to_numpy(), households["lat"].to_numpy())

    # Errors.
    inside = _within_communities(shapes, doors)
    add(_findings(code_of, "households_outside_communities", households[~inside], "address_id"))
    inside = _within_communities(shapes, shapely.point_on_surface(buildings["geometry"].to_numpy()))
    add(_findings(code_of, "buildings_outside_communities", buildings[~inside], "id"))
    add(_overlap_findings(selected, shapes))

    # Warnings.
    planned = households["community_id"].isin(list(plans)).to_numpy()
    covered = _covered(doors, households["community_id"].to_numpy(), grids)
    add(
        _findings(code_of, "households_outside_grids", households[planned & ~covered], "address_id")
    )
    covered = _covered(doors, households["community_id"].to_numpy(), fields)
    add(_findings(code_of, "households_outside_fields", households[~covered], "address_id"))
    addressed = buildings["street"].notna() & buildings["number"].notna()
    add(_findings(code_of, "buildings_without_address", buildings[~addressed], "id"))
    key = ["community_id", "street", "number", "compound", "name"]
    dup = buildings[addressed & buildings.duplicated(key, keep=False)]
    add(_findings(code_of, "duplicate_building_addresses", dup, "id"))
    add(_findings(code_of, "duplicate_household_addresses", _shared(households), "address_id"))
    scale = {s.id: _scale(s.boundary)[0] for s in selected}
    far = _far_from_building(households, buildings, scale)
    add(_findings(code_of, "households_far_from_building", far, "address_id", _farthest))
    grid_frame = pd.DataFrame(grids, columns=list(rows.GridShape._fields))
    leadless = grid_frame[grid_frame["lead_member_id"].isna()]
    add(_findings(code_of, "grids_without_lead", leadless, "code"))
    field_frame = pd.DataFrame(fields, columns=list(rows.FieldShape._fields))
    vacant = field_frame[field_frame["member_id"].isna()]
    add(_findings(code_of, "fields_without_holder", vacant, "id"))
    members = pd.DataFrame(
        rows.members_without_branch(conn, community_ids=ids), columns=["id", "community_id"]
    )
    add(_findings(code_of, "members_without_branch", members, "id"))
    planless = pd.DataFrame({"community_id": [s.id for s in selected if s.id not in plans]})
    planless["code"] = planless["community_id"].map(code_of)
    add(_findings(code_of, "community_without_active_plan", planless, "code"))
    return report


# --- selection and frames -------------------------------------------------------------------


def _select(
    shapes: list[rows.CommunityShape],
    codes: Sequence[str] | None,
    ids: Sequence[int] | None,
) -> list[rows.CommunityShape]:
    """The communities asked for (every one when neither codes nor ids are given)."""
    if codes is None and ids is None:
        return shapes
    by_code = {s.code: s for s in shapes}
    by_id = {s.id: s for s in shapes}
    unknown = [repr(c) for c in codes or () if c not in by_code]
    unknown += [str(i) for i in ids or () if i not in by_id]
    if unknown:
        raise NotFound(f"no community {', '.join(unknown)}", field="community")
    wanted = {by_code[c].id for c in codes or ()} | set(ids or ())
    return [s for s in shapes if s.id in wanted]


def _norm(values: pd.Series) -> pd.Series:
    """Address texts compared as NFKC (full/half width), trimmed and case-folded; "" is None."""
    text = values.astype("string").str.normalize("NFKC").str.strip().str.casefold()
    return text.mask(text == "")


def _household_frame(data: list[rows.HouseholdAddress]) -> pd.DataFrame:
    frame = pd.DataFrame(data, columns=list(rows.HouseholdAddress._fields))
    frame["street"] = _norm(frame["street_name"])
    frame["number"] = _norm(frame["house_number"])
    frame["compound"] = _norm(frame["compound"])
    frame["name"] = _norm(frame["building_name"])
    frame["lon"] = frame["lon"].astype(float)
    frame["lat"] = frame["lat"].astype(float)
    return frame


def _building_frame(data: list[rows.BuildingAddress]) -> pd.DataFrame:
    frame = pd.DataFrame(data, columns=list(rows.BuildingAddress._fields))
    frame["street"] = _norm(frame["street_name"])
    frame["number"] = _norm(frame["house_number"])
    frame["compound"] = _norm(frame["compound"])
    frame["name"] = _norm(frame["name"])
    frame = frame.rename(columns={"geom": "geometry"})
    frame["geometry"] = frame["geometry"].astype(object)
    return frame


# --- checks ---------------------------------------------------------------------------------


def _within_communities(
    shapes: list[rows.CommunityShape], points: npt.NDArray[Any]
) -> npt.NDArray[np.bool_]:
    """Whether each point lies in some community boundary buffered by :data:`TOLERANCE_M`.

    The buffer is the importer's: 1 m in degrees at the community's latitude, taken with the
    shorter degree so the margin is at least 1 m in every direction.
    """
    inside = np.zeros(len(points), dtype=bool)
    if len(points) == 0 or not shapes:
        return inside
    areas = [s.boundary.buffer(TOLERANCE_M / min(_scale(s.boundary))) for s in shapes]
    hits, _ = shapely.STRtree(areas).query(points, predicate="intersects")
    inside[hits] = True
    return inside


def _scale(geom: BaseGeometry) -> tuple[float, float]:
    return metres_per_degree(geom.centroid.y if not geom.is_empty else 0.0)


def _covered(
    points: npt.NDArray[Any],
    communities: npt.NDArray[Any],
    polygons: Sequence[rows.GridShape] | Sequence[rows.FieldShape],
) -> npt.NDArray[np.bool_]:
    """Whether each point is covered by a polygon of its own community (one STRtree query for
    all points; a point on an edge is covered, as the assignment's edge rule has it)."""
    covered = np.zeros(len(points), dtype=bool)
    if len(points) == 0 or not polygons:
        return covered
    tree = shapely.STRtree([p.geom for p in polygons])
    owner = np.array([p.community_id for p in polygons])
    pts, polys = tree.query(points, predicate="intersects")
    same = owner[polys] == communities[pts]
    covered[pts[same]] = True
    return covered


def _overlap_findings(
    selected: list[rows.CommunityShape], shapes: list[rows.CommunityShape]
) -> list[Finding]:
    """``communities_overlap`` for each checked community: the others it overlaps, how much,
    where. The checked ones go first, so ``overlaps`` looks only at pairs involving them;
    a pair of two checked communities is reported under both."""
    chosen = {s.id for s in selected}
    ordered = [*selected, *(s for s in shapes if s.id not in chosen)]
    found: dict[str, list[tuple[str, float, Point]]] = defaultdict(list)
    for a, b, area, where in overlaps(
        [s.boundary for s in ordered], min_area_m2=SLIVER_M2, first=len(selected)
    ):
        found[ordered[a].code].append((ordered[b].code, area, where))
        if b < len(selected):
            found[ordered[b].code].append((ordered[a].code, area, where))
    findings = []
    for code, pairs in sorted(found.items()):
        listed = "; ".join(
            f"{other} by {area:,.0f} m² around {where.x:.6f}, {where.y:.6f}"
            for other, area, where in pairs[:MAX_IDS]
        )
        findings.append(
            Finding(
                community=code,
                check="communities_overlap",
                count=len(pairs),
                ids=[other for other, _, _ in pairs[:MAX_IDS]],
                message=f"overlaps {_count(len(pairs), 'community', 'communities')} "
                f"by more than {SLIVER_M2:g} m²: {listed}",
            )
        )
    return findings


def _shared(households: pd.DataFrame) -> pd.DataFrame:
    """Households whose address (street, number, compound, building name) is also the address
    of a household in another building: one address, two places."""
    h = households[
        households["street"].notna()
        & households["number"].notna()
        & households["building_id"].notna()
    ]
    key = ["community_id", "street", "number", "compound", "name"]
    buildings = h.groupby(key, dropna=False)["building_id"].transform("nunique")
    return h[buildings > 1]


def _far_from_building(
    households: pd.DataFrame, buildings: pd.DataFrame, scale: dict[int, float]
) -> pd.DataFrame:
    """Households whose address finds buildings, all farther than :data:`FAR_FROM_BUILDING_M`.

    A household's street and number find the buildings with that address; a building name or
    compound the household gives must match too (the compound's buildings share its number).
    When several buildings fit, the nearest counts. Adds ``metres`` (to the nearest), measured
    with ``scale`` (community id → metres per degree of longitude at its centroid).
    """
    on = ["community_id", "street", "number"]
    h = households[households["street"].notna() & households["number"].notna()]
    b = buildings[buildings["street"].notna() & buildings["number"].notna()]
    # Scaled to metres once per household and per building, not per pair: a compound's
    # households each find all its buildings (six pairs per household in the demo); this
    # took 500,000 households × 50,000 buildings (synthetic) from 5.7 to 2.7 s.
    doors = shapely.points(h["lon"].to_numpy(), h["lat"].to_numpy())
    h = h.assign(local=_local(doors, h["community_id"].map(scale).to_numpy(dtype=np.float64)))
    shapes = b["geometry"].to_numpy()
    b = b.assign(local=_local(shapes, b["community_id"].map(scale).to_numpy(dtype=np.float64)))
    pairs = h[[*on, "id", "compound", "name", "local"]].merge(
        b[[*on, "compound", "name", "local"]], on=on, suffixes=("", "_b")
    )
    fits = (pairs["name"].isna() | (pairs["name"] == pairs["name_b"])) & (
        pairs["compound"].isna() | (pairs["compound"] == pairs["compound_b"])
    )
    pairs = pairs[fits.fillna(False).astype(bool)]
    metres = shapely.distance(pairs["local"].to_numpy(), pairs["local_b"].to_numpy())
    nearest = pd.Series(metres, index=pairs["id"].to_numpy(), dtype=float).groupby(level=0).min()
    far = nearest[nearest > FAR_FROM_BUILDING_M]
    found = households.set_index("id").loc[far.index].reset_index()
    return found.assign(metres=far.to_numpy())


def _local(geoms: npt.NDArray[Any], mx: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
    """Each geometry scaled to local metres: longitude by its ``mx`` (metres per degree of
    longitude), latitude by the metres per degree of latitude (one shapely call for all)."""
    if len(geoms) == 0:
        return geoms
    my = metres_per_degree(0.0)[1]
    _, index = shapely.get_coordinates(geoms, return_index=True)
    factor = np.column_stack([mx[index], np.full(len(index), my)])
    return np.asarray(shapely.transform(geoms, lambda xy: xy * factor, include_z=False))


def _farthest(group: pd.DataFrame) -> str:
    return f" (the farthest {group['metres'].max():,.0f} m)"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _findings(
    code_of: dict[int, str],
    check: str,
    frame: pd.DataFrame,
    id_column: str,
    extra: Callable[[pd.DataFrame], str] | None = None,
) -> list[Finding]:
    """One finding per community for the rows of ``frame`` (``community_id`` and the id
    column), ids in the frame's order; none for a community without rows."""
    if frame.empty:
        return []
    spec = CHECKS[check]
    findings = []
    for cid, group in frame.groupby("community_id", sort=False):
        n = len(group)
        ids = [_plain(v) for v in group[id_column].head(MAX_IDS).tolist()]
        message = f"{_count(n, spec.one, spec.many)} {spec.what}" + (extra(group) if extra else "")
        findings.append(Finding(code_of[int(cid)], check, n, ids, message))
    return sorted(findings, key=lambda f: f.community)


def _plain(value: Any) -> int | str:
    """An id as JSON has it (numpy integers as int)."""
    return value if isinstance(value, str) else int(value)

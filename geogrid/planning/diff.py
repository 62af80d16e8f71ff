"""What a draft boundary plan changes against the active one: the impact diff.

Grids are matched by code across plans (a code names a place in the community's numbering):
a code only in the draft is *added*, only in the active plan *removed*, in both with a
different shape (symmetric difference above the tolerance) *reshaped*. Households and open
requests go to grids by the edge rule (:func:`geogrid.spatial.assign_points`); a field that a
new boundary cuts keeps the part in the grid holding most of its area, the rest is *cut off*.

Each new grid has a *parent*: the active grid it overlaps most. Branches and grid leads follow
parents (largest overlap), which is what activation applies
(:mod:`geogrid.planning.activation`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from geogrid.budget import Budget
from geogrid.planning.common import local_crs, to_local
from geogrid.spatial import assign_points
from geogrid.values import plain

__all__ = ["FieldCut", "PlanDiff", "diff_plans", "grid_overlaps"]

#: A field is cut when more than this share of its area lies outside its largest piece (and
#: the area is above the tolerance): the clip would visibly change it.
CUT_SHARE = 0.001


@dataclass
class FieldCut:
    """A responsibility field that new boundaries cut, and how it would be clipped."""

    field_id: int
    name: str | None
    member_id: int | None
    grid_code: str | None  # the draft grid holding most of it: the field keeps that part
    area_m2: float
    cut_area_m2: float
    cut_share: float
    pieces: dict[str, float]  # draft grid code → m² of the field in it
    households_cut: int
    cut_households: list[str]  # address ids (or household ids) of the cut-off households


@dataclass
class PlanDiff:
    """The impact of ``draft`` against ``active`` (see the module docstring)."""

    grids_added: list[dict[str, Any]] = field(default_factory=list)
    grids_removed: list[dict[str, Any]] = field(default_factory=list)
    grids_reshaped: list[dict[str, Any]] = field(default_factory=list)
    grids_unchanged: int = 0
    households: int = 0
    households_moved: list[dict[str, Any]] = field(default_factory=list)
    #: Households whose new grid descends (largest overlap) from another active grid than
    #: theirs: the handovers between the people of the active plan's grids. A redraw that
    #: renumbers every grid moves most households *by code* but may rehome none.
    households_rehomed: int = 0
    fields_cut: list[FieldCut] = field(default_factory=list)
    fields_moved: list[dict[str, Any]] = field(default_factory=list)
    members_changed: list[dict[str, Any]] = field(default_factory=list)
    branches_changed: list[dict[str, Any]] = field(default_factory=list)
    requests_rerouted: list[dict[str, Any]] = field(default_factory=list)
    #: Draft grid code → the active grid code it overlaps most (None: overlaps none).
    parents: dict[str, str | None] = field(default_factory=dict)
    #: Draft grid code → lead member id after activation (the draft's own, else inherited).
    leads: dict[str, int | None] = field(default_factory=dict)
    #: Draft grid code → the parent's lead acting for a grid its parent's lead does not lead.
    acting_leads: dict[str, int] = field(default_factory=dict)
    #: Draft grid code → branch ids after activation (inherited from the parent grid).
    branches: dict[str, list[int]] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        return {
            "grids_added": len(self.grids_added),
            "grids_removed": len(self.grids_removed),
            "grids_reshaped": len(self.grids_reshaped),
            "grids_unchanged": self.grids_unchanged,
            "households": self.households,
            "households_moved": len(self.households_moved),
            "households_rehomed": self.households_rehomed,
            "fields_cut": len(self.fields_cut),
            "households_cut_from_fields": sum(f.households_cut for f in self.fields_cut),
            "fields_moved": len(self.fields_moved),
            "members_changed": len(self.members_changed),
            "branches_changed": len(self.branches_changed),
            "requests_rerouted": len(self.requests_rerouted),
            "grids_without_lead": sum(1 for v in self.leads.values() if v is None),
            "grids_with_acting_lead": len(self.acting_leads),
        }

    def to_dict(self, *, limit: int | None = None) -> dict[str, Any]:
        """JSON-ready; ``limit`` caps each list (the counts are always complete)."""

        def cap(items: list[Any]) -> list[Any]:
            return items if limit is None else items[:limit]

        return {
            "counts": self.counts,
            "grids_added": cap(self.grids_added),
            "grids_removed": cap(self.grids_removed),
            "grids_reshaped": cap(self.grids_reshaped),
            "households_moved": cap(self.households_moved),
            "fields_cut": [asdict(f) for f in cap(self.fields_cut)],
            "fields_moved": cap(self.fields_moved),
            "members_changed": cap(self.members_changed),
            "branches_changed": cap(self.branches_changed),
            "requests_rerouted": cap(self.requests_rerouted),
            "parents": self.parents,
            "leads": self.leads,
            "acting_leads": self.acting_leads,
            "branches": self.branches,
        }


def _codes(frame: gpd.GeoDataFrame) -> npt.NDArray[np.object_]:
    return frame["code"].astype(str).to_numpy(dtype=object)


def _column(frame: pd.DataFrame | None, name: str, n: int) -> list[Any]:
    """A column as plain Python values, missing ones None (all None without the column).

    Vectorised: ``tolist`` of an object column unwraps numpy scalars, as :func:`plain` does
    value by value, ~10× faster over 1M households.
    """
    if frame is None or name not in frame.columns:
        return [None] * n
    column = frame[name]
    return column.astype(object).where(column.notna(), None).tolist()


def _assign(points: Any, grids: gpd.GeoDataFrame) -> npt.NDArray[np.object_]:
    """Grid code per point by the edge rule (lowest code wins); None outside every grid."""
    codes = _codes(grids)
    idx = assign_points(points, grids, key=codes)
    out = np.full(len(idx), None, dtype=object)
    out[idx >= 0] = codes[idx[idx >= 0]]
    return out


def grid_overlaps(
    a: gpd.GeoDataFrame, b: gpd.GeoDataFrame, crs: Any | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Positional pairs (i in ``a``, j in ``b``) of overlapping grids with the overlap in m².

    Candidate pairs from one STRtree query, then GEOS intersections on the pair arrays (one
    vectorised call), in the local metric CRS. Pairs that only touch have area 0 and are
    dropped.
    """
    crs = crs or local_crs(a)
    ga = np.asarray(to_local(a, crs).geometry.values)
    gb = np.asarray(to_local(b, crs).geometry.values)
    tree = shapely.STRtree(gb)
    ia, ib = tree.query(ga, predicate="intersects")
    area = shapely.area(shapely.intersection(ga[ia], gb[ib]))
    keep = area > 0
    return ia[keep].astype(np.int64), ib[keep].astype(np.int64), area[keep]


def diff_plans(
    active: gpd.GeoDataFrame,
    draft: gpd.GeoDataFrame,
    *,
    households: gpd.GeoDataFrame | None = None,
    fields: gpd.GeoDataFrame | None = None,
    branches: pd.DataFrame | None = None,
    open_requests: gpd.GeoDataFrame | None = None,
    tolerance_m2: float = 1.0,
    budget: Budget | None = None,
) -> PlanDiff:
    """What activating ``draft`` would change against ``active`` (both WGS 84, with ``code``).

    Optional frames: ``households`` (points; ``address_id`` or ``id`` names them, ``field_id``
    says which field holds them — else their field is found by location), ``fields``
    (``id``, ``name``, ``member_id``, polygons), ``branches`` (``branch_id``, ``branch_name``,
    ``code`` of an active grid), ``open_requests`` (``id``, points). Grids may carry
    ``name`` and ``lead_member_id``. ``budget`` (default: none) is checked between the steps
    (:mod:`geogrid.budget`).
    """
    check = (budget or Budget(None)).check
    out = PlanDiff()
    crs = local_crs(pd.concat([active.geometry, draft.geometry]).total_bounds)
    a_codes, d_codes = _codes(active), _codes(draft)
    a_local = np.asarray(to_local(active, crs).geometry.values)
    d_local = np.asarray(to_local(draft, crs).geometry.values)
    a_pos = {c: i for i, c in enumerate(a_codes)}
    d_pos = {c: i for i, c in enumerate(d_codes)}

    # Households first: grid counts feed the grid lists.
    check("the households")
    hh_before = hh_after = np.empty(0, dtype=object)
    hh_names: list[Any] = []
    if households is not None and len(households):
        pts = np.asarray(households.geometry.values)
        hh_before, hh_after = _assign(pts, active), _assign(pts, draft)
        out.households = len(pts)
        ids = _column(households, "address_id", len(pts))
        if all(v is None for v in ids):
            ids = _column(households, "id", len(pts))
        hh_names = ids
        moved = np.flatnonzero(hh_before != hh_after)
        out.households_moved = [
            {"household": ids[i], "from_code": hh_before[i], "to_code": hh_after[i]} for i in moved
        ]
    count_before = pd.Series(hh_before).value_counts().to_dict() if len(hh_before) else {}
    count_after = pd.Series(hh_after).value_counts().to_dict() if len(hh_after) else {}
    a_names, d_names = _column(active, "name", len(active)), _column(draft, "name", len(draft))

    def only_in(
        codes: npt.NDArray[np.object_],
        other: dict[Any, int],
        names: list[Any],
        local: npt.NDArray[np.object_],
        counts: dict[Any, int],
    ) -> list[dict[str, Any]]:
        """Grids of one plan whose code the other plan lacks."""
        return [
            {
                "code": code,
                "name": names[k],
                "area_m2": round(float(local[k].area), 1),
                "households": int(counts.get(code, 0)),
            }
            for k, code in enumerate(codes)
            if code not in other
        ]

    out.grids_added = only_in(d_codes, a_pos, d_names, d_local, count_after)
    out.grids_removed = only_in(a_codes, d_pos, a_names, a_local, count_before)
    common = [c for c in d_codes if c in a_pos]
    check("the reshaped grids")
    if common:
        ia = np.array([a_pos[c] for c in common])
        ib = np.array([d_pos[c] for c in common])
        changed = shapely.area(shapely.symmetric_difference(a_local[ia], d_local[ib]))
        for code, i, j, ch in zip(common, ia, ib, changed, strict=True):
            if ch <= tolerance_m2:
                out.grids_unchanged += 1
                continue
            out.grids_reshaped.append(
                {
                    "code": code,
                    "area_before_m2": round(float(a_local[i].area), 1),
                    "area_after_m2": round(float(d_local[j].area), 1),
                    "changed_m2": round(float(ch), 1),
                    "households_before": int(count_before.get(code, 0)),
                    "households_after": int(count_after.get(code, 0)),
                }
            )

    # Parents (largest overlap), then leads and branches by parent.
    check("the parents")
    ia, ib, area = grid_overlaps(draft, active, crs)
    best: dict[int, tuple[float, int]] = {}
    for i, j, ar in zip(ia, ib, area, strict=True):
        if ar > best.get(int(i), (0.0, -1))[0]:
            best[int(i)] = (float(ar), int(j))
    out.parents = {
        str(d_codes[i]): (str(a_codes[best[i][1]]) if i in best else None)
        for i in range(len(d_codes))
    }
    if len(hh_after):
        parent_of = np.array([out.parents.get(c) if c is not None else None for c in hh_after])
        out.households_rehomed = int(np.sum(parent_of != hh_before))
    out.leads, out.acting_leads = _leads(active, draft, best, a_codes, d_codes)
    branch_of_grid: dict[str, list[int]] = defaultdict(list)
    branch_names: dict[int, Any] = {}
    if branches is not None and len(branches):
        for bid, bname, code in zip(
            branches["branch_id"], branches["branch_name"], branches["code"], strict=True
        ):
            branch_of_grid[str(code)].append(int(bid))
            branch_names[int(bid)] = plain(bname)
    out.branches = {
        code: sorted(branch_of_grid.get(parent, [])) if parent else []
        for code, parent in out.parents.items()
    }
    before_b: dict[int, set[str]] = defaultdict(set)
    after_b: dict[int, set[str]] = defaultdict(set)
    for code, bids in branch_of_grid.items():
        for b in bids:
            before_b[b].add(code)
    for code, bids in out.branches.items():
        for b in bids:
            after_b[b].add(code)
    for b in sorted(branch_names):
        if before_b[b] != after_b[b]:
            out.branches_changed.append(
                {
                    "branch_id": b,
                    "branch_name": branch_names[b],
                    "from_codes": sorted(before_b[b]),
                    "to_codes": sorted(after_b[b]),
                }
            )

    member_before: dict[int, set[str]] = defaultdict(set)
    member_after: dict[int, set[str]] = defaultdict(set)
    a_leads = _column(active, "lead_member_id", len(active))
    for code, lead in zip(a_codes, a_leads, strict=True):
        if lead is not None:
            member_before[int(lead)].add(str(code))
    for code, lead in out.leads.items():
        if lead is not None:
            member_after[int(lead)].add(code)

    check("the fields")
    if fields is not None and len(fields):
        _fields(
            out,
            fields,
            active,
            draft,
            crs,
            households=households,
            hh_after=hh_after,
            hh_names=hh_names,
            member_before=member_before,
            member_after=member_after,
            tolerance_m2=tolerance_m2,
        )
    for mid in sorted(set(member_before) | set(member_after)):
        if member_before[mid] != member_after[mid]:
            out.members_changed.append(
                {
                    "member_id": mid,
                    "from_codes": sorted(member_before[mid]),
                    "to_codes": sorted(member_after[mid]),
                }
            )

    check("the open requests")
    if open_requests is not None and len(open_requests):
        pts = np.asarray(open_requests.geometry.values)
        before, after = _assign(pts, active), _assign(pts, draft)
        rids = _column(open_requests, "id", len(pts))
        out.requests_rerouted = [
            {"request_id": rids[i], "from_code": before[i], "to_code": after[i]}
            for i in np.flatnonzero(before != after)
        ]
    return out


def _leads(
    active: gpd.GeoDataFrame,
    draft: gpd.GeoDataFrame,
    best: dict[int, tuple[float, int]],
    a_codes: npt.NDArray[np.object_],
    d_codes: npt.NDArray[np.object_],
) -> tuple[dict[str, int | None], dict[str, int]]:
    """Lead member per draft grid (the draft's own, else inherited) and the acting leads.

    An active grid's lead goes to the child (draft grid whose parent it is) that overlaps it
    most. Its other children get the same member as *acting* lead, so every household and
    request still reaches a person until the branch names new leads; they are listed for
    review. Children of a grid without a lead stay vacant (requests go to field holders, then
    to the community).
    """
    own = _column(draft, "lead_member_id", len(draft))
    a_leads = _column(active, "lead_member_id", len(active))
    leads: dict[str, int | None] = {
        str(c): (int(v) if v is not None else None) for c, v in zip(d_codes, own, strict=True)
    }
    taken = {v for v in leads.values() if v is not None}
    child: dict[int, tuple[float, int]] = {}
    for i, (ar, j) in best.items():
        if ar > child.get(j, (0.0, -1))[0]:
            child[j] = (ar, i)
    for j, (_ar, i) in child.items():
        lead = a_leads[j]
        code = str(d_codes[i])
        if lead is not None and leads[code] is None and int(lead) not in taken:
            leads[code] = int(lead)
            taken.add(int(lead))
    acting: dict[str, int] = {}
    for i, (_ar, j) in sorted(best.items()):
        lead = a_leads[j]
        code = str(d_codes[i])
        if lead is not None and leads[code] is None:
            leads[code] = acting[code] = int(lead)
    return leads, acting


def _fields(
    out: PlanDiff,
    fields: gpd.GeoDataFrame,
    active: gpd.GeoDataFrame,
    draft: gpd.GeoDataFrame,
    crs: Any,
    *,
    households: gpd.GeoDataFrame | None,
    hh_after: npt.NDArray[np.object_],
    hh_names: list[Any],
    member_before: dict[int, set[str]],
    member_after: dict[int, set[str]],
    tolerance_m2: float,
) -> None:
    """Fields cut by the draft's boundaries, fields moving whole, and their holders' grids."""
    ids = _column(fields, "id", len(fields))
    names = _column(fields, "name", len(fields))
    holders = _column(fields, "member_id", len(fields))
    reps = shapely.point_on_surface(np.asarray(fields.geometry.values))
    before = _assign(reps, active)
    after = _assign(reps, draft)
    f_local = np.asarray(to_local(fields, crs).geometry.values)
    d_codes = _codes(draft)
    fi, gj, area = grid_overlaps(fields, draft, crs)
    pieces: dict[int, dict[str, float]] = defaultdict(dict)
    for i, j, ar in zip(fi, gj, area, strict=True):
        pieces[int(i)][str(d_codes[j])] = float(ar)

    # Households of each field: the stored assignment when given, else by location.
    members_of: dict[int, list[int]] = defaultdict(list)
    if households is not None and len(households):
        if "field_id" in households.columns:
            pos = {fid: k for k, fid in enumerate(ids)}
            for h, fid in enumerate(_column(households, "field_id", len(households))):
                if fid is not None and int(fid) in pos:
                    members_of[pos[int(fid)]].append(h)
        else:
            idx = assign_points(np.asarray(households.geometry.values), fields)
            for h, k in enumerate(idx):
                if k >= 0:
                    members_of[int(k)].append(h)

    for k in range(len(fields)):
        total = float(f_local[k].area)
        parts = pieces.get(k, {})
        keep_code = max(parts, key=lambda c: (parts[c], c)) if parts else after[k]
        cut = total - parts.get(keep_code, 0.0) if parts else 0.0
        if cut > tolerance_m2 and total > 0 and cut / total > CUT_SHARE:
            cut_off = [h for h in members_of.get(k, []) if hh_after[h] != keep_code]
            out.fields_cut.append(
                FieldCut(
                    field_id=ids[k],
                    name=names[k],
                    member_id=holders[k],
                    grid_code=keep_code,
                    area_m2=round(total, 1),
                    cut_area_m2=round(cut, 1),
                    cut_share=round(cut / total, 4),
                    pieces={c: round(v, 1) for c, v in sorted(parts.items())},
                    households_cut=len(cut_off),
                    cut_households=[hh_names[h] for h in cut_off],
                )
            )
        elif before[k] != after[k]:
            out.fields_moved.append(
                {
                    "field_id": ids[k],
                    "name": names[k],
                    "member_id": holders[k],
                    "from_code": before[k],
                    "to_code": after[k],
                }
            )
        holder = holders[k]
        if holder is not None:
            if before[k] is not None:
                member_before[int(holder)].add(str(before[k]))
            if keep_code is not None:
                member_after[int(holder)].add(str(keep_code))

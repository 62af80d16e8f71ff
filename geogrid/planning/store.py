"""Boundary plans in the database: load drafts, gather frames, resolve references, review.

Activation and rollback live in :mod:`geogrid.planning.activation`, which uses this module's
frames and diff.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection

from geogrid import audit
from geogrid.access import Actor, as_actor
from geogrid.budget import Budget
from geogrid.db import models, queries
from geogrid.db.queries import boundary_plans as plan_queries
from geogrid.db.queries.boundary_plans import PlanRow
from geogrid.errors import Conflict, InvalidInput, InvalidPlan, NotFound
from geogrid.io.readers import read_layer
from geogrid.periods import iso
from geogrid.planning.diff import PlanDiff, diff_plans
from geogrid.planning.metrics import PlanMetrics, measure_plan
from geogrid.planning.validate import PlanProblem, ValidationReport, validate_plan
from geogrid.spatial import multi

__all__ = [
    "PlanFrames",
    "diff_in_db",
    "load_plan",
    "measure_in_db",
    "read_plan_file",
    "validate_in_db",
]


@dataclass
class PlanFile:
    """A plan read from a file: its grids (WGS 84) and what could not be read."""

    path: Path
    grids: gpd.GeoDataFrame
    problems: list[PlanProblem]
    crs: str | None
    locations: list[int]


def read_plan_file(path: Path, *, crs: str | None = None) -> PlanFile:
    """Read a boundary-plan file (GeoJSON, GeoPackage layer ``grids``, Shapefile …).

    Faults of the file itself (unclosed rings, unreadable geometries, a contradictory CRS)
    become problems of check ``unreadable`` with the feature index; the rest of the file is
    still validated. Columns: ``code``, ``name``, ``lead_member`` (member id), geometry.
    """
    result = read_layer(Path(path), crs=crs, layer="grids")
    frame = result.frame
    problems = [
        PlanProblem(
            check="unreadable",
            severity="error",
            message=str(p),
            codes=[],
            feature=p.at,
            lon=None,
            lat=None,
            size=None,
            unit=None,
        )
        for p in result.problems.items
    ]
    cols: dict[str, Any] = {
        "code": [None if pd.isna(v) else str(v).strip() for v in frame["code"]]
        if "code" in frame.columns
        else [None] * len(frame),
        "name": frame["name"].tolist() if "name" in frame.columns else [None] * len(frame),
    }
    lead = next((c for c in ("lead_member", "lead_member_id") if c in frame.columns), None)
    cols["lead_member_id"] = (
        [None if pd.isna(v) else int(v) for v in frame[lead]] if lead else [None] * len(frame)
    )
    grids = gpd.GeoDataFrame(cols, geometry=list(frame.geometry.values), crs="EPSG:4326")
    return PlanFile(
        path=Path(path), grids=grids, problems=problems, crs=result.crs, locations=result.locations
    )


def _with_file_problems(report: ValidationReport, plan_file: PlanFile) -> ValidationReport:
    """Feature numbers as the file counts them, and the file's own faults first."""
    for p in report.problems:
        if p.feature is not None and 0 <= p.feature < len(plan_file.locations):
            p.feature = plan_file.locations[p.feature]
    if plan_file.problems:
        report.problems = [*plan_file.problems, *report.problems]
        report.valid = False
    return report


# --- frames --------------------------------------------------------------------------------


@dataclass
class PlanFrames:
    """What the planning algorithms need of one community, read in one transaction."""

    community_id: int
    community_code: str
    community_name: str | None
    #: The community's IANA time zone: its times are shown there.
    timezone: str
    boundary: BaseGeometry
    active_plan: PlanRow | None
    active: gpd.GeoDataFrame  # the active plan's grids (empty without one)
    households: gpd.GeoDataFrame
    fields: gpd.GeoDataFrame
    branches: pd.DataFrame  # branch_id, branch_name, code (active grids)
    open_requests: gpd.GeoDataFrame


def read_frames(conn: Connection, *, community_id: int) -> PlanFrames:
    community = queries.community_by_id(conn, community_id=community_id)
    active = plan_queries.active_plan(conn, community_id=community_id)
    plan_id = active.id if active is not None else None
    grids = (
        queries.grids_frame(conn, plan_id=plan_id)
        if plan_id is not None
        else gpd.GeoDataFrame({"code": []}, geometry=[], crs="EPSG:4326")
    )
    branches = (
        queries.plan_branches_frame(conn, plan_id=plan_id)
        if plan_id is not None
        else pd.DataFrame(columns=["branch_id", "branch_name", "grid_id", "code"])
    )
    return PlanFrames(
        community_id=community_id,
        community_code=str(community.code),
        community_name=community.name,
        timezone=community.timezone,
        boundary=queries.community_boundary(conn, community_id=community_id),
        active_plan=active,
        active=grids,
        households=queries.planning_households_frame(
            conn, community_id=community_id, plan_id=plan_id
        ),
        fields=queries.fields_frame(conn, community_id=community_id),
        branches=branches,
        open_requests=queries.open_requests_frame(conn, community_id=community_id),
    )


def plan_history(conn: Connection, *, community_id: int) -> dict[str, Any]:
    """The community's plans (newest first) and activations, times as ISO 8601 in the
    community's own zone (``GET /v1/plans``, ``geogrid plan list``)."""
    tz = queries.community_by_id(conn, community_id=community_id).timezone

    def local(row: Any, *columns: str) -> dict[str, Any]:
        return {**row._asdict(), **{c: iso(getattr(row, c), tz) for c in columns}}

    return {
        "timezone": tz,
        "plans": [
            local(r, "created_at", "activated_at", "retired_at")
            for r in plan_queries.plans(conn, community_id=community_id)
        ],
        "events": [
            local(r, "at") for r in plan_queries.plan_events(conn, community_id=community_id)
        ],
    }


def community_plan(conn: Connection, *, community_id: int, plan_id: int) -> PlanRow:
    """A plan's row; :class:`NotFound` when there is none or it is another community's."""
    row = plan_queries.plan_row(conn, plan_id=plan_id)
    if row.community_id != community_id:
        raise NotFound(f"boundary plan {plan_id} belongs to another community", field="plan")
    return row


# --- validate, measure, diff -------------------------------------------------------------------


def validate_in_db(
    conn: Connection,
    *,
    community_id: int,
    grids: gpd.GeoDataFrame,
    tolerance_m2: float = 1.0,
    budget: Budget | None = None,
) -> ValidationReport:
    community = queries.community_by_id(conn, community_id=community_id)
    return validate_plan(
        grids,
        queries.community_boundary(conn, community_id=community_id),
        community_code=str(community.code),
        tolerance_m2=tolerance_m2,
        budget=budget,
    )


def measure_in_db(
    conn: Connection,
    *,
    community_id: int,
    grids: gpd.GeoDataFrame,
    target: tuple[int, int],
    budget: Budget | None = None,
) -> PlanMetrics:
    f = read_frames(conn, community_id=community_id)
    return measure_plan(
        grids,
        households=f.households,
        fields=f.fields,
        open_requests=f.open_requests,
        target=target,
        budget=budget,
    )


def diff_in_db(
    conn: Connection,
    *,
    community_id: int,
    draft: gpd.GeoDataFrame,
    against: gpd.GeoDataFrame | None = None,
    frames: PlanFrames | None = None,
    budget: Budget | None = None,
) -> PlanDiff:
    """The draft against ``against`` (default: the active plan), with the stored data."""
    f = frames or read_frames(conn, community_id=community_id)
    households = f.households.copy()
    households["address_id"] = households["address_id"].astype(str)
    return diff_plans(
        f.active if against is None else against,
        draft,
        households=households,
        fields=f.fields,
        branches=f.branches,
        open_requests=f.open_requests,
        budget=budget,
    )


# --- load ----------------------------------------------------------------------------------


def load_plan(
    conn: Connection,
    *,
    community_id: int,
    plan_file: PlanFile,
    name: str | None = None,
    description: str | None = None,
    budget: Budget | None = None,
    actor: Actor | None = None,
) -> tuple[int, ValidationReport]:
    """Store a plan file as a draft (based on the active plan); refuse an invalid plan.

    Returns the new plan's id and the validation report (warnings included). ``budget``
    bounds the validation (:mod:`geogrid.budget`). Recorded in the audit log as ``actor``'s
    (default: the local operator).
    """
    report = _with_file_problems(
        validate_in_db(conn, community_id=community_id, grids=plan_file.grids, budget=budget),
        plan_file,
    )
    members = set(queries.members_frame(conn, community_id=community_id)["id"].astype(int))
    for i, lead in enumerate(plan_file.grids["lead_member_id"]):
        if lead is not None and not pd.isna(lead) and int(lead) not in members:
            report.problems.append(
                PlanProblem(
                    check="unknown_member",
                    severity="error",
                    message=f"feature {plan_file.locations[i]}: lead_member {int(lead)} is not "
                    "a member of this community",
                    codes=[str(plan_file.grids["code"].iloc[i])],
                    feature=plan_file.locations[i],
                    lon=None,
                    lat=None,
                    size=None,
                    unit=None,
                )
            )
            report.valid = False
    if not report.valid:
        raise invalid_plan_error(report, what=str(plan_file.path.name))
    plan_id = queries.create_plan(
        conn,
        community_id=community_id,
        name=name or plan_file.path.stem,
        source=f"geogrid plan load {plan_file.path.name} (CRS {plan_file.crs})",
        description=description,
    )
    g = plan_file.grids
    queries.bulk_insert(
        conn,
        models.Grid,
        [
            {
                "plan_id": plan_id,
                "code": str(code),
                "name": None if name_ is None or pd.isna(name_) else str(name_),
                "lead_member_id": None if lead is None or pd.isna(lead) else int(lead),
                "geom": queries.geom_value(multi(geom)),
            }
            for code, name_, lead, geom in zip(
                g["code"], g["name"], g["lead_member_id"], g.geometry, strict=True
            )
        ],
    )
    audit.record(
        conn,
        actor=as_actor(actor),
        action="create",
        subject="plan",
        subject_id=plan_id,
        details={"community_id": community_id, "file": plan_file.path.name, "grids": len(g)},
    )
    return plan_id, report


def invalid_plan_error(report: ValidationReport, *, what: str) -> InvalidPlan:
    errors = [p for p in report.problems if p.severity == "error"]
    lines = [f"  {p.check}: {p.message}" for p in errors[:20]]
    if len(errors) > 20:
        lines.append(f"  … and {len(errors) - 20} more")
    first = errors[0] if errors else None
    return InvalidPlan(
        f"{what}: the plan is not valid ({len(errors)} problem"
        f"{'' if len(errors) == 1 else 's'}), nothing written:\n" + "\n".join(lines),
        field="plan",
        details={
            "problems": [p.to_dict() for p in report.problems],
            "first": first.to_dict() if first else None,
        },
    )


def delete_draft(
    conn: Connection, *, community_id: int, plan_id: int, actor: Actor | None = None
) -> PlanRow:
    """Delete a draft and its grids (a planner's abandoned draft); returns its row.

    Active and retired plans are history and are never deleted (:class:`Conflict`).
    """
    plan = community_plan(conn, community_id=community_id, plan_id=plan_id)
    if plan.status != models.PlanStatus.DRAFT.value:
        raise Conflict(
            f"plan v{plan.version} (id {plan_id}) is {plan.status}: only drafts are deleted "
            "(active and retired plans are the community's history)",
            field="plan",
        )
    queries.delete_plan(conn, plan_id=plan_id)
    audit.record(
        conn,
        actor=as_actor(actor),
        action="delete",
        subject="plan",
        subject_id=plan_id,
        details={"community_id": community_id, "version": plan.version},
    )
    return plan


def review(conn: Connection, *, community_id: int) -> dict[str, Any]:
    """What the last activation left to review under the active plan.

    ``fields``: clipped fields still flagged (with their notes, naming the cut-off households);
    ``branches``: branch–grid mappings made by the activation and not yet confirmed;
    ``acting_leads``: grids whose lead is, since the activation, their parent grid's lead and
    still is (a lead changed since is not listed).
    """
    active = plan_queries.require_active_plan(conn, community_id=community_id)
    branches = queries.plan_branches_frame(conn, plan_id=active.id)
    event = plan_queries.last_plan_event(conn, community_id=community_id, plan_id=active.id)
    acting: dict[str, int] = dict((event.report or {}).get("acting_leads", {})) if event else {}
    if acting:
        grids = queries.grids_frame(conn, plan_id=active.id)
        leads = dict(zip(grids["code"], grids["lead_member_id"], strict=True))
        acting = {c: v for c, v in acting.items() if leads.get(c) == v}
    return {
        "plan": {"id": active.id, "version": active.version},
        "fields": [r._asdict() for r in queries.review_fields(conn, community_id=community_id)],
        "branches": [
            {"branch_id": int(b), "branch_name": n, "code": c}
            for b, n, c, flag in zip(
                branches["branch_id"],
                branches["branch_name"],
                branches["code"],
                branches["needs_review"],
                strict=True,
            )
            if flag
        ],
        "acting_leads": acting,
    }


def clear_review(
    conn: Connection,
    *,
    community_id: int,
    fields: list[int] | None = None,
    branches: list[int] | None = None,
    everything: bool = False,
    actor: Actor | None = None,
) -> dict[str, int]:
    """Mark reviewed: the given fields and branches (ids), or everything flagged."""
    if not everything and not fields and not branches:
        raise InvalidInput("name fields or branches to mark reviewed, or all", field="fields")
    active = plan_queries.require_active_plan(conn, community_id=community_id)
    cleared = {
        "fields": queries.clear_field_reviews(
            conn, community_id=community_id, field_ids=None if everything else fields or []
        ),
        "branches": queries.clear_branch_reviews(
            conn, plan_id=active.id, branch_ids=None if everything else branches or []
        ),
    }
    audit.record(
        conn,
        actor=as_actor(actor),
        action="review",
        subject="plan",
        subject_id=active.id,
        fields=["needs_review"],
        details={"community_id": community_id, "cleared": cleared},
    )
    return cleared


# --- references: "a draft id or a file" -------------------------------------------------------


@dataclass
class PlanRef:
    """A plan named on the command line or in a request: stored (id) or a file."""

    label: str
    grids: gpd.GeoDataFrame
    plan_id: int | None = None
    plan_file: PlanFile | None = None


def resolve_plan(
    conn: Connection,
    *,
    community_id: int,
    ref: str | None,
    crs: str | None = None,
    files: bool = True,
) -> PlanRef:
    """``None``/``active`` → the active plan; ``12`` → plan id 12; ``v3`` → version 3 of the
    community; anything else → a plan file (an existing file wins over an id). ``files=False``
    (the API) never reads a file."""
    text = (ref or "active").strip()
    if text == "active":
        plan = plan_queries.require_active_plan(conn, community_id=community_id)
        return _stored(conn, community_id, int(plan.id))
    if not files or not Path(text).exists():
        if text.isdigit():
            return _stored(conn, community_id, int(text))
        if text[:1] in "vV" and text[1:].isdigit():
            for row in queries.plans(conn, community_id=community_id):
                if int(row.version) == int(text[1:]):
                    return _stored(conn, community_id, int(row.id))
            raise NotFound(f"the community has no plan version {text[1:]}", field="plan")
        if not files:
            raise InvalidInput(f"plan must be an id, vN or 'active', got {text!r}", field="plan")
    plan_file = read_plan_file(Path(text), crs=crs)
    return PlanRef(label=Path(text).name, grids=plan_file.grids, plan_file=plan_file)


def _stored(conn: Connection, community_id: int, plan_id: int) -> PlanRef:
    row = community_plan(conn, community_id=community_id, plan_id=plan_id)
    return PlanRef(
        label=f"plan v{row.version} (id {plan_id}, {row.status})",
        grids=queries.grids_frame(conn, plan_id=plan_id),
        plan_id=plan_id,
    )


def validate_ref(
    conn: Connection,
    *,
    community_id: int,
    ref: PlanRef,
    tolerance_m2: float = 1.0,
    budget: Budget | None = None,
) -> ValidationReport:
    report = validate_in_db(
        conn, community_id=community_id, grids=ref.grids, tolerance_m2=tolerance_m2, budget=budget
    )
    if ref.plan_file is not None:
        report = _with_file_problems(report, ref.plan_file)
    return report

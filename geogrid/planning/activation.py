"""Activate a boundary plan and roll back: one transaction (the caller's).

The draft is validated, the active plan retired with its date, responsibility fields that new
boundaries cut are clipped to the grid holding most of them and flagged for review (their
previous shape kept in ``field_revisions``), branches and grid leads follow each new grid's
parent (largest overlap), then every household, field and open request is re-assigned
(:func:`geogrid.assign.assign_community`; closed requests keep their grid). The
``boundary_plans`` change bumps the ``spatial`` data version, so running servers' lookup
indexes follow within their poll interval.

Two planners who drafted from the same active plan cannot both activate: a draft records its
base plan, and activation under a row lock refuses a draft whose base is no longer active.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection

from geogrid import audit
from geogrid.access import Actor, as_actor
from geogrid.assign import assign_community
from geogrid.db import dialect, models, queries
from geogrid.db.queries import boundary_plans as plan_queries
from geogrid.db.queries.boundary_plans import PlanRow
from geogrid.errors import Conflict
from geogrid.periods import DEFAULT_TZ, iso, zone
from geogrid.planning.store import community_plan, diff_in_db, invalid_plan_error, read_frames
from geogrid.planning.validate import validate_plan
from geogrid.spatial import multi

__all__ = ["NOTE_LIMIT", "ActivationReport", "activate_plan", "rollback_plan"]

#: How many cut-off households a field's review note names (the report lists them all).
NOTE_LIMIT = 20


@dataclass
class ActivationReport:
    """What an activation (or rollback) did — or, in a dry run, would do."""

    action: str
    community_code: str
    plan_id: int
    plan_version: int
    previous_plan_id: int | None
    previous_plan_version: int | None
    activated_at: dt.datetime
    event_id: int
    #: The community's zone: ``activated_at`` is shown there.
    timezone: str = DEFAULT_TZ
    counts: dict[str, int] = field(default_factory=dict)
    fields_clipped: list[dict[str, Any]] = field(default_factory=list)
    fields_restored: int = 0
    branches_mapped: list[dict[str, Any]] = field(default_factory=list)
    leads_assigned: dict[str, int] = field(default_factory=dict)
    #: Grids led for now by their parent grid's lead (to confirm or replace).
    acting_leads: dict[str, int] = field(default_factory=dict)
    grids_without_lead: list[str] = field(default_factory=list)
    assignment: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["activated_at"] = iso(self.activated_at, self.timezone)
        return out


def activate_plan(
    conn: Connection,
    *,
    community_id: int,
    plan_id: int,
    actor: Actor | str | None = None,
) -> ActivationReport:
    """Make a draft (or retired) plan active; see the module docstring. Caller's transaction.

    ``actor`` (an :class:`~geogrid.access.Actor`, or just a label) is named in the plan's
    history and the audit log (one entry with the counts).

    Raises :class:`Conflict` when the plan is already active or was drafted from a plan that
    is no longer active (another planner activated first), :class:`InvalidPlan` when it does
    not validate.
    """
    dialect.lock_community(conn, community_id=community_id)
    plan = community_plan(conn, community_id=community_id, plan_id=plan_id)
    active = plan_queries.active_plan(conn, community_id=community_id)
    if plan.status == models.PlanStatus.ACTIVE.value:
        raise Conflict(f"plan v{plan.version} (id {plan_id}) is already active", field="plan")
    active_id = active.id if active is not None else None
    if plan.base_plan_id != active_id:
        base = (
            f"v{plan_queries.plan_row(conn, plan_id=plan.base_plan_id).version}"
            if plan.base_plan_id is not None
            else "no plan"
        )
        tz = queries.community_by_id(conn, community_id=community_id).timezone
        since = (
            f" since {active.activated_at.astimezone(zone(tz)):%Y-%m-%d %H:%M} ({tz})"
            if active is not None and active.activated_at
            else ""
        )
        now = f"v{active.version}" if active is not None else "no plan"
        raise Conflict(
            f"plan v{plan.version} was drafted from {base}, but {now} has been active{since} "
            f"(another planner activated it): review `geogrid plan diff {plan_id}` against "
            f"{now}, then load the file again to draft from {now} and activate that",
            field="plan",
            details={"base_plan_id": plan.base_plan_id, "active_plan_id": active_id},
        )
    return _activate(
        conn,
        community_id=community_id,
        plan=plan,
        active=active,
        actor=actor,
        action=models.PlanAction.ACTIVATE.value,
    )


def rollback_plan(
    conn: Connection, *, community_id: int, actor: Actor | str | None = None
) -> ActivationReport:
    """Re-activate the plan the active one replaced; fields clipped by that activation get
    their previous shape and review flags back."""
    dialect.lock_community(conn, community_id=community_id)
    active = plan_queries.require_active_plan(conn, community_id=community_id)
    event = plan_queries.last_plan_event(conn, community_id=community_id, plan_id=active.id)
    if event is None or event.previous_plan_id is None:
        raise Conflict(
            f"nothing to roll back: plan v{active.version} did not replace another plan "
            "(it was the community's first)",
            field="plan",
        )
    previous = plan_queries.plan_row(conn, plan_id=event.previous_plan_id)
    restored = 0
    if event.action == models.PlanAction.ACTIVATE.value:
        revisions = plan_queries.field_revisions(conn, event_id=event.id)
        queries.update_fields(
            conn,
            [
                (
                    r.field_id,
                    shapely.from_wkb(bytes(r.geom_wkb)),
                    bool(r.needs_review),
                    r.review_note,
                )
                for r in revisions
            ],
        )
        restored = len(revisions)
    report = _activate(
        conn,
        community_id=community_id,
        plan=previous,
        active=active,
        actor=actor,
        action=models.PlanAction.ROLLBACK.value,
    )
    report.fields_restored = restored
    queries.set_plan_event_report(conn, event_id=report.event_id, report=_json(report.to_dict()))
    return report


def _activate(
    conn: Connection,
    *,
    community_id: int,
    plan: PlanRow,
    active: PlanRow | None,
    actor: Actor | str | None,
    action: str,
) -> ActivationReport:
    frames = read_frames(conn, community_id=community_id)
    draft = queries.grids_frame(conn, plan_id=plan.id)
    validation = validate_plan(draft, frames.boundary, community_code=frames.community_code)
    if not validation.valid:
        raise invalid_plan_error(validation, what=f"plan v{plan.version}")
    diff = diff_in_db(conn, community_id=community_id, draft=draft, frames=frames)
    now = models.utcnow()
    event_id = queries.insert_plan_event(
        conn,
        community_id=community_id,
        plan_id=plan.id,
        previous_plan_id=active.id if active is not None else None,
        action=action,
        actor=actor.label if isinstance(actor, Actor) else actor,
    )
    report = ActivationReport(
        action=action,
        community_code=frames.community_code,
        plan_id=plan.id,
        plan_version=plan.version,
        previous_plan_id=active.id if active is not None else None,
        previous_plan_version=active.version if active is not None else None,
        activated_at=now,
        event_id=event_id,
        timezone=frames.timezone,
        counts=diff.counts,
        warnings=[p.message for p in validation.problems if p.severity == "warning"],
    )

    # Fields cut by the new boundaries: keep the part in the grid holding most of the field.
    grid_geom = dict(zip(draft["code"].astype(str), draft.geometry, strict=True))
    queries.save_field_revisions(
        conn, event_id=event_id, field_ids=[int(c.field_id) for c in diff.fields_cut]
    )
    field_geom = dict(zip(frames.fields["id"].astype(int), frames.fields.geometry, strict=True))
    clips: list[tuple[int, BaseGeometry, bool, str | None]] = []
    for cut in diff.fields_cut:
        keep = grid_geom.get(str(cut.grid_code))
        old = field_geom[int(cut.field_id)]
        clipped = _polygonal(old.intersection(keep)) if keep is not None else None
        if clipped is None:
            continue
        shown = ", ".join(str(h) for h in cut.cut_households[:NOTE_LIMIT])
        more = len(cut.cut_households) - NOTE_LIMIT
        note = (
            f"cut by plan v{plan.version} on {now:%Y-%m-%d}: kept the {1 - cut.cut_share:.1%} "
            f"in grid {cut.grid_code}, {cut.cut_area_m2:,.0f} m² cut off"
            + (
                f"; {cut.households_cut} households cut off: {shown}"
                + (f" … and {more} more" if more > 0 else "")
                if cut.households_cut
                else ""
            )
        )
        clips.append((int(cut.field_id), clipped, True, note))
        report.fields_clipped.append({**asdict(cut), "review_note": note})
    queries.update_fields(conn, clips)

    # Grid leads and branches follow each new grid's parent (largest overlap).
    ids = dict(zip(draft["code"].astype(str), draft["id"].astype(int), strict=True))
    own = {
        str(c): v
        for c, v in zip(draft["code"], draft["lead_member_id"], strict=True)
        if v is not None and not pd.isna(v)
    }
    new_leads = {
        code: lead for code, lead in diff.leads.items() if lead is not None and code not in own
    }
    queries.set_grid_leads(conn, leads={ids[c]: int(v) for c, v in new_leads.items()})
    report.leads_assigned = new_leads
    report.acting_leads = {c: v for c, v in diff.acting_leads.items() if c not in own}
    report.grids_without_lead = sorted(c for c, v in diff.leads.items() if v is None)
    if queries.plan_branches_frame(conn, plan_id=plan.id).empty:
        rows = [
            {"branch_id": b, "grid_id": ids[code], "needs_review": True}
            for code, bids in diff.branches.items()
            for b in bids
        ]
        queries.insert_branch_grids(conn, rows)
        report.branches_mapped = [
            {"branch_id": b, "code": code} for code, bids in diff.branches.items() for b in bids
        ]

    # Retire the active plan with its date, then re-assign under the new one.
    if active is not None:
        queries.set_plan_status(
            conn,
            plan_id=active.id,
            status=models.PlanStatus.RETIRED.value,
            activated_at=active.activated_at,
            retired_at=now,
        )
    queries.set_plan_status(
        conn, plan_id=plan.id, status=models.PlanStatus.ACTIVE.value, activated_at=now
    )
    report.assignment = assign_community(conn, community_id=community_id, plan_id=plan.id).to_dict()
    # assign_community compares a plan's rows with its own earlier rows; a plan activated for
    # the first time has none, so the change of grid is the diff's (by grid code).
    report.assignment["households_changed_grid"] = len(diff.households_moved)
    queries.set_plan_event_report(conn, event_id=event_id, report=_json(report.to_dict()))
    audit.record(
        conn,
        actor=as_actor(Actor.system(actor) if isinstance(actor, str) else actor),
        action=action,
        subject="plan",
        subject_id=plan.id,
        details={
            "community_id": community_id,
            "version": plan.version,
            "previous_plan_id": report.previous_plan_id,
            "event_id": event_id,
            "counts": _json(diff.counts),
            "households_changed_grid": report.assignment["households_changed_grid"],
            "requests_rerouted": report.assignment.get("requests_rerouted"),
        },
    )
    return report


def _polygonal(geom: BaseGeometry) -> BaseGeometry | None:
    """The polygonal part of an intersection as a MultiPolygon (lines and points dropped)."""
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    if not parts:
        return None
    return multi(shapely.union_all(parts))


def _json(value: Any) -> Any:
    """Plain JSON types for the event report (numpy scalars, dates)."""
    return json.loads(json.dumps(value, default=str))

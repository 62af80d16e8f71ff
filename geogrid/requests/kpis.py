"""KPIs of the request workflow for a period, grouped (docs/api.md, "KPIs").

Periods select requests by **received** date (inclusive local dates). For each group:

* ``received`` (受理) — requests received in the period;
* ``registered`` (立案), ``dispatched`` (派遣) — of those, how many reached that step;
* ``resolved`` — status ``resolved`` or ``closed`` (as ``/v1/summary``); ``closed`` (结案);
* ``resolution_rate`` = resolved ÷ received (the article's 84 ÷ 86 = 0.977);
* ``due`` — requests whose SLA deadline falls inside the period (and has passed);
  ``closure_rate`` (结案率) = closed ÷ due and ``on_time_rate`` (按期结案率) = closed by the
  deadline ÷ due (GB/T 30428), counting the due requests only so a rate never exceeds 1;
* ``median_hours_to_resolve``, ``p90_hours_to_resolve`` — received → resolved, in hours, of
  the resolved requests (linear interpolation between ranks, numpy's default);
* ``escalations`` — requests escalated at least once; ``overdue_open`` — still open past
  their deadline now;
* ``evaluated``, ``satisfied``, ``satisfaction_rate`` = satisfied ÷ evaluated;
* ``households``, ``households_visited``, ``visit_coverage`` — for community, grid, branch
  and member groups (visits in the period, :mod:`geogrid.requests.visits`); month groups
  use the community's households and the month's visits; null for category and programme.

Every rate is :func:`geogrid.rates.rate` (fractions 0–1, half-up to 3 decimals, null when
the denominator is 0). A request's grid, member and branch are its assignment (the member's
branch); requests outside every grid form a group with a null key.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from geogrid.access import Actor
from geogrid.db import models, queries
from geogrid.db.queries import kpis as kpi_queries
from geogrid.db.queries import visits as visit_queries
from geogrid.errors import InvalidInput
from geogrid.periods import Period, zone
from geogrid.privacy import mask_name
from geogrid.rates import rate
from geogrid.requests.visits import community_ids

GROUPS: Final = ("community", "grid", "branch", "member", "category", "programme", "month")
#: Group keys that need an official's key (per-member figures are about people).
RESTRICTED_GROUPS: Final = ("member",)
METRICS: Final = (
    "received",
    "registered",
    "dispatched",
    "resolved",
    "closed",
    "rejected",
    "resolution_rate",
    "due",
    "closed_on_time",
    "closure_rate",
    "on_time_rate",
    "median_hours_to_resolve",
    "p90_hours_to_resolve",
    "escalations",
    "overdue_open",
    "evaluated",
    "satisfied",
    "satisfaction_rate",
    "households",
    "households_visited",
    "visit_coverage",
)
_REGISTERED: Final = ("registered", "dispatched", "in_progress", "escalated", "resolved", "closed")
_DISPATCHED: Final = ("dispatched", "in_progress", "escalated", "resolved", "closed")


def _frame(conn: Connection, cids: Sequence[int], period: Period) -> pd.DataFrame:
    """The requests received in ``period``, taken in each community's own time zone; every
    row carries its period's bounds (``period_lower``, ``period_upper``, UTC) for the SLA
    window of :func:`_metrics`."""
    zones = queries.community_zones(conn, community_ids=cids)
    rows: list[dict[str, Any]] = []
    for tz in sorted(set(zones.values())):
        local = period.in_zone(tz)
        found = kpi_queries.kpi_requests(
            conn,
            community_ids=[c for c in cids if zones[c] == tz],
            received_from=local.lower,
            received_before=local.upper,
        )
        bounds = {"period_lower": local.lower, "period_upper": local.upper}
        rows.extend({**row._asdict(), **bounds} for row in found)
    columns = [*kpi_queries.KpiRequest._fields, "period_lower", "period_upper"]
    frame = pd.DataFrame(rows, columns=columns)
    for col in (
        "received_at",
        "registered_at",
        "dispatched_at",
        "due_at",
        "resolved_at",
        "closed_at",
        "period_lower",
        "period_upper",
    ):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def _metrics(f: pd.DataFrame, *, now: dt.datetime) -> dict[str, Any]:
    n = len(f)
    if n == 0:
        out: dict[str, Any] = dict.fromkeys(METRICS, 0)
        for k in METRICS:
            if k.endswith(("_rate", "_resolve")) or k == "visit_coverage":
                out[k] = None
        return out
    status = f["status"]
    resolved = status.isin(models.RESOLVED_STATUSES)
    closed = status == models.RequestStatus.CLOSED.value
    registered = f["registered_at"].notna() | status.isin(_REGISTERED)
    dispatched = f["dispatched_at"].notna() | status.isin(_DISPATCHED)
    # Due in the period (each request's community's) and already passed.
    deadline_end = f["period_upper"].clip(upper=pd.Timestamp(now))
    due_at = f["due_at"]
    due = due_at.notna() & (due_at >= f["period_lower"]) & (due_at < deadline_end)
    closed_due = due & closed
    on_time = closed_due & (f["closed_at"] <= due_at)
    is_open = status.isin(models.OPEN_STATUSES)
    overdue = is_open & due_at.notna() & (due_at < now)
    took = [
        (b - a).total_seconds() / 3600.0
        for a, b, ok in zip(f["received_at"], f["resolved_at"], resolved, strict=True)
        if ok and not pd.isna(b)
    ]
    evaluated = f["satisfaction"].notna()
    satisfied = f["satisfaction"] == "satisfied"
    return {
        "received": n,
        "registered": int(registered.sum()),
        "dispatched": int(dispatched.sum()),
        "resolved": int(resolved.sum()),
        "closed": int(closed.sum()),
        "rejected": int((status == models.RequestStatus.REJECTED.value).sum()),
        "resolution_rate": rate(int(resolved.sum()), n),
        "due": int(due.sum()),
        "closed_on_time": int(on_time.sum()),
        "closure_rate": rate(int(closed_due.sum()), int(due.sum())),
        "on_time_rate": rate(int(on_time.sum()), int(due.sum())),
        "median_hours_to_resolve": round(float(np.median(took)), 1) if took else None,
        "p90_hours_to_resolve": round(float(np.percentile(took, 90)), 1) if took else None,
        "escalations": int(f["escalated"].astype(bool).sum()),
        "overdue_open": int(overdue.sum()),
        "evaluated": int(evaluated.sum()),
        "satisfied": int(satisfied.sum()),
        "satisfaction_rate": rate(int(satisfied.sum()), int(evaluated.sum())),
    }


def _coverage(households: int, visited: int) -> dict[str, Any]:
    return {
        "households": households,
        "households_visited": visited,
        "visit_coverage": rate(visited, households),
    }


_NO_COVERAGE: Final = {"households": None, "households_visited": None, "visit_coverage": None}


def kpis(
    conn: Connection,
    *,
    period: Period,
    group_by: str | None = None,
    community: str | None = None,
    actor: Actor | None = None,
    now: dt.datetime | None = None,
    subdistrict: str | None = None,
    district: str | None = None,
) -> dict[str, Any]:
    """The KPI table: ``{period, group_by, total, rows}`` (docs/api.md, "KPIs"), of one
    community, a subdistrict's or a district's (codes), or every one the key may see."""
    return kpi_tables(
        conn,
        period=period,
        group_bys=[group_by],
        community=community,
        actor=actor,
        now=now,
        subdistrict=subdistrict,
        district=district,
    )[group_by]


def kpi_tables(
    conn: Connection,
    *,
    period: Period,
    group_bys: Sequence[str | None],
    community: str | None = None,
    actor: Actor | None = None,
    now: dt.datetime | None = None,
    subdistrict: str | None = None,
    district: str | None = None,
) -> dict[str | None, dict[str, Any]]:
    """:func:`kpis` of several groupings at once (the dashboard's tables): the period's
    requests and households are read once, each table is what :func:`kpis` answers."""
    for group_by in group_bys:
        if group_by is not None and group_by not in GROUPS:
            raise InvalidInput(f"group_by must be one of {', '.join(GROUPS)}", field="group_by")
    actor = actor or Actor.anonymous()
    for group_by in group_bys:
        if group_by in RESTRICTED_GROUPS:
            actor.require(
                models.Role.OFFICIAL,
                models.Role.PLANNER,
                models.Role.ADMIN,
                what=f"KPIs by {group_by}",
            )
    now = now or models.utcnow()
    cids = community_ids(
        conn, community=community, actor=actor, subdistrict=subdistrict, district=district
    )
    frame = _frame(conn, cids, period)
    homes = visit_queries.households_frame(conn, community_ids=cids)
    visited = visit_queries.visited_households(
        conn, community_ids=cids, start=period.start, end=period.end
    )
    homes["visited"] = homes["household_id"].isin(visited)
    total = {
        **_metrics(frame, now=now),
        **_coverage(len(homes), int(homes["visited"].sum())),
    }
    shown = period.to_dict(queries.community_zones(conn, community_ids=cids).values())
    return {
        group_by: {
            "period": dict(shown),
            "group_by": group_by,
            "total": dict(total),
            "rows": []
            if group_by is None
            else _grouped(conn, frame, homes, group_by, period, cids, now),
        }
        for group_by in group_bys
    }


def _grouped(
    conn: Connection,
    frame: pd.DataFrame,
    homes: pd.DataFrame,
    group_by: str,
    period: Period,
    cids: Sequence[int],
    now: dt.datetime,
) -> list[dict[str, Any]]:
    if not frame.empty:
        frame = frame.copy()
        # The month a request was received in, in its community's zone.
        frame["month"] = [
            t.astimezone(zone(tz)).strftime("%Y-%m")
            for t, tz in zip(frame["received_at"], frame["timezone"], strict=True)
        ]
    key_col = {
        "community": "community_id",
        "grid": "grid_id",
        "branch": "branch_id",
        "member": "member_id",
        "category": "category_code",
        "programme": "programme",
        "month": "month",
    }[group_by]
    keys: dict[Any, dict[str, Any]] = {}
    if not frame.empty:
        for k, g in frame.groupby(key_col, dropna=False, sort=False):
            keys[_norm(k)] = {"frame": g}
    # Groups with households but no requests still have a visit coverage.
    home_col = {
        "community": "community_id",
        "grid": "grid_id",
        "branch": "branch_id",
        "member": "member_id",
    }.get(group_by)
    home_counts: dict[Any, tuple[int, int]] = {}
    if home_col is not None:
        for k, g in homes.dropna(subset=[home_col]).groupby(home_col):
            home_counts[_norm(k)] = (len(g), int(g["visited"].sum()))
            keys.setdefault(_norm(k), {"frame": frame.iloc[0:0]})
    if group_by == "month":
        months = pd.period_range(period.start, period.end, freq="M").strftime("%Y-%m")
        for k in months:
            keys.setdefault(str(k), {"frame": frame.iloc[0:0]})
    labels = _labels(conn, group_by, [k for k in keys if k is not None], cids)
    months_seen = _visits_by_month(conn, cids, period) if group_by == "month" else {}
    rows = []
    for k, item in keys.items():
        metrics = _metrics(item["frame"], now=now)
        if home_col is not None:
            cov = _coverage(*home_counts.get(k, (0, 0)))
        elif group_by == "month":
            cov = _month_coverage(homes, months_seen.get(str(k), set()))
        else:
            cov = dict(_NO_COVERAGE)
        rows.append({"key": k, **labels.get(k, {"label": None}), **metrics, **cov})
    rows.sort(key=lambda r: (r["key"] is None, str(r.get("sort") or r["key"])))
    for r in rows:
        r.pop("sort", None)
    return rows


def _norm(k: Any) -> Any:
    if k is None or (isinstance(k, float) and np.isnan(k)) or k is pd.NA:
        return None
    if isinstance(k, np.integer | float):
        return int(k)
    return k


def _labels(
    conn: Connection, group_by: str, keys: list[Any], cids: Sequence[int]
) -> dict[Any, dict[str, Any]]:
    """Names for group keys (masked for members), and a sort key."""
    if not keys:
        return {}
    if group_by not in ("community", "grid", "branch", "member", "category"):
        return {k: {"label": k} for k in keys}
    names = kpi_queries.group_names(conn, group_by=group_by, keys=keys)
    if group_by in ("community", "grid"):
        return {r.key: {"label": r.name, "code": r.code, "sort": r.code} for r in names}
    if group_by == "branch":
        return {r.key: {"label": r.name, "sort": f"{r.key:09d}"} for r in names}
    if group_by == "member":
        return {r.key: {"label": mask_name(r.name), "sort": f"{r.key:09d}"} for r in names}
    return {r.key: {"label": r.name} for r in names}


def _visits_by_month(conn: Connection, cids: Sequence[int], period: Period) -> dict[str, set[int]]:
    """The households visited in each month of the period (the month's days inside the
    period), read once: one query, not one a month (114 months of history took 2 s)."""
    out: dict[str, set[int]] = {}
    for household_id, day in kpi_queries.visits_in(
        conn, community_ids=cids, start=period.start, end=period.end
    ):
        out.setdefault(day.strftime("%Y-%m"), set()).add(int(household_id))
    return out


def _month_coverage(homes: pd.DataFrame, seen: set[int]) -> dict[str, Any]:
    return _coverage(len(homes), int(homes["household_id"].isin(seen).sum()))


def to_csv(table: dict[str, Any]) -> str:
    """The KPI table as CSV: one line per group (then ``total``), rates as fractions."""
    buf = io.StringIO()
    cols = ["group_by", "key", "code", "label", *METRICS]
    writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in table["rows"]:
        writer.writerow({"group_by": table["group_by"], **r})
    writer.writerow({"group_by": table["group_by"] or "total", "key": "total", **table["total"]})
    return buf.getvalue()

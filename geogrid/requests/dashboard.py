"""The officials' dashboard (驾驶舱, ``GET /dashboard``): an area's headline figures, its KPI
tables, monthly trends and the overdue and escalated lists, and their exports.

Nothing here defines a figure of its own: the counts of grids, households and members are
:func:`geogrid.summary.community_summary`'s (``GET /v1/summary``), every rate and KPI is
:func:`geogrid.requests.kpis.kpi_tables`' (``GET /v1/kpis``), the lists are
:func:`geogrid.requests.views.list_requests`' (``GET /v1/requests``) under the viewer's scope.
An *area* is one community, a subdistrict or a district (codes stored on the communities), or
every community of an unscoped key; a scoped key chooses only within its scope.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from sqlalchemy import Connection

from geogrid import i18n
from geogrid.access import Actor
from geogrid.db import models, queries
from geogrid.db.queries import catalogue as catalogue_queries
from geogrid.db.queries import kpis as kpi_queries
from geogrid.errors import Forbidden, InvalidInput, NotFound
from geogrid.i18n import N_
from geogrid.periods import Period, today, zone
from geogrid.requests.kpis import kpi_tables
from geogrid.requests.views import RequestFilter, list_requests
from geogrid.requests.visits import community_ids
from geogrid.summary import community_summary

#: The KPI tables of the page: (table name, ``group_by`` of ``GET /v1/kpis``).
KPI_TABLES: Final = (
    ("grids", "grid"),
    ("branches", "branch"),
    ("members", "member"),
    ("categories", "category"),
    ("months", "month"),
)
LIST_TABLES: Final = ("overdue", "escalated")
TABLES: Final = tuple(name for name, _ in KPI_TABLES) + LIST_TABLES
#: Rows of a list shown on the page (the export has them all, up to the API's page limit).
LIST_ROWS: Final = 25
EXPORT_ROWS: Final = 500

#: The KPI columns of the tables and exports: (field of ``GET /v1/kpis``, English header).
KPI_COLUMNS: Final = (
    ("received", N_("Requests received")),
    ("resolved", N_("Resolved")),
    ("resolution_rate", N_("Resolution rate")),
    ("due", N_("Due")),
    ("closed", N_("Closed")),
    ("closure_rate", N_("Closure rate")),
    ("closed_on_time", N_("Closed on time")),
    ("on_time_rate", N_("On-time rate")),
    ("evaluated", N_("Evaluated")),
    ("satisfaction_rate", N_("Satisfaction")),
    ("escalations", N_("Escalated")),
    ("overdue_open", N_("Overdue, still open")),
)
RATES: Final = frozenset(k for k, _ in KPI_COLUMNS if k.endswith("_rate"))
#: The first column of each KPI table (its group).
GROUP_HEADERS: Final = {
    "grids": N_("Grid"),
    "branches": N_("Party branch"),
    "members": N_("Member"),
    "categories": N_("Category"),
    "months": N_("Month"),
}
LIST_COLUMNS: Final = (
    ("id", N_("No.")),
    ("category", N_("Category")),
    ("grid", N_("Grid")),
    ("member", N_("Member")),
    ("department", N_("Department")),
    ("received_at", N_("Received at")),
    ("due_at", N_("Due at")),
)
TABLE_TITLES: Final = {
    "grids": N_("KPIs by grid"),
    "branches": N_("KPIs by party branch"),
    "members": N_("KPIs by member"),
    "categories": N_("KPIs by category"),
    "months": N_("KPIs by month"),
    "overdue": N_("Overdue requests"),
    "escalated": N_("Escalated requests"),
}


@dataclass(frozen=True)
class Area:
    """What the dashboard shows: ``level`` ``community``, ``subdistrict``, ``district`` or
    ``all``, its ``code``, the ids of its communities, a name (data) and its time zone (the
    communities' when they share one)."""

    level: str
    code: str | None
    community_ids: tuple[int, ...]
    name: str
    timezone: str

    @property
    def value(self) -> str:
        """The area as the page's form names it (``community:441302011005``, ``all``)."""
        return "all" if self.level == "all" else f"{self.level}:{self.code}"

    @property
    def query(self) -> dict[str, str]:
        """The area as ``/v1`` and ``/maps`` parameters (``{"community": "…"}``)."""
        return {} if self.code is None else {self.level: self.code}


def areas(conn: Connection, actor: Actor, *, tz: str) -> list[Area]:
    """The areas ``actor`` may choose: each district and subdistrict whose communities are all
    in its scope, each community, and every community for an unscoped key (several only)."""
    ids = community_ids(conn, community=None, actor=actor)
    codes = set(queries.community_codes(conn, community_ids=ids))
    listing = [c for c in queries.community_listing(conn) if c.code in codes]
    by_code = {str(code): i for i, code in _codes_by_id(conn, ids)}
    zones = queries.community_zones(conn, community_ids=ids)
    out: list[Area] = []
    if actor.community_ids is None and len(listing) > 1:
        out.append(_area("all", None, ids, "", zones, tz))
    for level, name_of in (
        ("district", lambda c: (c.district_code, c.district)),
        ("subdistrict", lambda c: (c.subdistrict_code, c.subdistrict)),
    ):
        seen: dict[str, str] = {}
        for c in listing:
            code, name = name_of(c)
            if code and code not in seen:
                seen[code] = name or code
        for code, name in seen.items():
            members = queries.community_ids_in(conn, **{f"{level}_code": code})
            if set(members) <= set(ids) and len(members) > 1:
                out.append(_area(level, code, members, name, zones, tz))
    for c in listing:
        out.append(_area("community", c.code, [by_code[c.code]], c.name, zones, tz))
    return out


def _codes_by_id(conn: Connection, ids: Sequence[int]) -> list[tuple[int, str]]:
    rows = queries.list_communities(conn)
    wanted = set(ids)
    return [(int(r.id), str(r.code)) for r in rows if r.id in wanted]


def _area(
    level: str, code: str | None, ids: Sequence[int], name: str, zones: dict[int, str], tz: str
) -> Area:
    shared = {zones[i] for i in ids if i in zones}
    return Area(level, code, tuple(ids), name, shared.pop() if len(shared) == 1 else tz)


def area_of(
    conn: Connection,
    actor: Actor,
    *,
    tz: str,
    area: str | None = None,
    community: str | None = None,
    subdistrict: str | None = None,
    district: str | None = None,
) -> tuple[Area, list[Area]]:
    """The area asked for (``area=level:code``, or ``community``, ``subdistrict`` or
    ``district``), checked against the viewer's scope (another community's is 404, an area
    wider than the scope 403, as ``GET /v1/kpis``), and the areas to choose from. Asked for
    nothing: the viewer's own (its district, subdistrict or community), or every community."""
    if area:
        level, _, code = area.partition(":")
        if level == "all" and not code:
            community = subdistrict = district = None
        elif level in ("community", "subdistrict", "district") and code:
            community, subdistrict, district = (
                code if level == "community" else None,
                code if level == "subdistrict" else None,
                code if level == "district" else None,
            )
        else:
            raise InvalidInput(f"unknown area {area!r}", field="area")
    # The same checks as GET /v1/kpis (404 for another community, 403 beyond the scope).
    wanted = community_ids(
        conn, community=community, actor=actor, subdistrict=subdistrict, district=district
    )
    choices = areas(conn, actor, tz=tz)
    if not choices:
        raise NotFound("no community to show")
    asked = (
        ("community", community)
        if community
        else ("subdistrict", subdistrict)
        if subdistrict
        else ("district", district)
        if district
        else None
    )
    if asked is None:
        own = (
            ("district", actor.district_code)
            if actor.district_code
            else ("subdistrict", actor.subdistrict_code)
            if actor.subdistrict_code
            else None
        )
        for a in choices:
            if own is not None and (a.level, a.code) == own:
                return a, choices
        return choices[0], choices
    for a in choices:
        if (a.level, a.code) == asked:
            return a, choices
    # An area in scope that the choices leave out (a subdistrict of a single community).
    zones = queries.community_zones(conn, community_ids=wanted)
    if asked[0] != "community" and len(wanted) == 1:
        name = next((a.name for a in choices if a.community_ids == tuple(wanted)), asked[1])
        return _area(asked[0], asked[1], wanted, name, zones, tz), choices
    raise Forbidden(f"this key may not see {asked[0]} {asked[1]!r}", field=asked[0])


@dataclass(frozen=True)
class Preset:
    """A period the form offers with one tap."""

    key: str
    label: str  # English; translated on the page
    start: dt.date
    end: dt.date


def first_day(conn: Connection, area: Area) -> dt.date | None:
    """The local date of the area's first request (None before any)."""
    first = kpi_queries.first_received(conn, community_ids=area.community_ids)
    if first is None:
        return None
    if first.tzinfo is None:
        first = first.replace(tzinfo=dt.UTC)
    return first.astimezone(zone(area.timezone)).date()


def presets(conn: Connection, area: Area) -> list[Preset]:
    """This month, the last 90 days, this year and all history (from the first request)."""
    now = today(area.timezone)
    first = first_day(conn, area) or now
    return [
        Preset("month", N_("This month"), now.replace(day=1), now),
        Preset("90d", N_("Last 90 days"), now - dt.timedelta(days=89), now),
        Preset("year", N_("This year"), now.replace(month=1, day=1), now),
        Preset("all", N_("All history"), min(first, now), now),
    ]


def period_of(conn: Connection, area: Area, start: dt.date | None, end: dt.date | None) -> Period:
    """The period asked for; no start = from the area's first request, no end = today (in
    the area's zone): a monthly trend that starts with the data, not in 1970."""
    end = end or today(area.timezone)
    start = start or min(first_day(conn, area) or end, end)
    if end < start:
        raise InvalidInput(f"the period ends ({end}) before it starts ({start})", field="to")
    return Period(start, end, area.timezone)


def dashboard(
    conn: Connection,
    *,
    actor: Actor,
    area: Area,
    period: Period,
    list_rows: int = LIST_ROWS,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Everything the page shows: ``headline``, ``kpis`` (tables by name, as ``GET /v1/kpis``
    answers them), ``overdue`` and ``escalated`` (``{total, items}``)."""
    now = now or models.utcnow()
    tables = kpi_tables(
        conn,
        period=period,
        group_bys=[g for _, g in KPI_TABLES],
        actor=actor,
        now=now,
        **area.query,
    )
    kpis = {name: tables[g] for name, g in KPI_TABLES}
    total = tables["grid"]["total"]
    zones = queries.community_zones(conn, community_ids=area.community_ids)
    counts = [
        community_summary(conn, community_id=i, period=period.in_zone(zones[i]))
        for i in area.community_ids
    ]
    lists = {
        "open": _requests(conn, actor, area, status=["open"], limit=1),
        "overdue": _requests(conn, actor, area, status=["open"], overdue=True, limit=list_rows),
        "escalated": _requests(conn, actor, area, status=["escalated"], limit=list_rows),
    }
    headline = {
        "grids": sum(c["grids"] for c in counts),
        "households": sum(c["households"] for c in counts),
        "members": sum(c["members"]["total"] for c in counts),
        "received": total["received"],
        "resolved": total["resolved"],
        "resolution_rate": total["resolution_rate"],
        "closure_rate": total["closure_rate"],
        "on_time_rate": total["on_time_rate"],
        "satisfaction_rate": total["satisfaction_rate"],
        "open": lists["open"]["total"],
        "overdue": lists["overdue"]["total"],
        "escalated": lists["escalated"]["total"],
    }
    return {
        "headline": headline,
        "kpis": kpis,
        "category_names_en": category_names_en(conn),
        "overdue": lists["overdue"],
        "escalated": lists["escalated"],
    }


def _requests(
    conn: Connection,
    actor: Actor,
    area: Area,
    *,
    status: list[str],
    limit: int,
    overdue: bool | None = None,
) -> dict[str, Any]:
    """``GET /v1/requests`` of the area: the viewer's scope narrowed to the area's
    communities (never widened), oldest received first (the longest waiting on top)."""
    scope = frozenset(area.community_ids)
    if actor.community_ids is not None:
        scope &= actor.community_ids
    page = list_requests(
        conn,
        actor=replace(actor, community_ids=scope),
        filters=RequestFilter(status=status, overdue=overdue),
        limit=limit,
        newest_first=False,
    )
    names_en = {d.code: d.name_en or d.name for d in catalogue_queries.departments(conn)}
    return {"total": page["total"], "items": [_list_row(r, names_en) for r in page["items"]]}


def _when(value: str | None) -> str:
    """An ISO time of the API (already in the request's community's zone) to the minute."""
    return "" if not value else dt.datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M")


def _list_row(r: dict[str, Any], department_names_en: dict[str, str]) -> dict[str, Any]:
    a = r["assignment"]
    department = r["department"] or {}
    return {
        "id": r["id"],
        "category": r["category"]["name"],
        "category_en": r["category"]["name_en"] or r["category"]["name"],
        "grid": a["grid_name"] or a["grid_code"] or "",
        "member": a["member_display_name"] or "",
        "department": department.get("name") or "",
        "department_en": department_names_en.get(department.get("code") or "")
        or department.get("name")
        or "",
        "received_at": _when(r["received_at"]),
        "due_at": _when(r["due_at"]),
    }


# --- exports ----------------------------------------------------------------------------------


def export_table(
    conn: Connection,
    *,
    actor: Actor,
    area: Area,
    period: Period,
    table: str,
    lang: i18n.Lang,
    now: dt.datetime | None = None,
) -> tuple[list[str], list[list[Any]]]:
    """One table of the dashboard, computed alone, as (headers in ``lang``, rows)."""
    if table in LIST_TABLES:
        status, overdue = (["open"], True) if table == "overdue" else (["escalated"], None)
        listed = _requests(conn, actor, area, status=status, overdue=overdue, limit=EXPORT_ROWS)
        return list_table(listed, lang)
    groups = dict(KPI_TABLES)
    if table not in groups:
        raise InvalidInput(f"table must be one of {', '.join(TABLES)}", field="table")
    found = kpi_tables(
        conn, period=period, group_bys=[groups[table]], actor=actor, now=now, **area.query
    )
    return kpi_table(found[groups[table]], table, lang, names=category_names_en(conn))


def list_table(found: dict[str, Any], lang: i18n.Lang) -> tuple[list[str], list[list[Any]]]:
    """A list of requests (``{total, items}`` of :func:`dashboard`) as headers and rows."""
    _ = i18n.translator(lang)[0]
    headers = [_(h) for _k, h in LIST_COLUMNS]
    # English names where the catalogue has them (data without one stays as it is).
    english = {"category", "department"} if lang == "en" else set()
    rows = [[r[f"{k}_en" if k in english else k] for k, _h in LIST_COLUMNS] for r in found["items"]]
    return headers, rows


def category_names_en(conn: Connection) -> dict[str, str]:
    """The English name of each category (its Chinese one where it has none)."""
    return {
        c.code: c.name_en or c.name
        for c in catalogue_queries.categories(conn, include_inactive=True)
    }


def kpi_table(
    kpis: dict[str, Any],
    table: str,
    lang: i18n.Lang,
    *,
    names: dict[str, str] | None = None,
) -> tuple[list[str], list[list[Any]]]:
    """A KPI table (as ``GET /v1/kpis`` answers it) as headers and rows, ending with its
    total; rates stay fractions (the exports show them as percentages). On English pages the
    categories take their English ``names``."""
    _ = i18n.translator(lang)[0]
    headers = [_(GROUP_HEADERS[table])]
    if table == "grids":
        headers.append(_("Grid code"))
    headers += [_(h) for _k, h in KPI_COLUMNS]
    rows = []
    for r in kpis["rows"]:
        label = r.get("label")
        if r["key"] is None:
            label = _(NO_GROUP[table])
        if table == "categories" and lang == "en" and names and r["key"] in names:
            label = names[r["key"]]
        row: list[Any] = [label if label is not None else str(r["key"])]
        if table == "grids":
            row.append(r.get("code") or "")
        rows.append(row + [r[k] for k, _h in KPI_COLUMNS])
    last: list[Any] = [_("Total")] + ([""] if table == "grids" else [])
    rows.append(last + [kpis["total"][k] for k, _h in KPI_COLUMNS])
    return headers, rows


#: The label of the group of requests without one (outside every grid, no member …).
NO_GROUP: Final = {
    "grids": N_("Outside every grid"),
    "branches": N_("No branch"),
    "members": N_("No member"),
    "categories": N_("No category"),
    "months": N_("No month"),
}


def rate_columns(headers: Sequence[str], lang: i18n.Lang) -> set[int]:
    """Which columns of an exported KPI table hold rates."""
    _ = i18n.translator(lang)[0]
    names = {_(h) for k, h in KPI_COLUMNS if k in RATES}
    return {i for i, h in enumerate(headers) if h in names}


def to_csv(headers: Sequence[str], rows: Sequence[Sequence[Any]], lang: i18n.Lang) -> bytes:
    """CSV in UTF-8 with a BOM (Excel then reads Chinese right); rates as percentages with one
    decimal (``97.7%``, which Excel reads back as a number)."""
    rates = rate_columns(headers, lang)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(
            [
                ("" if v is None else f"{v * 100:.1f}%") if i in rates else ("" if v is None else v)
                for i, v in enumerate(row)
            ]
        )
    return buf.getvalue().encode("utf-8-sig")


def to_xlsx(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], lang: i18n.Lang, *, title: str
) -> bytes:
    """An Excel workbook (openpyxl) of one sheet: bold headers, rates as numbers shown as
    percentages (``0.977`` as ``97.7%``), blank where a rate has no denominator."""
    from openpyxl import Workbook  # an export's dependency only: not loaded by the pages
    from openpyxl.styles import Font

    rates = rate_columns(headers, lang)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    # Excel refuses sheet titles over 31 characters or with []:*?/\
    sheet.title = "".join(ch for ch in title if ch not in "[]:*?/\\")[:31] or "Sheet1"
    sheet.append(list(headers))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(list(row))
    for i in rates:
        for (cell,) in sheet.iter_rows(min_row=2, min_col=i + 1, max_col=i + 1):
            cell.number_format = "0.0%"
    for i, h in enumerate(headers):
        letter = sheet.cell(row=1, column=i + 1).column_letter
        sheet.column_dimensions[letter].width = max(10, min(40, len(str(h)) * 2 + 2))
    sheet.freeze_panes = "A2"
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()

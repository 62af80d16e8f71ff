"""The officials' dashboard (驾驶舱): ``GET /dashboard`` and its tables' exports,
``GET /dashboard/export`` (CSV with a BOM, or Excel), for officials and admins.

The figures are the library's (:mod:`geogrid.requests.dashboard`: ``GET /v1/summary``,
``GET /v1/kpis`` and ``GET /v1/requests`` as they define them); this module parses the area
and the period, renders the page, and names the files. A community's key sees its community;
a subdistrict's, a district's or an unscoped key chooses among what it may see.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import EngineDep
from api.web.render import lang_of, render
from api.web.session import require
from geogrid import bounds, i18n
from geogrid.db.models import Role
from geogrid.requests import dashboard as board

router = APIRouter(include_in_schema=False)

_WHO = (Role.OFFICIAL, Role.ADMIN)
_WHAT = "the dashboard"

Text = Annotated[str | None, Query(max_length=40)]


def _day(value: str | None, field: str) -> Any:
    """A date of the form (an empty field is no date)."""
    return bounds.parse_date(value, field=field) if value and value.strip() else None


def _area_and_period(
    conn: Any,
    request: Request,
    actor: Any,
    area: str | None,
    community: str | None,
    subdistrict: str | None,
    district: str | None,
    from_: str | None,
    to: str | None,
) -> tuple[board.Area, Any, Any]:
    """The area asked for (within the viewer's scope), its choices and the period: what the
    page and its exports both read from their parameters."""
    chosen, choices = board.area_of(
        conn,
        actor,
        tz=request.app.state.settings.service.timezone,
        area=area,
        community=community,
        subdistrict=subdistrict,
        district=district,
    )
    period = board.period_of(conn, chosen, _day(from_, "from"), _day(to, "to"))
    return chosen, choices, period


def _query(area: board.Area, period: Any, **extra: str) -> str:
    values = {"area": area.value, "from": str(period.start), "to": str(period.end), **extra}
    return urlencode(values)


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard_page(
    request: Request,
    engine: EngineDep,
    from_: Annotated[str | None, Query(alias="from", max_length=20)] = None,
    to: Annotated[str | None, Query(max_length=20)] = None,
    area: Text = None,
    community: Text = None,
    subdistrict: Text = None,
    district: Text = None,
) -> HTMLResponse:
    actor = require(request, engine, *_WHO, what=_WHAT)
    lang = lang_of(request)
    with engine.connect() as conn:
        chosen, choices, period = _area_and_period(
            conn, request, actor, area, community, subdistrict, district, from_, to
        )
        data = board.dashboard(conn, actor=actor, area=chosen, period=period)
        presets = board.presets(conn, chosen)
    tables = {
        name: board.kpi_table(data["kpis"][name], name, lang, names=data["category_names_en"])
        for name, _g in board.KPI_TABLES
    }
    lists = {name: board.list_table(data[name], lang) for name in board.LIST_TABLES}
    map_query = {**chosen.query, "audience": "official", "lang": lang}
    period_query = {"from": str(period.start), "to": str(period.end)}
    return render(
        request,
        "dashboard/dashboard.html",
        actor=actor,
        area=chosen,
        choices=choices,
        period=period,
        presets=presets,
        data=data,
        headline=data["headline"],
        tables=tables,
        lists=lists,
        rate_columns={n: board.rate_columns(h, lang) for n, (h, _r) in tables.items()},
        titles=board.TABLE_TITLES,
        charts=_charts(data["kpis"]["months"], lang),
        export=lambda table, fmt: (
            "/dashboard/export?" + _query(chosen, period, table=table, format=fmt)
        ),
        preset_url=lambda p: (
            "/dashboard?"
            + urlencode({"area": chosen.value, "from": str(p.start), "to": str(p.end)})
        ),
        # embed=1: the maps without their title box (the dashboard says what they show).
        coverage_url="/maps/coverage?" + urlencode({**map_query, **period_query, "embed": "1"}),
        hotspots_url="/maps/hotspots?" + urlencode({**map_query, **period_query, "embed": "1"}),
        list_limit=board.LIST_ROWS,
    )


def _charts(months: dict[str, Any], lang: i18n.Lang) -> dict[str, Any]:
    """The monthly trends as ECharts reads them (``dashboard.js``): labels translated, rates
    as percentages with one decimal (the API's fractions × 100)."""
    _ = i18n.translator(lang)[0]
    rows = [r for r in months["rows"] if r["key"] is not None]

    def pct(key: str) -> list[float | None]:
        return [None if r[key] is None else round(r[key] * 100, 1) for r in rows]

    return {
        "lang": lang,
        "months": [r["key"] for r in rows],
        "save": _("Save as PNG"),
        "volume": {
            "title": _("Requests by month"),
            "file": "requests_by_month",
            "series": [
                {
                    "name": _("Requests received"),
                    "type": "bar",
                    "data": [r["received"] for r in rows],
                },
                {"name": _("Resolved"), "type": "bar", "data": [r["resolved"] for r in rows]},
                {
                    "name": _("Resolution rate"),
                    "type": "line",
                    "rate": True,
                    "data": pct("resolution_rate"),
                },
            ],
        },
        "rates": {
            "title": _("Rates by month"),
            "file": "rates_by_month",
            "series": [
                {"name": _(label), "type": "line", "rate": True, "data": pct(key)}
                for key, label in (
                    ("closure_rate", board.N_("Closure rate")),
                    ("on_time_rate", board.N_("On-time rate")),
                    ("satisfaction_rate", board.N_("Satisfaction")),
                )
            ],
        },
    }


@router.get("/dashboard/export")
def dashboard_export(
    request: Request,
    engine: EngineDep,
    table: Annotated[Literal[board.TABLES], Query()],  # type: ignore[valid-type]
    format: Annotated[Literal["csv", "xlsx"], Query()] = "csv",
    from_: Annotated[str | None, Query(alias="from", max_length=20)] = None,
    to: Annotated[str | None, Query(max_length=20)] = None,
    area: Text = None,
    community: Text = None,
    subdistrict: Text = None,
    district: Text = None,
) -> Response:
    """One table of the dashboard as a file: headers in the page's language, the same
    numbers as the page (rates as percentages)."""
    actor = require(request, engine, *_WHO, what=_WHAT)
    lang = lang_of(request)
    with engine.connect() as conn:
        chosen, _choices, period = _area_and_period(
            conn, request, actor, area, community, subdistrict, district, from_, to
        )
        headers, rows = board.export_table(
            conn, actor=actor, area=chosen, period=period, table=table, lang=lang
        )
    name = f"dashboard_{table}_{chosen.code or 'all'}_{period.start}_{period.end}.{format}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "xlsx":
        title = i18n.translate(lang, board.TABLE_TITLES[table])
        return Response(
            board.to_xlsx(headers, rows, lang, title=title),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers=disposition,
        )
    return Response(
        board.to_csv(headers, rows, lang),
        media_type="text/csv; charset=utf-8",
        headers=disposition,
    )

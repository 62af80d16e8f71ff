"""``GET /v1/kpis``: the request KPIs of a period, grouped, as JSON or CSV."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.auth import OPEN, ActorDep
from api.deps import ConnDep, SettingsDep
from api.params import Day
from api.schemas.common import ErrorEnvelope
from api.schemas.requests import KpiTable
from geogrid.periods import period
from geogrid.requests.kpis import GROUPS, kpis, to_csv

router = APIRouter(prefix="/v1", tags=["kpis"])


@router.get(
    "/kpis",
    openapi_extra=OPEN,
    response_model=KpiTable,
    # ``code`` is in a row only when grouped by community or grid: keys left out stay out.
    response_model_exclude_unset=True,
    summary="KPIs of requests received in a period, grouped (JSON or CSV)",
    responses={
        200: {"content": {"text/csv": {}}},
        401: {"model": ErrorEnvelope},
        403: {"model": ErrorEnvelope},
        404: {"model": ErrorEnvelope},
        422: {"model": ErrorEnvelope},
    },
)
def get_kpis(
    conn: ConnDep,
    settings: SettingsDep,
    actor: ActorDep,
    from_: Annotated[
        Day | None,
        Query(alias="from", description="First received date (inclusive)", examples=["2017-07-01"]),
    ] = None,
    to: Annotated[
        Day | None, Query(description="Last received date (inclusive)", examples=["2018-04-18"])
    ] = None,
    group_by: Annotated[
        Literal[GROUPS] | None,  # type: ignore[valid-type]
        Query(description="The grouping of the rows; none = totals only"),
    ] = None,
    community: Annotated[str | None, Query(description="Community code")] = None,
    subdistrict: Annotated[
        str | None, Query(description="The communities of this subdistrict code")
    ] = None,
    district: Annotated[
        str | None, Query(description="The communities of this district code")
    ] = None,
    format: Annotated[Literal["json", "csv"], Query(description="json or csv")] = "json",
) -> Any:
    """received, registered, dispatched, resolved, closed, resolution_rate (resolved ÷
    received), closure_rate (closed ÷ due), on_time_rate, median and p90 hours to resolve,
    escalations, overdue_open, satisfaction, visit coverage (docs/api.md, "KPIs").
    Grouping by member needs an official, planner or admin key."""
    p = period(from_, to, tz=settings.service.timezone)
    table = kpis(
        conn,
        period=p,
        group_by=group_by,
        community=community,
        actor=actor,
        subdistrict=subdistrict,
        district=district,
    )
    if format == "csv":
        name = f"kpis_{p.start}_{p.end}_{group_by or 'total'}.csv"
        return Response(
            to_csv(table).encode("utf-8-sig"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return table

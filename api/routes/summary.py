"""``GET /v1/summary``: headline figures per community for a period."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import ConnDep, SettingsDep
from api.params import Day
from api.schemas.common import ErrorEnvelope
from api.schemas.summary import SummaryOut
from geogrid.periods import period
from geogrid.summary import summary as build_summary

router = APIRouter(prefix="/v1", tags=["summary"])


@router.get(
    "/summary",
    response_model=SummaryOut,
    summary="Counts per community; requests received and resolved in a period",
    responses={422: {"model": ErrorEnvelope}, 404: {"model": ErrorEnvelope}},
)
def get_summary(
    conn: ConnDep,
    settings: SettingsDep,
    from_: Annotated[
        Day | None,
        Query(
            alias="from",
            description="First received date, inclusive (local time); default: all history",
            examples=["2017-07-01"],
        ),
    ] = None,
    to: Annotated[
        Day | None,
        Query(description="Last received date, inclusive; default: today", examples=["2018-04-18"]),
    ] = None,
    community: Annotated[
        str | None, Query(description="Only this community code", examples=["441302011005"])
    ] = None,
    subdistrict: Annotated[
        str | None,
        Query(description="Only the communities of this subdistrict code", examples=["441302011"]),
    ] = None,
    district: Annotated[
        str | None,
        Query(description="Only the communities of this district code", examples=["441302"]),
    ] = None,
) -> Any:
    """Grids, branches, members by kind, households and requests (by received date) with the
    resolution rate = resolved ÷ received. Dates are local dates in each community's zone."""
    p = period(from_, to, tz=settings.service.timezone)
    return build_summary(
        conn,
        period=p,
        community_code=community,
        subdistrict_code=subdistrict,
        district_code=district,
    )

"""Communities: by code (the one "community by code, else 404"), by id, their boundaries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import shapely
from geoalchemy2 import functions as gfunc
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, select

from geogrid.db import models
from geogrid.errors import Conflict, NotFound


class CommunityRow(NamedTuple):
    """A community as most callers need it."""

    id: int
    code: str
    name: str
    name_en: str | None
    timezone: str
    synthetic: bool


class CommunityName(NamedTuple):
    id: int
    code: str
    name: str


class CommunityPlaces(NamedTuple):
    """A community with its place names (the prefixes an address may carry)."""

    id: int
    code: str
    name: str
    name_en: str | None
    province: str | None
    city: str | None
    district: str | None
    subdistrict: str | None


class CommunityListing(NamedTuple):
    """A community as ``GET /v1/communities`` lists it (public: no boundary, no people)."""

    code: str
    name: str
    name_en: str | None
    subdistrict: str | None
    subdistrict_code: str | None
    district: str | None
    district_code: str | None
    city: str | None
    province: str | None
    country: str
    timezone: str
    synthetic: bool
    #: The active boundary plan's version, None before the first activation.
    plan_version: int | None


_COMMUNITY_COLUMNS = (
    models.Community.id,
    models.Community.code,
    models.Community.name,
    models.Community.name_en,
    models.Community.timezone,
    models.Community.synthetic,
)


def community_row(
    conn: Connection, *, code: str | None = None, field: str = "community"
) -> CommunityRow:
    """The community's row (``id``, ``code``, ``name``, …); the only one when ``code`` is None.

    The one "community by code, else 404": ``field`` names the parameter that carried the
    code (``community``, Open311's ``jurisdiction_id``) in the error."""
    stmt = select(*_COMMUNITY_COLUMNS)
    if code is not None:
        row = conn.execute(stmt.where(models.Community.code == code)).one_or_none()
        if row is None:
            raise NotFound(f"no community with code {code!r}", field=field)
        return CommunityRow(*row)
    rows = conn.execute(stmt.order_by(models.Community.code)).all()
    if not rows:
        raise NotFound("the database holds no community yet: import one or run `geogrid demo`")
    if len(rows) > 1:
        codes = ", ".join(r.code for r in rows)
        raise Conflict(f"several communities ({codes}): name one with --community", field=field)
    return CommunityRow(*rows[0])


def community_by_id(conn: Connection, *, community_id: int) -> CommunityRow:
    """Community ``community_id`` (it must exist)."""
    row = conn.execute(select(*_COMMUNITY_COLUMNS).where(models.Community.id == community_id)).one()
    return CommunityRow(*row)


def list_communities(conn: Connection) -> list[CommunityName]:
    """Every community's id, code and name, ordered by code."""
    rows = conn.execute(
        select(models.Community.id, models.Community.code, models.Community.name).order_by(
            models.Community.code
        )
    ).all()
    return [CommunityName(*r) for r in rows]


def community_listing(
    conn: Connection, *, subdistrict_code: str | None = None, district_code: str | None = None
) -> list[CommunityListing]:
    """Every community (of a subdistrict or a district, when given), ordered by code."""
    c, p = models.Community, models.BoundaryPlan
    stmt = (
        select(
            c.code,
            c.name,
            c.name_en,
            c.subdistrict,
            c.subdistrict_code,
            c.district,
            c.district_code,
            c.city,
            c.province,
            c.country,
            c.timezone,
            c.synthetic,
            p.version,
        )
        .outerjoin(p, (p.community_id == c.id) & (p.status == models.PlanStatus.ACTIVE.value))
        .order_by(c.code)
    )
    if subdistrict_code is not None:
        stmt = stmt.where(c.subdistrict_code == subdistrict_code)
    if district_code is not None:
        stmt = stmt.where(c.district_code == district_code)
    return [CommunityListing._make(r) for r in conn.execute(stmt).all()]


def community_ids_in(
    conn: Connection, *, subdistrict_code: str | None = None, district_code: str | None = None
) -> list[int]:
    """The ids of the communities of a subdistrict or a district (by code), by code."""
    c = models.Community
    stmt = select(c.id).order_by(c.code)
    if subdistrict_code is not None:
        stmt = stmt.where(c.subdistrict_code == subdistrict_code)
    if district_code is not None:
        stmt = stmt.where(c.district_code == district_code)
    return [int(i) for i in conn.execute(stmt).scalars()]


def community_zones(conn: Connection, *, community_ids: Iterable[int]) -> dict[int, str]:
    """The time zone of each of ``community_ids`` (IANA names)."""
    c = models.Community
    ids = sorted(set(community_ids))
    rows = conn.execute(select(c.id, c.timezone).where(c.id.in_(ids))).all()
    return {int(i): str(tz) for i, tz in rows}


def community_codes(conn: Connection, *, community_ids: Iterable[int]) -> list[str]:
    """The codes of ``community_ids``, sorted."""
    c = models.Community
    ids = sorted(set(community_ids))
    return [
        str(x) for x in conn.execute(select(c.code).where(c.id.in_(ids)).order_by(c.code)).scalars()
    ]


def community_boundary(conn: Connection, *, community_id: int) -> BaseGeometry:
    """The community's boundary (EPSG:4326)."""
    b = conn.execute(
        select(gfunc.ST_AsBinary(models.Community.boundary)).where(
            models.Community.id == community_id
        )
    ).scalar_one()
    return shapely.from_wkb(bytes(b))


def lookup_communities(conn: Connection) -> list[CommunityPlaces]:
    """Every community with its place names (the address prefixes), ordered by code."""
    c = models.Community
    rows = conn.execute(
        select(
            c.id, c.code, c.name, c.name_en, c.province, c.city, c.district, c.subdistrict
        ).order_by(c.code)
    ).all()
    return [CommunityPlaces(*r) for r in rows]


def member_community_id(conn: Connection, *, member_id: int) -> int | None:
    """The community of member ``member_id`` (None when there is no such member)."""
    return conn.execute(
        select(models.Member.community_id).where(models.Member.id == member_id)
    ).scalar_one_or_none()

"""The geogrid data model: one set of SQLAlchemy 2 / GeoAlchemy2 models for both backends.

Geometries are stored in EPSG:4326 (WGS 84). CGCS2000 (EPSG:4490) input is accepted as equal:
the two frames agree to well under a metre. GCJ-02 and BD-09 are converted on the way in
(``geogrid.crs``), never stored.

Personal data is kept apart from public data: household heads, phones and care flags live in
``household_personal``; member names are stored but only ever shown masked (张*明) outside a
role given the right to read them (see docs/api.md).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, cast

from geoalchemy2 import Geometry
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SRID = 4326

# Constraint names are spelled out so migrations are stable on both backends.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware datetimes stored as UTC on both backends.

    SQLite has no time zone type; storing naive UTC there and ``timestamptz`` on PostgreSQL
    gives the same aware values back on both. Naive input is refused: a time without a zone
    is ambiguous in a service used across time zones.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise ValueError(f"naive or non-datetime value {value!r}: give a time zone")
        utc = value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        stored: dt.datetime = value
        if stored.tzinfo is None:
            return stored.replace(tzinfo=dt.UTC)
        return stored.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _geom(kind: str, *, nullable: bool = False) -> Any:
    return mapped_column(Geometry(kind, srid=SRID, spatial_index=True), nullable=nullable)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def table(model: type[Base]) -> Table:
    """The Core table of a model (for executemany statements with bind parameters)."""
    return cast(Table, model.__table__)


class PlanStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    RETIRED = "retired"


class MemberKind(StrEnum):
    """The five kinds of member (glossary)."""

    RESIDENT = "resident"  # membership in the community
    REGISTERED_ELSEWHERE = "registered_elsewhere"
    DUTY_POST = "duty_post"  # 市区党员责任岗, from a resident unit
    NEW_ORG = "new_org"  # 两新组织
    STATIONED = "stationed"  # 驻点工作人员


class Programme(StrEnum):
    """五大工程."""

    CONVENIENCE = "convenience"  # 便民
    INTEGRATION = "integration"  # 融入
    CARE = "care"  # 关爱
    MEDIATION = "mediation"  # 调处
    SAFETY = "safety"  # 平安


class CategoryClass(StrEnum):
    """GB/T 30428: 部件 (components) and 事件 (events)."""

    COMPONENT = "component"
    EVENT = "event"


class RequestStatus(StrEnum):
    """States of a request, after the GB/T 30428 case workflow."""

    RECEIVED = "received"  # 受理
    REGISTERED = "registered"  # 立案
    DISPATCHED = "dispatched"  # 派遣 (the SLA clock starts)
    IN_PROGRESS = "in_progress"  # 处置
    ESCALATED = "escalated"  # 上报/提级
    RESOLVED = "resolved"  # 处置反馈
    CLOSED = "closed"  # 核查结案
    REJECTED = "rejected"  # 不予受理


#: Statuses that count as resolved in the resolution rate (resolved ÷ received).
RESOLVED_STATUSES = (RequestStatus.RESOLVED.value, RequestStatus.CLOSED.value)
#: Statuses of requests still open (re-routed when a plan is activated).
OPEN_STATUSES = tuple(
    s.value
    for s in RequestStatus
    if s not in (RequestStatus.RESOLVED, RequestStatus.CLOSED, RequestStatus.REJECTED)
)


def _enum_check(column: str, enum: type[StrEnum]) -> CheckConstraint:
    values = ", ".join(f"'{e.value}'" for e in enum)
    return CheckConstraint(f"{column} IN ({values})", name=f"{column}_valid")


class Community(Base):
    """An administrative community (社区) with its boundary."""

    __tablename__ = "communities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: 12 digits for Chinese communities: 6 district (GB/T 2260) + 3 subdistrict + 3 community.
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    subdistrict: Mapped[str | None] = mapped_column(String(200))
    #: 9 digits for a Chinese subdistrict (街道: the county's 6 + 3), as the community code's head.
    subdistrict_code: Mapped[str | None] = mapped_column(String(32), index=True)
    district: Mapped[str | None] = mapped_column(String(200))
    #: 6 digits for a Chinese county-level district (区/县, GB/T 2260).
    district_code: Mapped[str | None] = mapped_column(String(32), index=True)
    city: Mapped[str | None] = mapped_column(String(200))
    province: Mapped[str | None] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2), default="CN")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)
    boundary: Mapped[Any] = _geom("MULTIPOLYGON")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class DataSource(Base):
    """Where a community's layers came from, under which licence (an OpenStreetMap extract
    is ODbL: its attribution goes into exports and the maps)."""

    __tablename__ = "data_sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE")
    )
    #: ``osm`` for an OpenStreetMap extract, ``file`` for a layer imported from a file.
    kind: Mapped[str] = mapped_column(String(16))
    #: The file's name (never a server path) or the dataset's.
    name: Mapped[str] = mapped_column(String(300))
    licence: Mapped[str | None] = mapped_column(String(64))
    attribution: Mapped[str | None] = mapped_column(String(300))
    url: Mapped[str | None] = mapped_column(String(500))
    sha256: Mapped[str | None] = mapped_column(String(64))
    #: The layers taken from it (``buildings``, ``streets`` …).
    layers: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: When the data were current (an OSM extract's replication timestamp), if known.
    data_timestamp: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class BoundaryPlan(Base):
    """A versioned set of grids (网格划分方案); one active per community, history kept."""

    __tablename__ = "boundary_plans"
    __table_args__ = (
        UniqueConstraint("community_id", "version", name="uq_boundary_plans_version"),
        _enum_check("status", PlanStatus),
        # At most one active plan per community, enforced by the database on both backends.
        Index(
            "uq_boundary_plans_one_active",
            "community_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=PlanStatus.DRAFT.value)
    source: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    #: The plan that was active when this draft was made; activation refuses a stale base.
    base_plan_id: Mapped[int | None] = mapped_column(ForeignKey("boundary_plans.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    grids: Mapped[list[Grid]] = relationship(back_populates="plan", cascade="all, delete-orphan")


class Grid(Base):
    """A grid (网格): a closed polygon of one boundary plan."""

    __tablename__ = "grids"
    __table_args__ = (UniqueConstraint("plan_id", "code", name="uq_grids_plan_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("boundary_plans.id", ondelete="CASCADE"))
    #: 15 digits for Chinese communities (community code + 3-digit sequence), free elsewhere.
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(200))
    lead_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL")
    )
    geom: Mapped[Any] = _geom("MULTIPOLYGON")

    plan: Mapped[BoundaryPlan] = relationship(back_populates="grids")


class PlanAction(StrEnum):
    ACTIVATE = "activate"
    ROLLBACK = "rollback"


class PlanEvent(Base):
    """One activation or rollback of a boundary plan, with what it did (history kept).

    ``report`` is the activation report (counts, clipped fields with their cut-off
    households, branches re-mapped); ``previous_plan_id`` is the plan it replaced, which a
    rollback re-activates.
    """

    __tablename__ = "plan_events"
    __table_args__ = (_enum_check("action", PlanAction),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    plan_id: Mapped[int] = mapped_column(ForeignKey("boundary_plans.id", ondelete="CASCADE"))
    previous_plan_id: Mapped[int | None] = mapped_column(
        ForeignKey("boundary_plans.id", ondelete="SET NULL")
    )
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class FieldRevision(Base):
    """A responsibility field as it was before an activation clipped it (for rollback)."""

    __tablename__ = "field_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(
        ForeignKey("plan_events.id", ondelete="CASCADE"), index=True
    )
    field_id: Mapped[int] = mapped_column(
        ForeignKey("responsibility_fields.id", ondelete="CASCADE")
    )
    #: The previous geometry as WKB (EPSG:4326): history, never queried spatially.
    geom_wkb: Mapped[bytes] = mapped_column(LargeBinary)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    review_note: Mapped[str | None] = mapped_column(Text)


class Branch(Base):
    """A party branch (党支部); sits on zero or more grids."""

    __tablename__ = "branches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))


class BranchGrid(Base):
    """Which grids a branch sits on (re-mapped when a plan is activated)."""

    __tablename__ = "branch_grids"

    branch_id: Mapped[int] = mapped_column(
        ForeignKey("branches.id", ondelete="CASCADE"), primary_key=True
    )
    grid_id: Mapped[int] = mapped_column(
        ForeignKey("grids.id", ondelete="CASCADE"), primary_key=True
    )
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)


class ResidentUnit(Base):
    """A resident unit (驻区单位) that posts duty_post members."""

    __tablename__ = "resident_units"
    __table_args__ = (UniqueConstraint("community_id", "name", name="uq_resident_units_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))


class Street(Base):
    """A named road or lane (路/街/巷)."""

    __tablename__ = "streets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str | None] = mapped_column(String(8))
    geom: Mapped[Any] = _geom("MULTILINESTRING")


class Building(Base):
    """A building (楼宇) with its compound (小区) and aliases; a MULTIPOLYGON, since courtyard
    buildings and OpenStreetMap multipolygon relations have several parts."""

    __tablename__ = "buildings"
    __table_args__ = (
        # Re-running an OSM import matches on (community, type, id); NULLs never collide.
        Index("uq_buildings_osm", "community_id", "osm_type", "osm_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(200))
    compound: Mapped[str | None] = mapped_column(String(200))
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    street_id: Mapped[int | None] = mapped_column(ForeignKey("streets.id", ondelete="SET NULL"))
    #: The street its address names, as written (linked to ``street_id`` when the streets layer
    #: has it; an OSM ``addr:street`` often names a street drawn outside the community).
    street_name: Mapped[str | None] = mapped_column(String(200))
    house_number: Mapped[str | None] = mapped_column(String(32))
    floors: Mapped[int | None] = mapped_column(Integer)
    #: The OpenStreetMap element it came from (``way`` or ``relation`` and its id), if any.
    osm_type: Mapped[str | None] = mapped_column(String(8))
    osm_id: Mapped[int | None] = mapped_column(BigInteger)
    geom: Mapped[Any] = _geom("MULTIPOLYGON")


class Group(Base):
    """A party group (党小组) sitting on a building."""

    __tablename__ = "party_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id", ondelete="SET NULL"))


class Member(Base):
    """A party member or grid worker (党员/网格员). ``name`` and ``phone`` are personal data."""

    __tablename__ = "members"
    __table_args__ = (_enum_check("kind", MemberKind),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    home_unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("resident_units.id", ondelete="SET NULL")
    )
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id", ondelete="SET NULL"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("party_groups.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: A position for maps (home or post); shown on officials' maps only.
    position: Mapped[Any] = _geom("POINT", nullable=True)


class ResponsibilityField(Base):
    """A responsibility field (责任田): a polygon inside a grid held by one member.

    ``member_id`` NULL is a vacancy: requests fall back to the grid's lead member.
    """

    __tablename__ = "responsibility_fields"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    name: Mapped[str | None] = mapped_column(String(200))
    street_id: Mapped[int | None] = mapped_column(ForeignKey("streets.id", ondelete="SET NULL"))
    #: The grid of the active plan that holds the field (set by assignment).
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"))
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    review_note: Mapped[str | None] = mapped_column(Text)
    geom: Mapped[Any] = _geom("MULTIPOLYGON")


class Household(Base):
    """A household (户): a point at its door and a structured address with a stable id."""

    __tablename__ = "households"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    #: Stable across re-imports; the key other systems keep.
    address_id: Mapped[str] = mapped_column(String(64), unique=True)
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id", ondelete="SET NULL"))
    street_id: Mapped[int | None] = mapped_column(ForeignKey("streets.id", ondelete="SET NULL"))
    street_name: Mapped[str | None] = mapped_column(String(200))
    house_number: Mapped[str | None] = mapped_column(String(32))
    compound: Mapped[str | None] = mapped_column(String(200))
    building_name: Mapped[str | None] = mapped_column(String(200))
    unit: Mapped[str | None] = mapped_column(String(32))
    room: Mapped[str | None] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer, default=1)
    registered: Mapped[bool] = mapped_column(Boolean, default=False)
    geom: Mapped[Any] = _geom("POINT")


class HouseholdPersonal(Base):
    """Sensitive household data, kept apart: never in public responses, maps or logs."""

    __tablename__ = "household_personal"

    household_id: Mapped[int] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), primary_key=True
    )
    head_name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(64))
    care_flags: Mapped[list[str]] = mapped_column(JSON, default=list)


class HouseholdAssignment(Base):
    """Which grid and field hold each household under one plan.

    One row per (plan, household) covered by a grid; households outside every grid have no
    row and are reported by the assignment. Written set-based by ``geogrid.db.dialect``.
    On PostgreSQL the table is LIST-partitioned by plan (migration 0004): a plan's rows are
    built as a new partition and attached, far faster than row-by-row inserts.
    """

    __tablename__ = "household_assignments"
    __table_args__ = ({"postgresql_partition_by": "LIST (plan_id)"},)

    plan_id: Mapped[int] = mapped_column(
        ForeignKey("boundary_plans.id", ondelete="CASCADE"), primary_key=True
    )
    household_id: Mapped[int] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), primary_key=True
    )
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"))
    field_id: Mapped[int | None] = mapped_column(
        ForeignKey("responsibility_fields.id", ondelete="SET NULL")
    )


class Department(Base):
    """A higher department (上级部门) requests can be escalated to."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))


class Category(Base):
    """A request category of the catalogue: programme, class, SLA and default department."""

    __tablename__ = "categories"
    __table_args__ = (
        _enum_check("programme", Programme),
        _enum_check("category_class", CategoryClass),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    programme: Mapped[str] = mapped_column(String(32))
    category_class: Mapped[str] = mapped_column(String(16))
    subclass: Mapped[str | None] = mapped_column(String(64))
    sla_hours: Mapped[int] = mapped_column(Integer, default=72)
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL")
    )
    #: Open311 service definition attributes: ``[{code, datatype, required, description,
    #: order, values: [{key, name}]}]``; None when the service takes none.
    attributes: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    #: Retired categories stay for history but take no new requests.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class Request(Base):
    """A resident's request (诉求): located, categorised, assigned, tracked."""

    __tablename__ = "requests"
    __table_args__ = (
        _enum_check("status", RequestStatus),
        Index("uq_requests_token", "token", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE"), index=True
    )
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    programme: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(32))
    address_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=RequestStatus.RECEIVED.value)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    registered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    escalated_to_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    satisfaction: Mapped[str | None] = mapped_column(String(16))
    #: Assignment (grid → responsibility field → member); set by assignment, kept when closed.
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"))
    field_id: Mapped[int | None] = mapped_column(
        ForeignKey("responsibility_fields.id", ondelete="SET NULL")
    )
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    #: How the member was found: 'field', 'grid_lead', or 'none' (outside every grid).
    assignment_rule: Mapped[str | None] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    geom: Mapped[Any] = _geom("POINT")
    #: Open311 ``token`` (random, unguessable): the reporter's handle on the request.
    token: Mapped[str | None] = mapped_column(String(64))
    #: Why the request needs an official's eye: ``outside_grids`` (routed to the community).
    flag: Mapped[str | None] = mapped_column(String(32))
    #: Open311 ``attribute[code]`` values, checked against the category's definition.
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: The reporter's evaluation (评价): ``satisfaction`` above plus a comment and a time.
    satisfaction_comment: Mapped[str | None] = mapped_column(Text)
    evaluated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: When the ``request.overdue`` notification went out (once per SLA deadline).
    overdue_notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class RequestEvent(Base):
    """One state change of a request: who, when, from, to, note. Never edited."""

    __tablename__ = "request_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str | None] = mapped_column(String(200))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    #: The workflow action (``receive``, ``register``, ``dispatch``, …, ``reassign``).
    action: Mapped[str | None] = mapped_column(String(32))
    #: The role the actor acted in (``official``, ``member``, …): what the public may see.
    actor_role: Mapped[str | None] = mapped_column(String(16))
    #: The request's ``version`` after the change.
    version: Mapped[int | None] = mapped_column(Integer)
    #: What else changed (member, department, satisfaction …), as public ids and codes.
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Visit(Base):
    """A member's visit to a household (分类走访)."""

    __tablename__ = "visits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    household_id: Mapped[int] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    visited_on: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)


class DataVersion(Base):
    """Change counters, bumped by triggers, polled by in-memory indexes.

    ``spatial`` counts changes to plans, grids, fields, members, branches and groups (the
    lookup index); ``gazetteer`` counts changes to households, buildings and streets (the
    address index). A running server compares a counter instead of re-reading the data, so a
    change made by another process (the CLI) is seen within the poll interval. Requests do
    not bump them: filing requests must not rebuild indexes.
    """

    __tablename__ = "data_versions"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class CommunityVersion(Base):
    """Per-community change counters, bumped by the same triggers' statements as
    :class:`DataVersion` (migration 0013).

    The lookup service polls the global counters (one small read); when one moved it reads
    these (one row per community) and rebuilds only the communities whose counter moved
    (a city holds ~1,000). No foreign key: a deleted community's row stays, so its counter
    never goes back and a recreated community is always seen as changed.
    """

    __tablename__ = "community_versions"

    community_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    spatial: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    gazetteer: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class InstanceSecret(Base):
    """Secrets this installation makes for itself and keeps (``pseudonyms``: the key of the
    keyed hash that stands for address ids in default exports, stable across exports)."""

    __tablename__ = "instance_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


#: Which tables bump which counter (the triggers are made by migration 0002; the per-community
#: counters of ``community_versions`` by migration 0013).
VERSIONED_TABLES: dict[str, tuple[str, ...]] = {
    "spatial": (
        "boundary_plans",
        "grids",
        "responsibility_fields",
        "members",
        "branches",
        "branch_grids",
        "party_groups",
        "communities",
    ),
    "gazetteer": ("households", "buildings", "streets"),
}


# --- requests workflow: access, media, contacts, notifications (migration 0003) -------------


class Role(StrEnum):
    """Roles of API keys (docs/api.md, "Access")."""

    PUBLIC = "public"  # apps filing through Open311: no personal data, ever
    MEMBER = "member"  # a grid member: own field, own households, own requests
    DEPARTMENT = "department"  # a higher department: what is escalated to it
    OFFICIAL = "official"  # a community's or district's officials: everything, names masked
    PLANNER = "planner"  # boundary planners: grids and plans
    ADMIN = "admin"  # keys, webhooks, catalogue


class ApiKey(Base):
    """An API key: only a SHA-256 hash of the secret is stored; the key is shown once.

    ``community_id`` NULL is a district-wide key. ``personal_data`` is the right to read
    unmasked personal data (every such read is logged in ``audit_log``).
    """

    __tablename__ = "api_keys"
    __table_args__ = (_enum_check("role", Role),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The public part of the key (``gg_<prefix>_…``), to find the row without the secret.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE")
    )
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL")
    )
    personal_data: Mapped[bool] = mapped_column(Boolean, default=False)
    #: A key may be scoped to a subdistrict or a district instead of one community.
    subdistrict_code: Mapped[str | None] = mapped_column(String(32))
    district_code: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ApiSession(Base):
    """A browser session (cookie) opened by signing in with a key; the token is hashed."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class RequestContact(Base):
    """The reporter's contact details (Open311 optional fields): personal data, kept apart."""

    __tablename__ = "request_contacts"

    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True
    )
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(64))
    device_id: Mapped[str | None] = mapped_column(String(200))
    account_id: Mapped[str | None] = mapped_column(String(200))
    #: The address as the reporter wrote it (may hold unit and room).
    address_string: Mapped[str | None] = mapped_column(Text)


class RequestMedia(Base):
    """A photo of a request: uploaded (``data``) or linked (``url``, Open311 ``media_url``)."""

    __tablename__ = "request_media"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("request_events.id", ondelete="SET NULL")
    )
    url: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(String(100))
    filename: Mapped[str | None] = mapped_column(String(200))
    size: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: Stored before photos were checked (migration 0006) and failed the check: served only
    #: as an ``application/octet-stream`` attachment.
    quarantined: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false"), nullable=False
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Webhook(Base):
    """An outbound webhook: ``events`` it wants, signed with ``secret`` (HMAC-SHA256).

    The secret is stored as given: the service needs it to sign every delivery.
    """

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(128))
    events: Mapped[list[str]] = mapped_column(JSON)
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE")
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookDelivery(Base):
    """One notification to one webhook (an outbox row written with the change itself)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (_enum_check("status", DeliveryStatus),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(32))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id", ondelete="SET NULL"))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class WebhookAttempt(Base):
    """The log of every delivery attempt: when, the answer, how long it took."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)


class AuditEntry(Base):
    """One entry of the audit log: a read of personal data or a write (issue 14).

    Who (``api_key_id``, ``actor`` label, ``role``), what (``action`` on ``subject`` /
    ``subject_id``, the ``fields`` touched — names only, never the values), when (``at``),
    from where (``client``: the HTTP client's address, or the operator's login and host for a
    command) and through what (``via``: the route or the command). ``details`` holds counts,
    statuses and public ids and codes — never personal values.

    Append-only: triggers (migration 0011, ``geogrid.db.dialect.audit_trigger_ddl``) refuse
    every UPDATE and every DELETE except the prune of entries older than the kept period
    (``geogrid.audit.prune``, under a :class:`PrivacyPermit`). No foreign keys: an entry
    outlives the key, member or request it names, and an ``ON DELETE SET NULL`` would be an
    UPDATE the triggers refuse.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_subject", "subject", "subject_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    api_key_id: Mapped[int | None] = mapped_column(Integer)
    #: The actor's label: ``key <prefix> <name> (<role>)``, or ``cli`` for a command.
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(16))
    #: The HTTP client's address, or ``<login>@<host>`` of the operator running a command.
    client: Mapped[str | None] = mapped_column(String(200))
    #: ``POST /v1/requests/{request_id}/{action}`` or ``geogrid members add``.
    via: Mapped[str | None] = mapped_column(String(200))
    #: ``read``, ``export``, ``create``, ``update``, a workflow action, ``import`` … (docs/api.md).
    action: Mapped[str] = mapped_column(String(32))
    #: ``request``, ``request_contact``, ``member``, ``household``, ``key``, ``plan`` …
    subject: Mapped[str] = mapped_column(String(32))
    #: The subject's id or code (text: categories and keys are named by code and prefix).
    subject_id: Mapped[str | None] = mapped_column(String(64))
    fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class PrivacyPermit(Base):
    """A permit of the operator's duties to change what the triggers otherwise keep.

    ``audit_prune`` (with ``before``): the audit log's DELETE trigger lets go the entries
    older than ``before``. ``erase``: the ``request_events`` UPDATE trigger lets an erasure
    clear a note or a name (the actor's label), and nothing else of an event. A permit is
    written and removed inside the one transaction of the duty that needs it
    (``geogrid.db.queries.audit.permit``): never committed, so no other transaction sees it.
    """

    __tablename__ = "privacy_permits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    before: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class LoginFailure(Base):
    """A wrong key typed at ``/login``, by client address: the throttle counts them here, in
    the database, so that it holds across the workers of one service (issue 14)."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_client_at", "client", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class SignInLink(Base):
    """A one-time sign-in link (or its QR code) that an official prints for a grid member:
    valid 24 hours, single use; only a SHA-256 hash of its token is stored (issue 15). It signs
    in as ``api_key_id``, the member's key (made for the purpose when the member has none)."""

    __tablename__ = "sign_in_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    #: Who printed it (the official's key label), for the audit trail.
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class IntakeAttempt(Base):
    """A request filed on the public intake page, by client address: the intake's rate limit
    (5 an hour, 20 a day per address) counts them here, across the service's workers."""

    __tablename__ = "intake_attempts"
    __table_args__ = (Index("ix_intake_attempts_client_at", "client", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

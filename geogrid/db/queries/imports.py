"""The reads and writes of ``geogrid import`` (``geogrid.io.importer``) and the demo loader.

The importer validates a file and plans an upsert per layer; these functions fetch what it
matches against (stored rows by natural key, ids by name, the catalogue) and write its
updates. Inserts go through ``geogrid.db.queries.insert_returning_ids`` and ``bulk_insert``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import ColumnElement, Connection, bindparam, select, true, update

from geogrid.db import dialect, models, queries

#: A stored row by column name (``id`` and the columns asked for), geometries as shapely
#: objects: the importer compares it value by value with a file's row.
StoredRow = dict[str, Any]
#: Columns holding a geometry (read as WKB, returned as shapely objects).
_GEOMETRY_COLUMNS = ("geom", "position", "boundary")
# --- stored rows the importer upserts against ------------------------------------------------


def _stored(
    conn: Connection, model: type[models.Base], columns: Iterable[str], where: ColumnElement[bool]
) -> list[StoredRow]:
    """Stored rows (``id`` + ``columns``) with geometries as shapely objects."""
    cols = list(dict.fromkeys(["id", *columns]))
    table = models.table(model)
    selected = [queries.wkb(table.c[c], c) if c in _GEOMETRY_COLUMNS else table.c[c] for c in cols]
    rows = conn.execute(select(*selected).where(where)).mappings().all()
    out = []
    for r in rows:
        row = dict(r)
        for c in _GEOMETRY_COLUMNS:
            if c in row and row[c] is not None:
                row[c] = shapely.from_wkb(bytes(row[c]))
        out.append(row)
    return out


def stored_rows(
    conn: Connection, *, model: type[models.Base], columns: Sequence[str], community_id: int
) -> list[StoredRow]:
    """A community's rows of ``model``: ``id`` + ``columns``, geometries as shapely objects."""
    return _stored(conn, model, columns, models.table(model).c.community_id == community_id)


def stored_communities(conn: Connection, *, columns: Sequence[str]) -> list[StoredRow]:
    """Every community: ``id`` + ``columns`` (``boundary`` as a shapely object)."""
    return _stored(conn, models.Community, columns, true())


class ActiveGrid(NamedTuple):
    """A grid of a community's active plan."""

    community_id: int
    plan_version: int
    code: str
    geom: BaseGeometry


def active_grids(conn: Connection, *, community_ids: Sequence[int]) -> list[ActiveGrid]:
    """The grids of the active plans of ``community_ids``, by community and code."""
    g, p = models.Grid, models.BoundaryPlan
    out: list[ActiveGrid] = []
    for among in dialect.in_values(conn, p.community_id, community_ids):
        rows = conn.execute(
            select(p.community_id, p.version, g.code, queries.wkb(g.geom))
            .join(p, p.id == g.plan_id)
            .where(among, p.status == models.PlanStatus.ACTIVE.value)
            .order_by(p.community_id, g.code)
        ).all()
        out.extend(ActiveGrid(r[0], r[1], r[2], shapely.from_wkb(bytes(r[3]))) for r in rows)
    return out


def stored_households(
    conn: Connection, *, address_ids: Sequence[str], columns: Sequence[str]
) -> list[StoredRow]:
    """The households (of any community) with these address ids: ``id`` + ``columns``."""
    h = models.Household
    return [
        row
        for among in dialect.in_values(conn, h.address_id, address_ids)
        for row in _stored(conn, h, columns, among)
    ]


def update_rows(
    conn: Connection,
    *,
    model: type[models.Base],
    rows: Sequence[Mapping[str, Any]],
    key: str = "id",
) -> None:
    """``UPDATE model SET … WHERE key = :key`` for rows with the same columns (executemany)."""
    if not rows:
        return
    table = models.table(model)
    columns = [c for c in rows[0] if c != key]
    stmt = (
        update(table)
        .where(table.c[key] == bindparam("_key"))
        .values({c: bindparam(f"v_{c}", type_=table.c[c].type) for c in columns})
    )
    conn.execute(stmt, [{"_key": r[key], **{f"v_{c}": r[c] for c in columns}} for r in rows])


# --- ids by name: the links a file makes by name -------------------------------------------


def ids_by_name(
    conn: Connection, *, model: type[models.Base], community_id: int
) -> dict[str, list[int]]:
    """``{name: [ids]}`` of a community's named rows (streets, branches, resident units …)."""
    table = models.table(model)
    out: dict[str, list[int]] = defaultdict(list)
    for rid, name in conn.execute(
        select(table.c.id, table.c.name)
        .where(table.c.community_id == community_id)
        .order_by(table.c.id)
    ).all():
        if name is not None:
            out[name].append(int(rid))
    return out


def building_ids_by_key(
    conn: Connection, *, community_id: int
) -> dict[tuple[str | None, str | None], list[int]]:
    """``{(name, compound): [ids]}`` of a community's buildings."""
    b = models.Building
    out: dict[tuple[str | None, str | None], list[int]] = defaultdict(list)
    for bid, name, compound in conn.execute(
        select(b.id, b.name, b.compound).where(b.community_id == community_id).order_by(b.id)
    ).all():
        out[(name, compound)].append(int(bid))
    return out


def member_ids(conn: Connection, *, community_id: int) -> set[int]:
    """The ids of a community's members."""
    return {
        int(i)
        for i in conn.execute(
            select(models.Member.id).where(models.Member.community_id == community_id)
        ).scalars()
    }


def member_names(conn: Connection, *, community_id: int) -> dict[int, str]:
    """``{member_id: name}`` of a community's members (names are personal: not for output)."""
    return {
        int(i): str(name)
        for i, name in conn.execute(
            select(models.Member.id, models.Member.name).where(
                models.Member.community_id == community_id
            )
        ).all()
    }


# --- grids and their leads -----------------------------------------------------------------


def grid_codes(conn: Connection, *, plan_id: int) -> set[str]:
    """The codes of a plan's grids."""
    return {
        str(code)
        for code in conn.execute(
            select(models.Grid.code).where(models.Grid.plan_id == plan_id)
        ).scalars()
    }


def set_grid_lead(conn: Connection, *, plan_id: int, code: str, member_id: int) -> None:
    """Make ``member_id`` the lead of the plan's grid ``code``."""
    conn.execute(
        update(models.Grid)
        .where(models.Grid.plan_id == plan_id, models.Grid.code == code)
        .values(lead_member_id=member_id)
    )


# --- households' personal data -------------------------------------------------------------


def household_ids(conn: Connection, *, address_ids: Sequence[str]) -> dict[str, int]:
    """``{address_id: household_id}`` of the stored households among ``address_ids``."""
    h = models.Household
    return {
        str(address_id): int(hid)
        for among in dialect.in_values(conn, h.address_id, address_ids)
        for address_id, hid in conn.execute(select(h.address_id, h.id).where(among)).all()
    }


def households_with_personal(conn: Connection, *, household_ids: Sequence[int]) -> set[int]:
    """Which of ``household_ids`` already have a ``household_personal`` row."""
    p = models.HouseholdPersonal
    return {
        int(hid)
        for among in dialect.in_values(conn, p.household_id, household_ids)
        for hid in conn.execute(select(p.household_id).where(among)).scalars()
    }


# --- catalogue and requests ----------------------------------------------------------------


#: ``(category_id, received_at, description)``: a file's request equal to a stored one (or to
#: an earlier row) is left unchanged, so re-importing a file does not duplicate it.
RequestKey = tuple[int | None, dt.datetime | None, str | None]


def request_keys(conn: Connection, *, community_id: int) -> set[RequestKey]:
    """``(category_id, received_at, description)`` of the community's stored requests."""
    r = models.Request
    return {
        (row.category_id, row.received_at, row.description)
        for row in conn.execute(
            select(r.category_id, r.received_at, r.description).where(
                r.community_id == community_id
            )
        ).all()
    }

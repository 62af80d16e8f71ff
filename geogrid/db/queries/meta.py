"""Installation-wide state: the data-version counters the lookup polls, instance secrets."""

from __future__ import annotations

import secrets

from sqlalchemy import Connection, func, insert, inspect, select, update

from geogrid.db import models


def data_versions(conn: Connection) -> dict[str, int]:
    """The change counters (``spatial``, ``gazetteer``): a cheap poll for in-memory indexes."""
    return {
        str(name): int(version)
        for name, version in conn.execute(
            select(models.DataVersion.name, models.DataVersion.version)
        )
    }


def community_versions(conn: Connection) -> dict[int, tuple[int, int]]:
    """Each community's change counters, ``(spatial, gazetteer)`` by community id (migration
    0013): which communities a lookup service must rebuild once a global counter moved."""
    t = models.CommunityVersion
    return {
        int(cid): (int(spatial), int(gazetteer))
        for cid, spatial, gazetteer in conn.execute(select(t.community_id, t.spatial, t.gazetteer))
    }


def advance_data_versions(conn: Connection, *, past: dict[str, int]) -> dict[str, int]:
    """Move every counter beyond both its own value and ``past`` (the values before the data
    was replaced), so each poller sees a value it has never seen and rebuilds. A restore
    brings back the counters of the backup, which a running server may hold already.

    The per-community counters move by the past global counter + 1: each is at most its
    global counter (the same statements bump both), so every community's new value is one no
    server has seen; the global counters then move beyond them all, which keeps that bound.
    """
    inspector = inspect(conn)
    if not inspector.has_table(models.DataVersion.__tablename__):
        return {}
    table = models.DataVersion
    ceiling: dict[str, int] = {}
    if inspector.has_table(models.CommunityVersion.__tablename__):
        cv = models.CommunityVersion
        conn.execute(
            update(cv).values(
                spatial=cv.spatial + past.get("spatial", 0) + 1,
                gazetteer=cv.gazetteer + past.get("gazetteer", 0) + 1,
            )
        )
        top = conn.execute(select(func.max(cv.spatial), func.max(cv.gazetteer))).one()
        ceiling = {"spatial": int(top[0] or 0), "gazetteer": int(top[1] or 0)}
    new = {
        name: max(version, past.get(name, 0), ceiling.get(name, 0)) + 1
        for name, version in sorted(data_versions(conn).items())
    }
    for name, version in new.items():
        conn.execute(update(table).where(table.name == name).values(version=version))
    return new


def instance_secret(conn: Connection, name: str) -> str:
    """This installation's secret ``name`` (made once, 256 random bits, then kept)."""
    table = models.InstanceSecret
    value = conn.execute(select(table.value).where(table.name == name)).scalar()
    if value is None:
        value = secrets.token_hex(32)
        conn.execute(insert(table).values(name=name, value=value, created_at=models.utcnow()))
    return str(value)

"""Installation-wide state: the data-version counters the lookup polls, instance secrets."""

from __future__ import annotations

import secrets

from sqlalchemy import Connection, insert, inspect, select, update

from geogrid.db import models


def data_versions(conn: Connection) -> dict[str, int]:
    """The change counters (``spatial``, ``gazetteer``): a cheap poll for in-memory indexes."""
    return {
        str(name): int(version)
        for name, version in conn.execute(
            select(models.DataVersion.name, models.DataVersion.version)
        )
    }


def advance_data_versions(conn: Connection, *, past: dict[str, int]) -> dict[str, int]:
    """Move every counter beyond both its own value and ``past`` (the values before the data
    was replaced), so each poller sees a value it has never seen and rebuilds. A restore
    brings back the counters of the backup, which a running server may hold already."""
    if not inspect(conn).has_table(models.DataVersion.__tablename__):
        return {}
    table = models.DataVersion
    new = {
        name: max(version, past.get(name, 0)) + 1
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

"""Installation-wide state: the data-version counters the lookup polls, instance secrets."""

from __future__ import annotations

import secrets

from sqlalchemy import Connection, insert, select

from geogrid.db import models


def data_versions(conn: Connection) -> dict[str, int]:
    """The change counters (``spatial``, ``gazetteer``): a cheap poll for in-memory indexes."""
    return {
        str(name): int(version)
        for name, version in conn.execute(
            select(models.DataVersion.name, models.DataVersion.version)
        )
    }


def instance_secret(conn: Connection, name: str) -> str:
    """This installation's secret ``name`` (made once, 256 random bits, then kept)."""
    table = models.InstanceSecret
    value = conn.execute(select(table.value).where(table.name == name)).scalar()
    if value is None:
        value = secrets.token_hex(32)
        conn.execute(insert(table).values(name=name, value=value, created_at=models.utcnow()))
    return str(value)

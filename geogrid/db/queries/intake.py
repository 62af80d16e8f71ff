"""Queries of the public intake page: its rate limit's attempts, a request by its token.

The rules (what is counted, for how long, what a status page may show) are in
``geogrid.requests.intake``; here only the statements.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, delete, func, insert, select, text

from geogrid.db import models


def lock_intake_client(conn: Connection, *, client: str) -> None:
    """Serialise the intake of one client address until the transaction ends, so that
    counting its attempts and recording the new one are one step (two concurrent posts
    cannot both pass the count). PostgreSQL: a transaction-level advisory lock on the
    address's hash (docs: "Advisory Locks"; a key space apart from the sign-in throttle's);
    SQLite's transactions start ``BEGIN IMMEDIATE`` and are serialised already."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:c, 15))"), {"c": client})


def delete_intake_attempts(conn: Connection, *, before: dt.datetime) -> None:
    """Forget attempts at or before ``before``: the limit looks back one day at most."""
    conn.execute(delete(models.IntakeAttempt).where(models.IntakeAttempt.at <= before))


def intake_attempts_since(
    conn: Connection, *, client: str, since: dt.datetime
) -> list[dt.datetime]:
    """When ``client`` filed since ``since`` (exclusive), oldest first."""
    a = models.IntakeAttempt
    rows = conn.execute(
        select(a.at).where(a.client == client, a.at > since).order_by(a.at)
    ).scalars()
    return list(rows)


def count_intake_attempts(conn: Connection, *, client: str | None = None) -> int:
    """Attempts on record (of ``client``, or of everyone)."""
    a = models.IntakeAttempt
    stmt = select(func.count()).select_from(a)
    if client is not None:
        stmt = stmt.where(a.client == client)
    return int(conn.execute(stmt).scalar_one())


def insert_intake_attempt(conn: Connection, *, client: str, at: dt.datetime) -> int:
    """An attempt of ``client`` at ``at``; its id."""
    a = models.IntakeAttempt
    return int(conn.execute(insert(a).values(client=client, at=at).returning(a.id)).scalar_one())


def request_id_by_token(conn: Connection, *, token: str) -> int | None:
    """The request whose tracking token is ``token`` (None when there is none)."""
    r = models.Request
    found = conn.execute(select(r.id).where(r.token == token)).scalar_one_or_none()
    return None if found is None else int(found)

"""Queries of the audit log: append, filter, prune.

The rules — what is recorded, by whom, how long it is kept — are in ``geogrid.audit``; here
only the statements. ``audit_log`` is append-only (triggers, ``geogrid.db.dialect``): this
module has one DELETE, :func:`prune_before`, and it is let through only for entries older
than the permit it writes first (:func:`permit`, also used by the erasures of
``geogrid.db.queries.privacy``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, delete, func, insert, or_, select

from geogrid.db import models
from geogrid.db.queries.core import bulk_insert


class AuditRow(NamedTuple):
    """An entry of the audit log."""

    id: int
    at: dt.datetime
    api_key_id: int | None
    actor: str
    role: str | None
    client: str | None
    via: str | None
    action: str
    subject: str
    subject_id: str | None
    fields: list[str]
    details: dict[str, Any] | None


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to read (every criterion optional; all given must hold)."""

    #: Entries at or after this time.
    since: dt.datetime | None = None
    #: Entries before this time.
    until: dt.datetime | None = None
    #: Text in the actor's label (a key prefix, a name, ``cli``), or the key's id.
    actor: str | None = None
    api_key_id: int | None = None
    subject: str | None = None
    subject_id: str | None = None
    action: str | None = None
    #: Entries with an id below this one (paging newest first: the last id seen).
    before_id: int | None = None


_COLUMNS = (
    models.AuditEntry.id,
    models.AuditEntry.at,
    models.AuditEntry.api_key_id,
    models.AuditEntry.actor,
    models.AuditEntry.role,
    models.AuditEntry.client,
    models.AuditEntry.via,
    models.AuditEntry.action,
    models.AuditEntry.subject,
    models.AuditEntry.subject_id,
    models.AuditEntry.fields,
    models.AuditEntry.details,
)


def insert_entries(conn: Connection, *, rows: Iterable[dict[str, Any]]) -> int:
    """Append entries (dicts of the table's columns but ``id``); return how many."""
    return bulk_insert(conn, models.AuditEntry, rows)


def entries(conn: Connection, *, where: AuditFilter, limit: int, offset: int = 0) -> list[AuditRow]:
    """The entries ``where`` selects, newest first (by id: the order they were written)."""
    log = models.AuditEntry
    stmt = select(*_COLUMNS)
    if where.since is not None:
        stmt = stmt.where(log.at >= where.since)
    if where.until is not None:
        stmt = stmt.where(log.at < where.until)
    if where.actor is not None:
        # Plain containment, case-insensitive; LIKE's wildcards in the text are taken as text.
        text = where.actor.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        matches = func.lower(log.actor).like(f"%{text}%", escape="\\")
        stmt = stmt.where(
            or_(matches, log.api_key_id == int(where.actor)) if where.actor.isdigit() else matches
        )
    if where.api_key_id is not None:
        stmt = stmt.where(log.api_key_id == where.api_key_id)
    if where.subject is not None:
        stmt = stmt.where(log.subject == where.subject)
    if where.subject_id is not None:
        stmt = stmt.where(log.subject_id == where.subject_id)
    if where.action is not None:
        stmt = stmt.where(log.action == where.action)
    if where.before_id is not None:
        stmt = stmt.where(log.id < where.before_id)
    stmt = stmt.order_by(log.id.desc()).limit(limit).offset(offset)
    return [AuditRow._make(row) for row in conn.execute(stmt)]


def count_before(conn: Connection, *, before: dt.datetime) -> int:
    """How many entries are older than ``before``."""
    log = models.AuditEntry
    return int(
        conn.execute(select(func.count()).select_from(log).where(log.at < before)).scalar_one()
    )


def oldest(conn: Connection) -> dt.datetime | None:
    """The time of the oldest entry (None for an empty log)."""
    value: dt.datetime | None = conn.execute(select(func.min(models.AuditEntry.at))).scalar()
    return value


@contextmanager
def permit(conn: Connection, kind: str, *, before: dt.datetime | None = None) -> Iterator[None]:
    """A permit of ``kind`` (``audit_prune``, ``erase``) for the statements in the block,
    in the caller's transaction: written first, removed at the end, never committed (on an
    error the transaction rolls back, the permit with it; ``geogrid.db.dialect``)."""
    table = models.PrivacyPermit
    permit_id = conn.execute(
        insert(table).values(kind=kind, before=before).returning(table.id)
    ).scalar_one()
    yield
    conn.execute(delete(table).where(table.id == permit_id))


def prune_before(conn: Connection, *, before: dt.datetime) -> int:
    """Delete the entries older than ``before``; return how many.

    The DELETE trigger lets an entry go only while an ``audit_prune`` permit older than it
    exists; the permit is written here and removed again in the same transaction, so it is
    never committed."""
    with permit(conn, "audit_prune", before=before):
        gone = conn.execute(delete(models.AuditEntry).where(models.AuditEntry.at < before))
    return int(gone.rowcount)

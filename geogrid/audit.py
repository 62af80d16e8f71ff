"""The audit log: every read of personal data and every write, who, what, when, from where.

What is recorded (docs/api.md, "The operator's duties")
-------------------------------------------------------
One entry per write — a request filed or moved on, a visit, a member, field, grid lead,
category, department, key or webhook changed, a plan loaded, activated or rolled back, an
import, an assignment run, a retention or erasure — and one per subject whose personal data
was read unmasked (a request's contact, a member's name and phone, a household's head).
A bulk operation (an import, an activation, a retention run) is one entry with its counts,
not one per household.

An entry names the actor (key id, label, role), the action, the subject kind and id, the
*names* of the fields touched and non-personal details (counts, statuses, public ids and
codes): never a personal value — no name, phone, address, note or token.

Writes are recorded in the transaction of the change, by the library function that makes it:
a change rolled back (refused, a dry run, a conflict) leaves no entry, a committed one always
has one.

Kept, and only pruned
---------------------
The log is append-only (``geogrid.db.dialect.audit_trigger_ddl``): the one way out is
:func:`prune`, which removes entries older than the kept period (``GEOGRID_AUDIT_KEEP_DAYS``,
at least 183 days unless explicitly allowed: ``geogrid.settings.PrivacySettings``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection

from geogrid.db import models
from geogrid.db.queries import audit as audit_queries
from geogrid.db.queries.audit import AuditFilter
from geogrid.periods import DEFAULT_TZ, ago, iso, parse_date, zone
from geogrid.settings import PrivacySettings

__all__ = ["AuditFilter", "Who", "entries", "prune", "record", "record_reads", "since"]

#: Entries one query returns at most (the API's and the CLI's bound on ``limit``).
MAX_LIMIT = 1000


class Who(Protocol):
    """Who acts: what the log takes of a ``geogrid.access.Actor``."""

    @property
    def role(self) -> models.Role: ...
    @property
    def label(self) -> str: ...
    @property
    def key_id(self) -> int | None: ...
    @property
    def client(self) -> str | None: ...
    @property
    def via(self) -> str | None: ...


def _row(
    actor: Who,
    *,
    at: dt.datetime,
    action: str,
    subject: str,
    subject_id: int | str | None,
    fields: Iterable[str],
    details: Mapping[str, Any] | None,
    via: str | None,
) -> dict[str, Any]:
    # Cut to the columns' lengths: a long label or route must not make the change fail.
    return {
        "at": at,
        "api_key_id": actor.key_id,
        "actor": actor.label[:200],
        "role": actor.role.value,
        "client": None if actor.client is None else actor.client[:200],
        "via": None if (via or actor.via) is None else str(via or actor.via)[:200],
        "action": action[:32],
        "subject": subject[:32],
        "subject_id": None if subject_id is None else str(subject_id)[:64],
        "fields": sorted(set(fields)),
        "details": dict(details) if details else None,
    }


def record(
    conn: Connection,
    *,
    actor: Who,
    action: str,
    subject: str,
    subject_id: int | str | None = None,
    fields: Iterable[str] = (),
    details: Mapping[str, Any] | None = None,
    via: str | None = None,
) -> None:
    """Append one entry, in the caller's transaction (so it stands or falls with the change).

    ``fields`` are the names of what was written or read; ``details`` counts and public ids
    and codes only — never a personal value. ``via`` defaults to the actor's (the route or
    the command)."""
    row = _row(
        actor,
        at=models.utcnow(),
        action=action,
        subject=subject,
        subject_id=subject_id,
        fields=fields,
        details=details,
        via=via,
    )
    audit_queries.insert_entries(conn, rows=[row])


def record_reads(
    conn: Connection,
    *,
    actor: Who,
    subject: str,
    subject_ids: Iterable[int | str],
    fields: Iterable[str],
    via: str | None = None,
    action: str = "read",
) -> int:
    """Append one ``read`` entry per subject whose unmasked data was read; return how many.

    One per subject, not one per call: "who has read this person's phone?" is then one
    indexed query (``subject``, ``subject_id``)."""
    at = models.utcnow()
    names = sorted(set(fields))
    return audit_queries.insert_entries(
        conn,
        rows=(
            _row(
                actor,
                at=at,
                action=action,
                subject=subject,
                subject_id=i,
                fields=names,
                details=None,
                via=via,
            )
            for i in subject_ids
        ),
    )


def entries(
    conn: Connection,
    *,
    where: AuditFilter | None = None,
    limit: int = 100,
    offset: int = 0,
    tz: str = DEFAULT_TZ,
) -> list[dict[str, Any]]:
    """The entries ``where`` selects, newest first, times in ``tz`` (the service's zone)."""
    rows = audit_queries.entries(
        conn, where=where or AuditFilter(), limit=max(1, min(limit, MAX_LIMIT)), offset=offset
    )
    return [{**row._asdict(), "at": iso(row.at, tz)} for row in rows]


def since(value: str, *, now: dt.datetime | None = None, tz: str = DEFAULT_TZ) -> dt.datetime:
    """The start of ``--since``: a local date (``2026-01-31``, from its midnight in ``tz``) or
    a span back from now (``90d``, ``6m``, ``1y``)."""
    text = value.strip()
    if text[-1:].lower() in ("y", "m", "d") and text[:-1].isdigit():
        return ago(text, now=now or models.utcnow(), tz=tz, field="since")
    day = parse_date(text, field="since")
    assert day is not None
    return dt.datetime.combine(day, dt.time(), zone(tz))


# --- keeping and pruning -------------------------------------------------------------------


def keep_cutoff(
    settings: PrivacySettings | None = None, *, now: dt.datetime | None = None
) -> dt.datetime:
    """Entries older than this may be pruned: ``audit_keep_days`` before ``now``."""
    settings = settings or PrivacySettings.defaults()
    return (now or models.utcnow()) - dt.timedelta(days=settings.audit_keep_days)


def prune(
    conn: Connection,
    *,
    actor: Who,
    settings: PrivacySettings | None = None,
    now: dt.datetime | None = None,
    tz: str = DEFAULT_TZ,
) -> dict[str, Any]:
    """Remove the entries older than the kept period, in the caller's transaction (roll it
    back for a dry run); the prune itself is recorded. Returns ``before`` (the cut-off),
    ``keep_days``, ``removed`` and ``oldest_kept``."""
    settings = settings or PrivacySettings.defaults()
    before = keep_cutoff(settings, now=now)
    removed = audit_queries.prune_before(conn, before=before)
    record(
        conn,
        actor=actor,
        action="prune",
        subject="audit_log",
        details={"before": iso(before, tz), "removed": removed},
    )
    return {
        "keep_days": settings.audit_keep_days,
        "before": iso(before, tz),
        "removed": removed,
        "oldest_kept": iso(audit_queries.oldest(conn), tz),
    }


def reads_of(
    conn: Connection, *, subject: str, subject_ids: Sequence[int | str], tz: str = DEFAULT_TZ
) -> list[dict[str, Any]]:
    """Who read or exported the personal data of these subjects (for a person's export)."""
    out: list[dict[str, Any]] = []
    for i in subject_ids:
        for action in ("read", "export"):
            out += entries(
                conn,
                where=AuditFilter(subject=subject, subject_id=str(i), action=action),
                limit=MAX_LIMIT,
                tz=tz,
            )
    return sorted(out, key=lambda e: e["id"])

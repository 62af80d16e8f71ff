"""Retention: a reporter's personal data is erased a period after the request is finished.

DESIGN.md, "Data rules": reporters' contacts are erased after the retention period. A request
is *finished* when it is closed (核查结案, ``closed_at``) or rejected (不予受理, a terminal
state: its last change is its end); ``geogrid retention --older-than 2y`` takes those finished
longer ago than the period.

What goes, what stays
---------------------
Of such a request the reporter's data goes:

* the contact row (``request_contacts``: name, phone, e-mail, device and account ids, the
  address as written);
* every photo (``request_media``): uploaded bytes and linked URLs alike — a photo may show
  people, faces, number plates;
* the Open311 token (the reporter's handle), the evaluation's comment (and the note of the
  ``evaluate`` event, which repeats it), the Open311 attribute values (a form's answers) and
  the link to a household (``address_id``);
* phone numbers, ID numbers and e-mail addresses in the description and the events' notes,
  replaced as the public sees them (``geogrid.privacy.scrub``).

What stays is the anonymous request, all the KPIs and maps need: category, programme, place
(the point, grid, field, member), dates, status, satisfaction, the events (who of the staff
did what, when). KPIs are the same before and after (``tests/test_retention.py``).

A run is one transaction and one entry of the audit log with its counts; a dry run (the
default of the command) lists the same counts and writes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from geogrid import audit
from geogrid.access import Actor
from geogrid.db import models
from geogrid.db.queries import privacy as privacy_queries
from geogrid.periods import DEFAULT_TZ, ago, iso
from geogrid.privacy import scrub

#: What :func:`strip_requests` erases, by name (for the audit log).
REPORTER_FIELDS = (
    "request_contacts",
    "request_media",
    "token",
    "satisfaction_comment",
    "attributes",
    "address_id",
    "description",
    "notes",
)


@dataclass
class Stripped:
    """What was taken from a set of requests."""

    #: Requests that held anything of their reporter.
    requests: set[int] = field(default_factory=set)
    contacts: int = 0
    photos: int = 0
    linked_photos: int = 0
    notes: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "requests": len(self.requests),
            "contacts": self.contacts,
            "photos": self.photos,
            "linked_photos": self.linked_photos,
            "notes": self.notes,
        }


def strip_requests(conn: Connection, request_ids: Iterable[int]) -> dict[int, Stripped]:
    """Erase what the requests hold of their reporters (see the module docstring), in the
    caller's transaction; per request, what was taken (requests holding nothing are left
    out). Used by retention and by a reporter's erasure (``geogrid.person``)."""
    ids = sorted(set(request_ids))
    out: dict[int, Stripped] = {}

    def of(request_id: int) -> Stripped:
        return out.setdefault(request_id, Stripped(requests={request_id}))

    for request_id in privacy_queries.contact_request_ids(conn, request_ids=ids):
        of(request_id).contacts += 1
    for m in privacy_queries.media_counts(conn, request_ids=ids):
        s = of(m.request_id)
        s.photos += m.photos
        s.linked_photos += m.links
    notes: list[tuple[int, str | None]] = []
    for e in privacy_queries.event_notes(conn, request_ids=ids):
        # The evaluation's note is the reporter's comment: it goes whole.
        new = None if e.action == "evaluate" else scrub(e.note)
        if new != e.note:
            notes.append((e.id, new))
            of(e.request_id).notes += 1
    texts: list[tuple[int, str | None]] = []
    for t in privacy_queries.request_texts(conn, request_ids=ids):
        description = scrub(t.description)
        held = t.has_token or t.has_comment or t.has_attributes or t.has_address_id
        if held or description != t.description or t.id in out:
            texts.append((t.id, description))
            of(t.id)
    privacy_queries.delete_contacts(conn, request_ids=ids)
    privacy_queries.delete_media(conn, request_ids=ids)
    privacy_queries.set_event_notes(conn, notes=notes)
    privacy_queries.anonymise_requests(conn, descriptions=texts)
    return out


def retention(
    conn: Connection,
    *,
    older_than: str,
    actor: Actor,
    now: dt.datetime | None = None,
    tz: str = DEFAULT_TZ,
) -> dict[str, Any]:
    """Erase the reporters' data of requests finished longer ago than ``older_than`` (``2y``,
    ``18m``, ``90d``), in the caller's transaction — roll it back for a dry run. Returns the
    cut-off and the counts per community and in total; recorded in the audit log."""
    now = now or models.utcnow()
    before = ago(older_than, now=now, tz=tz)
    done = privacy_queries.requests_done_before(conn, before=before)
    community_of = {r.id: r.community_code for r in done}
    stripped = strip_requests(conn, community_of)
    per: dict[str, Counter[str]] = {}
    for request_id, s in stripped.items():
        per.setdefault(community_of[request_id], Counter()).update(s.counts())
    total: Counter[str] = Counter()
    for counts in per.values():
        total.update(counts)
    keys = Stripped().counts()
    report = {
        "older_than": older_than,
        "before": iso(before, tz),
        "finished_requests": len(done),
        "communities": {code: {k: per[code][k] for k in keys} for code in sorted(per)},
        "total": {k: total[k] for k in keys},
    }
    audit.record(
        conn,
        actor=actor,
        action="retention",
        subject="requests",
        fields=REPORTER_FIELDS,
        details={k: report[k] for k in ("older_than", "before", "communities", "total")},
    )
    return report

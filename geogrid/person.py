"""A person's data: export everything held about them, or erase it (PIPL arts. 45 and 47:
the rights to a copy and to deletion).

A person is one of three kinds, found by what the service knows them by:

``member`` (``--member ID``)
    The member's row (name, phone, kind, branch, group, unit, position), the fields held, the
    grids led (every plan), the keys, the visits logged and the requests assigned.
    *Erase* keeps the row — fields, grids, visits, requests and history refer to it — and
    anonymises it: the name becomes ``已删除``, phone and position go, the member is inactive,
    leaves its fields and every grid it led (open requests are routed again), its keys are
    revoked and lose their names, and the workflow history names the keys without them.
``household`` (``--address-id ID``)
    The household (address, size, door point), its personal row (head, phone, care flags),
    the visits to it and the requests filed at its address (ids and status). *Erase* deletes
    the personal row, the unit and room of the address and the notes of the visits; the
    anonymous household point stays, so coverage and assignment still count it.
``reporter`` (``--request-token TOKEN`` or ``--phone PHONE``)
    The requests filed with that token or that contact phone, with everything they hold of
    the reporter: contact, description, attributes, comment, photos (their bytes, base64),
    and the events. *Erase* is what retention does to a finished request
    (``geogrid.retention.strip_requests``): contact and photos deleted, token, comment,
    attributes and household link cleared, phones and ids scrubbed from the texts; the
    anonymous request stays and is still handled if open.

Every export is an ``export`` entry of the audit log (an audited read), every erasure an
``erase`` entry with its counts; neither holds the values. Each kind's export also lists who
read or exported that person's data (the audit log's own entries).

The audit log keeps its entries for the kept period even when they name the person (a key's
label may carry a name): it is a record whose storage period is set by law (the Cybersecurity
Law's six months), which PIPL art. 47's second paragraph lets a handler keep — stored and
protected, not otherwise processed — until the period ends; the prune removes them then.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from typing import Any

from sqlalchemy import Connection

from geogrid import audit
from geogrid.access import Actor
from geogrid.db import models
from geogrid.db.queries import people
from geogrid.db.queries import privacy as privacy_queries
from geogrid.directory import reroute_open_requests
from geogrid.errors import InvalidInput, NotFound
from geogrid.periods import DEFAULT_TZ, iso
from geogrid.retention import REPORTER_FIELDS, Stripped, strip_requests

#: What an erased member is called (the row stays; ``name`` may not be empty).
ERASED_NAME = "已删除"
KINDS = ("member", "household", "reporter")


def _times(row: dict[str, Any], tz: str) -> dict[str, Any]:
    """Times in ``tz`` (ISO 8601 with the offset), dates as ``YYYY-MM-DD``."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, dt.datetime):
            v = iso(v, tz)
        elif isinstance(v, dt.date):
            v = v.isoformat()
        out[k] = v
    return out


def _phone_digits(phone: str) -> str:
    digits = re.sub(r"[\s\-+()]", "", phone)
    if not digits.isdigit() or not 5 <= len(digits) <= 20:
        raise InvalidInput(f"not a phone number: {len(phone)} characters", field="phone")
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) == 11:
            return digits[len(prefix) :]
    return digits


def reporter_request_ids(
    conn: Connection, *, token: str | None = None, phone: str | None = None
) -> list[int]:
    """The requests of a reporter, by the request's token or the contact's phone."""
    if (token is None) == (phone is None):
        raise InvalidInput("give --request-token or --phone", field="request_token")
    if token is not None:
        rid = privacy_queries.request_id_by_token(conn, token=token.strip())
        if rid is None:
            raise NotFound("no request with this token", field="request_token")
        return [rid]
    assert phone is not None
    ids = privacy_queries.request_ids_by_phone(conn, digits=_phone_digits(phone))
    if not ids:
        raise NotFound("no request with this phone in its contact", field="phone")
    return ids


# --- export ----------------------------------------------------------------------------------


def export_member(
    conn: Connection, *, member_id: int, actor: Actor, tz: str = DEFAULT_TZ
) -> dict[str, Any]:
    """Everything held about a member (an audited read)."""
    row = privacy_queries.member_record(conn, member_id=member_id)
    if row is None:
        raise NotFound(f"no member with id {member_id}", field="member")
    audit_before = audit.reads_of(conn, subject="member", subject_ids=[member_id], tz=tz)
    data = {
        "kind": "member",
        "member": _times(row, tz),
        "fields": privacy_queries.member_fields(conn, member_id=member_id),
        "grids_led": privacy_queries.member_grids(conn, member_id=member_id),
        "keys": [_times(k, tz) for k in privacy_queries.member_keys(conn, member_id=member_id)],
        "visits_logged": [
            _times(v, tz) for v in privacy_queries.member_visits(conn, member_id=member_id)
        ],
        "requests_assigned": [
            _times(r, tz) for r in privacy_queries.member_requests(conn, member_id=member_id)
        ],
        "reads_of_this_data": audit_before,
    }
    audit.record_reads(
        conn,
        actor=actor,
        action="export",
        subject="member",
        subject_ids=[member_id],
        fields=["name", "phone", "position"],
    )
    return data


def export_household(
    conn: Connection, *, address_id: str, actor: Actor, tz: str = DEFAULT_TZ
) -> dict[str, Any]:
    """Everything held about a household (an audited read)."""
    row = privacy_queries.household_record(conn, address_id=address_id)
    if row is None:
        raise NotFound(f"no household with address id {address_id!r}", field="address_id")
    hid = int(row["id"])
    data = {
        "kind": "household",
        "household": _times(row, tz),
        "visits": [_times(v, tz) for v in privacy_queries.household_visits(conn, household_id=hid)],
        "requests_at_address": [
            _times(r, tz) for r in privacy_queries.household_requests(conn, address_id=address_id)
        ],
        "reads_of_this_data": audit.reads_of(conn, subject="household", subject_ids=[hid], tz=tz),
    }
    audit.record_reads(
        conn,
        actor=actor,
        action="export",
        subject="household",
        subject_ids=[hid],
        fields=["head_name", "phone", "care_flags", "unit", "room", "visit_notes"],
    )
    return data


def export_reporter(
    conn: Connection,
    *,
    actor: Actor,
    token: str | None = None,
    phone: str | None = None,
    tz: str = DEFAULT_TZ,
) -> dict[str, Any]:
    """Everything held about a reporter: their requests with contact, texts, photos and
    events (an audited read, one entry per request)."""
    ids = reporter_request_ids(conn, token=token, phone=phone)
    media: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for m in privacy_queries.media_of(conn, request_ids=ids):
        data = m.pop("data")
        m["data_base64"] = None if data is None else base64.b64encode(bytes(data)).decode()
        media[int(m["request_id"])].append(_times(m, tz))
    events: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for e in privacy_queries.events_of(conn, request_ids=ids):
        events[int(e.pop("request_id"))].append(_times(e, tz))
    requests = []
    for r in privacy_queries.reporter_requests(conn, request_ids=ids):
        has_contact = r.pop("has_contact")
        contact_keys = ("first_name", "last_name", "email", "phone", "device_id", "account_id",
                        "address_string")  # fmt: skip
        contact = {k: r.pop(k) for k in contact_keys}
        requests.append(
            {
                **_times(r, tz),
                "contact": contact if has_contact else None,
                "photos": media[int(r["id"])],
                "events": events[int(r["id"])],
            }
        )
    reads = audit.reads_of(conn, subject="request_contact", subject_ids=ids, tz=tz)
    reads += audit.reads_of(conn, subject="request", subject_ids=ids, tz=tz)
    audit.record_reads(
        conn,
        actor=actor,
        action="export",
        subject="request_contact",
        subject_ids=ids,
        fields=["contact", "description", "attributes", "comment", "photos", "notes"],
    )
    return {
        "kind": "reporter",
        "requests": requests,
        "reads_of_this_data": sorted(reads, key=lambda e: e["id"]),
    }


# --- erase -----------------------------------------------------------------------------------


def erase_member(conn: Connection, *, member_id: int, actor: Actor) -> dict[str, Any]:
    """Anonymise a member (see the module docstring), in the caller's transaction (roll it
    back for a dry run); what was done, counted."""
    row = privacy_queries.member_record(conn, member_id=member_id)
    if row is None:
        raise NotFound(f"no member with id {member_id}", field="member")
    community_id = int(row["community_id"])
    fields = privacy_queries.member_fields(conn, member_id=member_id)
    keys = privacy_queries.member_keys(conn, member_id=member_id)
    privacy_queries.erase_member(conn, member_id=member_id, name=ERASED_NAME)
    people.vacate_fields(conn, member_id=member_id)
    leads = privacy_queries.clear_member_leads(conn, member_id=member_id)
    relabelled = 0
    for k in keys:
        if k["name"]:
            # The label the workflow recorded (geogrid.access._actor_of), then without the name.
            old = f"key {k['prefix']} {k['name']} ({k['role']})"
            relabelled += privacy_queries.relabel_event_actors(
                conn, old=old[:200], new=f"key {k['prefix']} ({k['role']})"
            )
    privacy_queries.erase_key_names(conn, key_ids=[int(k["id"]) for k in keys], at=models.utcnow())
    rerouted = reroute_open_requests(conn, community_id=community_id)
    counts = {
        "fields_vacated": len(fields),
        "grids_unled": leads,
        "keys_revoked": sum(1 for k in keys if k["revoked_at"] is None),
        "events_relabelled": relabelled,
        "requests_rerouted": rerouted,
    }
    audit.record(
        conn,
        actor=actor,
        action="erase",
        subject="member",
        subject_id=member_id,
        fields=["name", "phone", "position", "active", "key names"],
        details=counts,
    )
    return {"kind": "member", "member_id": member_id, **counts}


def erase_household(conn: Connection, *, address_id: str, actor: Actor) -> dict[str, Any]:
    """Erase a household's personal data (see the module docstring), in the caller's
    transaction; what was done, counted."""
    row = privacy_queries.household_record(conn, address_id=address_id)
    if row is None:
        raise NotFound(f"no household with address id {address_id!r}", field="address_id")
    hid = int(row["id"])
    counts = privacy_queries.erase_household(conn, household_id=hid)
    audit.record(
        conn,
        actor=actor,
        action="erase",
        subject="household",
        subject_id=hid,
        fields=["head_name", "phone", "care_flags", "unit", "room", "visit_notes"],
        details=counts,
    )
    return {"kind": "household", "household_id": hid, **counts}


def erase_reporter(
    conn: Connection,
    *,
    actor: Actor,
    token: str | None = None,
    phone: str | None = None,
) -> dict[str, Any]:
    """Erase what a reporter's requests hold of them (see the module docstring), in the
    caller's transaction; what was done, counted."""
    ids = reporter_request_ids(conn, token=token, phone=phone)
    stripped = strip_requests(conn, ids)
    total = Stripped()
    for s in stripped.values():
        total.requests |= s.requests
        total.contacts += s.contacts
        total.photos += s.photos
        total.linked_photos += s.linked_photos
        total.notes += s.notes
    counts = total.counts()
    audit.record(
        conn,
        actor=actor,
        action="erase",
        subject="reporter",
        subject_id=ids[0] if len(ids) == 1 else None,
        fields=REPORTER_FIELDS,
        details={"request_ids": ids, **counts},
    )
    return {"kind": "reporter", "request_ids": ids, **counts}

"""Open311 GeoReport v2: the mapping of geogrid's requests and catalogue onto the standard.

Specification: http://wiki.open311.org/GeoReport_v2 (methods ``discovery``, ``services``,
``services/{service_code}``, ``requests`` GET and POST, ``requests/{id}``, ``tokens/{token}``;
XML required, JSON optional; errors as a list of ``{code, description}``).

* ``service_code`` is the category code; ``group`` its programme; ``metadata`` is true when
  the category defines attributes.
* ``status`` is ``open`` for the open statuses and ``closed`` for ``resolved``, ``closed``
  and ``rejected`` (the spec knows only the two).
* ``status_notes`` is the latest note addressed to the reporter (resolve, reject, close,
  reopen, send back); ``agency_responsible`` the department the request is escalated to,
  else its grid (or the community, outside every grid); ``expected_datetime`` the SLA
  deadline — before dispatch, received + SLA hours as an estimate.
* ``address`` is building level (no unit or room); ``address_id`` is not published.

This module is framework-free: it parses form fields and query values into geogrid's terms
and renders answers as XML or JSON text. ``api/routes/open311.py`` is the thin HTTP layer.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Final
from xml.etree import ElementTree as ET

from sqlalchemy import Connection

from geogrid import bounds
from geogrid.access import Forbidden, NotAuthenticated
from geogrid.db import models
from geogrid.db.queries import requests as request_queries
from geogrid.directory import list_categories
from geogrid.errors import DatabaseUnavailable, GeogridError, InvalidInput, NotFound
from geogrid.periods import iso, zone
from geogrid.privacy import scrub
from geogrid.requests.views import (
    PUBLIC_NOTE_ACTIONS,
    agency_responsible,
    media_of,
    public_location,
)
from geogrid.requests.workflow import Contact, Intake, sla_due

SPECIFICATION: Final = "http://wiki.open311.org/GeoReport_v2"
FORMATS: Final = {"xml": "text/xml; charset=utf-8", "json": "application/json; charset=utf-8"}
#: Most requests one GET returns (newest first), as common servers do.
MAX_REQUESTS: Final = 1000
#: Plural element → its items' element, for the XML rendering.
_ITEM_TAGS: Final = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "errors": "error",
}
#: geogrid's field names → Open311's, for error descriptions.
_FIELDS: Final = {
    "lon": "long",
    "lat": "lat",
    "location": "lat",
    "address": "address_string",
    "category": "service_code",
    "media_url[0]": "media_url",
}
_ATTR_KEY: Final = re.compile(r"^attribute\[([^\[\]]+)\](\[\])?$")


# --- rendering -------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    # Stored before intake cleaned text, or written by a command: XML cannot carry them.
    return bounds.clean_text(str(value))


def _element(tag: str, value: Any) -> ET.Element:
    el = ET.Element(tag)
    if isinstance(value, Mapping):
        for k, v in value.items():
            el.append(_element(k, v))
    elif isinstance(value, list | tuple):
        item = _ITEM_TAGS.get(tag, "item")
        for v in value:
            el.append(_element(item, v))
    else:
        el.text = _text(value)
    return el


def render(root: str, data: Any, fmt: str) -> str:
    """``data`` as Open311 XML (under ``root``) or JSON."""
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    tree = _element(root, data)
    return '<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(tree, encoding="unicode")


def error_list(exc: GeogridError) -> tuple[int, list[dict[str, Any]]]:
    """The spec's error list and HTTP status for a geogrid error (400, 403, 404; 503 while
    the database cannot be reached)."""
    if isinstance(exc, DatabaseUnavailable):
        status = 503
    elif isinstance(exc, NotAuthenticated | Forbidden):
        status = 403
    elif isinstance(exc, NotFound):
        status = 404
    elif isinstance(exc, InvalidInput):
        status = 400
    else:
        status = 400 if exc.code == "conflict" else 500
    message = exc.message
    field = exc.field
    if field:
        name = open311_field(field)
        message = f"{name}: {message}" if not message.startswith(name) else message
    return status, [{"code": status, "description": message}]


def open311_field(field: str) -> str:
    if field.startswith("attributes."):
        return f"attribute[{field.split('.', 1)[1]}]"
    return _FIELDS.get(field, field)


# --- discovery and services ------------------------------------------------------------------


def discovery(*, base_url: str, changeset: dt.datetime, contact: str) -> dict[str, Any]:
    return {
        "changeset": changeset.isoformat(),
        "contact": contact,
        "key_service": "API keys are issued by the service administrator "
        "(`geogrid keys create --role public`).",
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": f"{base_url}/open311/v2",
                "changeset": changeset.isoformat(),
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }


def services(conn: Connection) -> list[dict[str, Any]]:
    out = []
    for c in list_categories(conn):
        keywords = [k for k in (c["subclass"], c["class"], c["name_en"]) if k]
        out.append(
            {
                "service_code": c["code"],
                "service_name": c["name"],
                "description": c["name_en"] or c["name"],
                "metadata": bool(c["attributes"]),
                "type": "realtime",
                "keywords": ", ".join(keywords),
                "group": c["programme"],
            }
        )
    return out


def service_definition(conn: Connection, code: str) -> dict[str, Any]:
    for c in list_categories(conn):
        if c["code"] == code:
            return {
                "service_code": code,
                "attributes": [
                    {
                        "variable": a.get("variable", True),
                        "code": a["code"],
                        "datatype": a.get("datatype", "string"),
                        "required": bool(a.get("required", False)),
                        "datatype_description": a.get("datatype_description") or "",
                        "order": a.get("order", i + 1),
                        "description": a.get("description") or a["code"],
                        "values": [
                            {"key": v["key"], "name": v.get("name") or v["key"]}
                            for v in a.get("values") or []
                        ],
                    }
                    for i, a in enumerate(c["attributes"] or [])
                ],
            }
    raise NotFound(f"service_code {code!r} not found", field="service_code")


def require_service(conn: Connection, code: str | None) -> str:
    if not code:
        raise InvalidInput("service_code is required", field="service_code")
    found = request_queries.category(conn, code=code)
    if found is None or not found.active:
        raise NotFound(f"service_code {code!r} not found", field="service_code")
    return found.code


# --- POST requests ---------------------------------------------------------------------------

_CONTACT_FIELDS: Final = ("first_name", "last_name", "email", "phone", "device_id", "account_id")


def _one(form: Mapping[str, Sequence[str]], key: str) -> str | None:
    values = form.get(key) or []
    if len(values) > 1:
        raise InvalidInput(f"{key} is given {len(values)} times", field=key)
    value = values[0] if values else None
    return value if value not in (None, "") else None


def parse_attributes(form: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """``attribute[code]=v`` (and ``attribute[code][]=v`` repeated for multi-value lists)."""
    out: dict[str, Any] = {}
    for key, values in form.items():
        if not key.startswith("attribute"):
            continue
        match = _ATTR_KEY.match(key)
        if match is None:
            raise InvalidInput(
                f"malformed attribute parameter {key!r}: use attribute[CODE]=VALUE",
                field="attribute",
            )
        code, multi = match.group(1), match.group(2)
        if multi or len(values) > 1:
            out[code] = list(values)
        else:
            out[code] = values[0] if values else None
    return out


def intake_from_form(form: Mapping[str, Sequence[str]]) -> Intake:
    """A POST ``requests`` form as an :class:`~geogrid.requests.workflow.Intake`."""
    lat, lon = _one(form, "lat"), _one(form, "long")
    media_url = _one(form, "media_url")
    return Intake(
        category=_one(form, "service_code") or "",
        description=_one(form, "description"),
        lon=lon,
        lat=lat,
        crs="wgs84",
        address_id=_one(form, "address_id"),
        address=_one(form, "address_string"),
        community=_one(form, "jurisdiction_id"),
        attributes=parse_attributes(form),
        contact=Contact(**{k: _one(form, k) for k in _CONTACT_FIELDS}),
        media_urls=[media_url] if media_url else [],
        source="open311",
    )


def post_answer(
    *, request_id: int, token: str | None, flag: str | None, account_id: str | None
) -> list[dict[str, Any]]:
    notice = (
        "The location is outside every grid: the community handles this request." if flag else ""
    )
    return [
        {
            "service_request_id": str(request_id),
            "token": token,
            "service_notice": notice,
            "account_id": account_id,
        }
    ]


# --- GET requests ----------------------------------------------------------------------------


def parse_datetime(value: str, *, field: str, tz: str) -> dt.datetime:
    """A W3C/ISO 8601 datetime (``2010-01-01T00:00:00Z``); no zone = the service's."""
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            f"{field} must be an ISO 8601 datetime like 2010-01-01T00:00:00Z, got {value!r}",
            field=field,
        ) from None
    bounds.check_date(when, field=field)  # a day either side of 0001/9999 overflows
    return when if when.tzinfo else when.replace(tzinfo=zone(tz))


def parse_ids(value: str) -> list[int]:
    ids = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        ids.append(bounds.parse_id(part, field="service_request_id"))
    return ids


def status_of(status: str) -> str:
    return "open" if status in models.OPEN_STATUSES else "closed"


def request_rows(
    conn: Connection,
    *,
    ids: Sequence[int] = (),
    service_codes: Sequence[str] = (),
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    statuses: Sequence[str] = (),
    community: str | None = None,
    token: str | None = None,
) -> list[request_queries.RequestRow]:
    """Requests for Open311's public answers: never care-programme ones, except by token
    (whose holder then sees the status alone, ``tokens/{token}``)."""
    # Asked for by id, the other filters do not apply.
    where = request_queries.RequestWhere(ids=list(ids), community_code=community, token=token)
    if not ids:
        wanted: list[str] | None = None
        if statuses:
            wanted = []
            if "open" in statuses:
                wanted += list(models.OPEN_STATUSES)
            if "closed" in statuses:
                wanted += [
                    s.value for s in models.RequestStatus if s.value not in models.OPEN_STATUSES
                ]
        where = replace(
            where,
            category_codes=list(service_codes),
            received_from=start,
            received_until=end,
            statuses=wanted,
        )
    return request_queries.find_requests(
        conn,
        where=where,
        scope=request_queries.RequestScope(exclude_care=token is None),
        limit=MAX_REQUESTS,
    )


def _status_notes(conn: Connection, ids: Sequence[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = request_queries.notes(conn, request_ids=ids, actions=PUBLIC_NOTE_ACTIONS)
    return {int(r.request_id): str(r.note) for r in rows}  # the latest wins


def _sla_hours(conn: Connection, codes: Sequence[str]) -> dict[str, int]:
    if not codes:
        return {}
    return request_queries.sla_hours_by_code(conn, category_codes=codes)


def requests_out(conn: Connection, rows: Sequence[Any], *, base_url: str) -> list[dict[str, Any]]:
    """GET ``requests`` items (public: no contact, no address id, no names)."""
    ids = [int(r.id) for r in rows]
    notes = _status_notes(conn, ids)
    media = media_of(conn, ids, base_url=base_url)
    sla = _sla_hours(conn, sorted({r.category_code for r in rows}))
    out = []
    for r in rows:
        tz = r.timezone
        expected = r.due_at
        if expected is None and r.status in models.OPEN_STATUSES:
            expected = sla_due(r.received_at, sla.get(r.category_code, 72), tz)
        place = public_location(r)
        # Care requests never get here (request_rows): every photo listed is public.
        first = media[int(r.id)][0]["url"] if media[int(r.id)] else None
        notice = (
            "The location is outside every grid: the community handles this request."
            if r.flag
            else ""
        )
        out.append(
            {
                "service_request_id": str(r.id),
                "status": status_of(r.status),
                "status_notes": scrub(notes.get(int(r.id))),
                "service_name": r.category_name,
                "service_code": r.category_code,
                "description": scrub(r.description),
                "agency_responsible": agency_responsible(r),
                "service_notice": notice,
                "requested_datetime": iso(r.received_at, tz),
                "updated_datetime": iso(r.updated_at, tz),
                "expected_datetime": iso(expected, tz),
                "address": place["address"],
                "address_id": None,
                "zipcode": None,
                "lat": place["lat"],
                "long": place["lon"],
                "media_url": first,
            }
        )
    return out

"""The case workflow of a request, after GB/T 30428 (digital city management).

信息采集/受理 ``received`` → 立案 ``registered`` → 派遣 ``dispatched`` (the SLA clock starts) →
处置 ``in_progress`` → 处置反馈 ``resolved`` → 核查结案 ``closed`` → 评价 (evaluation); also
上报 ``escalated`` to a department (which resolves it or sends it back), 不予受理
``rejected`` and reopening. :data:`TRANSITIONS` is the whole state machine: an action not
listed from the current status is refused (:class:`~geogrid.errors.Conflict`).

Every change is one transaction that

1. claims the row with ``UPDATE … SET version = version + 1 WHERE id = ? AND version = ?``
   (optimistic locking: each action carries the ``version`` its author saw; of two people
   acting on the same version one wins, the other gets ``Conflict`` with the current state).
   Claiming first also takes the write lock at the first statement, so on SQLite a second
   writer waits (``busy_timeout``) instead of failing on a stale snapshot;
2. checks the actor's role and scope, the transition and its parameters — any error rolls
   the whole transaction back, so nothing is half-written;
3. writes the new state and appends one ``request_events`` row (who, when, from, to, note,
   action, version). Events are never edited: a trigger refuses UPDATE (migration 0003);
4. queues the webhook notifications (an outbox in the same transaction: a notification
   exists if and only if the change was committed).

SLA deadlines are wall-clock hours in the community's time zone (Asia/Shanghai by default):
``due_at = dispatched_at + sla_hours`` computed on the local clock (in a zone with daylight
saving time, 24 h after 09:00 is 09:00 the next day). A working-hours calendar is not applied.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final

import pyproj
from shapely.geometry import Point
from shapely.ops import nearest_points
from sqlalchemy import Connection

from geogrid import audit, bounds
from geogrid import crs as gcrs
from geogrid.access import Actor, Forbidden
from geogrid.assign import assign_requests
from geogrid.db import models, queries
from geogrid.db.queries import requests as request_queries
from geogrid.errors import Conflict, InvalidInput, NotFound
from geogrid.periods import zone
from geogrid.requests import webhooks
from geogrid.requests.media import Photo, check_photos
from geogrid.settings import RequestsSettings

S = models.RequestStatus
R = models.Role

#: Flag of a request whose location is outside every grid (handled at the community level).
FLAG_OUTSIDE_GRIDS: Final = "outside_grids"
SATISFACTION_VALUES: Final = ("satisfied", "unsatisfied")
MAX_STRING_ATTRIBUTE: Final = 200
_GEOD: Final = pyproj.Geod(ellps="WGS84")


class Action(StrEnum):
    RECEIVE = "receive"
    REGISTER = "register"
    REJECT = "reject"
    DISPATCH = "dispatch"
    START = "start"
    ESCALATE = "escalate"
    SEND_BACK = "send_back"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"
    EVALUATE = "evaluate"
    REASSIGN = "reassign"


@dataclass(frozen=True)
class Transition:
    """One action: the statuses it starts from, where it leads (None: stays), who may."""

    sources: frozenset[str]
    target: str | None
    roles: frozenset[models.Role]
    note_required: bool = False
    description: str = ""


def _t(
    sources: Sequence[S],
    target: S | None,
    roles: Sequence[models.Role],
    note: bool = False,
    description: str = "",
) -> Transition:
    return Transition(
        frozenset(s.value for s in sources),
        None if target is None else target.value,
        frozenset(roles),
        note,
        description,
    )


_OPEN: Final = (S.RECEIVED, S.REGISTERED, S.DISPATCHED, S.IN_PROGRESS, S.ESCALATED)
_OFFICIALS: Final = (R.OFFICIAL, R.ADMIN)

#: The state machine (docs/api.md, "Request actions").
TRANSITIONS: Final[dict[Action, Transition]] = {
    Action.REGISTER: _t([S.RECEIVED], S.REGISTERED, _OFFICIALS, False, "立案: real and in scope"),
    Action.REJECT: _t([S.RECEIVED, S.REGISTERED], S.REJECTED, _OFFICIALS, True, "不予受理"),
    Action.DISPATCH: _t(
        [S.REGISTERED], S.DISPATCHED, _OFFICIALS, False, "派遣 to the member; the SLA starts"
    ),
    Action.START: _t([S.DISPATCHED], S.IN_PROGRESS, (R.MEMBER, *_OFFICIALS), False, "处置"),
    Action.ESCALATE: _t(
        [S.DISPATCHED, S.IN_PROGRESS],
        S.ESCALATED,
        (R.MEMBER, *_OFFICIALS),
        True,
        "上报 to a department",
    ),
    Action.SEND_BACK: _t(
        [S.ESCALATED], S.DISPATCHED, (R.DEPARTMENT, *_OFFICIALS), True, "returned to the member"
    ),
    Action.RESOLVE: _t(
        [S.DISPATCHED, S.IN_PROGRESS, S.ESCALATED],
        S.RESOLVED,
        (R.MEMBER, R.DEPARTMENT, *_OFFICIALS),
        True,
        "处置反馈, with a note and optional photos",
    ),
    Action.CLOSE: _t([S.RESOLVED], S.CLOSED, _OFFICIALS, False, "核查结案"),
    Action.REOPEN: _t([S.RESOLVED, S.CLOSED], S.DISPATCHED, _OFFICIALS, True, "back to the member"),
    Action.EVALUATE: _t(
        [S.RESOLVED, S.CLOSED], None, (R.PUBLIC, *_OFFICIALS), False, "评价 by the reporter"
    ),
    Action.REASSIGN: _t(_OPEN, None, _OFFICIALS, True, "another member, with a reason"),
}


# --- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contact:
    """The reporter's optional contact details (personal data, Open311 names)."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    device_id: str | None = None
    account_id: str | None = None

    def values(self) -> dict[str, str | None]:
        return {
            "first_name": self.first_name,
            "last_name": self.last_name,
            "email": self.email,
            "phone": self.phone,
            "device_id": self.device_id,
            "account_id": self.account_id,
        }

    def __bool__(self) -> bool:
        return any(v for v in self.values().values())


@dataclass(frozen=True)
class Intake:
    """A new request: a category, a location (point, address id or address) and details.

    Error fields use these names (``category``, ``lon``, ``lat``, ``address_id``, ``address``,
    ``description``, ``attributes.<code>``); Open311 maps them onto its own.
    """

    category: str
    description: str | None = None
    lon: Any = None
    lat: Any = None
    crs: str = "wgs84"
    address_id: str | None = None
    address: str | None = None
    community: str | None = None
    attributes: Mapping[str, Any] | None = None
    contact: Contact = field(default_factory=Contact)
    media_urls: Sequence[str] = ()
    photos: Sequence[Photo] = ()
    source: str = "api"
    #: For imports and tests; the API always files at the current time.
    received_at: dt.datetime | None = None


@dataclass(frozen=True)
class Geocoded:
    """An address resolved by the lookup: WGS 84 point and, when a household, its id."""

    lon: float
    lat: float
    address_id: str | None = None


#: Resolves an address (and an optional community code) to a point; raises NotFound.
Geocoder = Callable[[str, str | None], Geocoded]


@dataclass(frozen=True)
class ActionInput:
    """Parameters of an action (which ones apply depends on the action)."""

    version: int | None = None
    note: str | None = None
    member_id: int | None = None
    department: str | None = None
    satisfaction: str | None = None
    comment: str | None = None
    reopen: bool = False
    token: str | None = None
    photos: Sequence[Photo] = ()
    media_urls: Sequence[str] = ()


@dataclass
class Outcome:
    """What a change did: the request's new state, its event and the queued notifications."""

    request_id: int
    status: str
    version: int
    event_ids: list[int] = field(default_factory=list)
    deliveries: list[int] = field(default_factory=list)
    token: str | None = None
    flag: str | None = None
    assignment_rule: str | None = None


# --- helpers ---------------------------------------------------------------------------------


def sla_due(start: dt.datetime, hours: int, tz: str) -> dt.datetime:
    """The SLA deadline: ``hours`` wall-clock hours after ``start`` in ``tz``.

    Aware datetimes in one zone add on the local clock (Python's datetime arithmetic), which
    is what "wall-clock hours" means; the result is converted back to UTC.
    """
    local = start.astimezone(zone(tz))
    return (local + dt.timedelta(hours=int(hours))).astimezone(dt.UTC)


def _text(value: Any, *, field: str, limit: int, required: bool = False) -> str | None:
    """Free text as stored: stripped, without control characters (``bounds.clean_text``)."""
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{field} must be text", field=field)
    if value is not None and len(value) > limit:
        raise InvalidInput(
            f"{field} is {len(value)} characters long; at most {limit} are allowed", field=field
        )
    text = bounds.clean_text(value).strip() if value is not None else ""
    if not text:
        if required:
            raise InvalidInput(f"{field} is required", field=field)
        return None
    return text


def _url(value: Any, *, field: str) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise InvalidInput(f"{field} must be an http(s) URL", field=field)
    if len(value) > 2000:
        raise InvalidInput(f"{field} is longer than 2000 characters", field=field)
    return value


def _store_media(
    conn: Connection,
    *,
    request_id: int,
    event_id: int | None,
    photos: Sequence[Photo],
    urls: Sequence[str],
) -> None:
    now = models.utcnow()
    rows: list[dict[str, Any]] = [
        {
            "request_id": request_id,
            "event_id": event_id,
            "url": None,
            "content_type": p.content_type,
            "filename": (p.filename or None) and str(p.filename)[:200],
            "size": len(p.data),
            "sha256": hashlib.sha256(p.data).hexdigest(),
            "data": p.data,
            "created_at": now,
        }
        for p in photos
    ]
    rows += [
        {
            "request_id": request_id,
            "event_id": event_id,
            "url": u,
            "content_type": None,
            "filename": None,
            "size": None,
            "sha256": None,
            "data": None,
            "created_at": now,
        }
        for u in urls
    ]
    request_queries.insert_media(conn, rows=rows)


# --- categories and attributes ---------------------------------------------------------------


def category_row(
    conn: Connection, code: str, *, field: str = "category"
) -> request_queries.CategoryRow:
    """An active category by code, or :class:`InvalidInput` naming ``field``."""
    row = request_queries.category(conn, code=code)
    if row is None or not row.active:
        raise InvalidInput(f"unknown category {code!r}", field=field)
    return row


def check_attributes(
    definition: Sequence[Mapping[str, Any]] | None, values: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """Check ``values`` against a service definition; return them normalised.

    Errors name ``attributes.<code>``. Unknown codes, a missing required value, a value of
    the wrong datatype or outside the definition's list are refused.
    """
    values = dict(values or {})
    if values and not isinstance(values, Mapping):
        raise InvalidInput("attributes must be an object of code: value", field="attributes")
    defs = {str(d["code"]): d for d in (definition or [])}
    for code in values:
        if code not in defs:
            known = ", ".join(sorted(defs)) or "none"
            raise InvalidInput(
                f"the category has no attribute {code!r} (it has: {known})",
                field=f"attributes.{code}",
            )
    out: dict[str, Any] = {}
    for code, d in defs.items():
        f = f"attributes.{code}"
        if not d.get("variable", True):
            continue  # informational attribute: no value is taken
        value = values.get(code)
        empty = value is None or value == "" or value == []
        if empty:
            if d.get("required"):
                raise InvalidInput(f"attribute {code!r} is required", field=f)
            continue
        kind = d.get("datatype", "string")
        keys = [str(v["key"]) for v in d.get("values") or []]
        if kind == "number":
            try:
                number = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise InvalidInput(f"attribute {code!r} must be a number", field=f) from None
            if not math.isfinite(number):
                raise InvalidInput(f"attribute {code!r} must be a finite number", field=f)
            out[code] = int(number) if number.is_integer() else number
        elif kind == "datetime":
            try:
                when = dt.datetime.fromisoformat(str(value))
            except ValueError:
                raise InvalidInput(
                    f"attribute {code!r} must be an ISO 8601 datetime", field=f
                ) from None
            if when.tzinfo is None:
                raise InvalidInput(f"attribute {code!r} needs a time zone", field=f)
            out[code] = when.isoformat()
        elif kind == "singlevaluelist":
            if isinstance(value, list):
                if len(value) != 1:
                    raise InvalidInput(f"attribute {code!r} takes one value", field=f)
                value = value[0]
            if str(value) not in keys:
                raise InvalidInput(
                    f"attribute {code!r} must be one of {', '.join(keys)}, got {value!r}", field=f
                )
            out[code] = str(value)
        elif kind == "multivaluelist":
            items = value if isinstance(value, list) else str(value).split(",")
            items = [str(v).strip() for v in items if str(v).strip()]
            bad = [v for v in items if v not in keys]
            if bad:
                raise InvalidInput(
                    f"attribute {code!r} values must be among {', '.join(keys)}, got "
                    f"{', '.join(bad)}",
                    field=f,
                )
            out[code] = items
        else:
            limit = MAX_STRING_ATTRIBUTE if kind == "string" else 4000
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise InvalidInput(f"attribute {code!r} must be text", field=f)
            text = str(value)
            if len(text) > limit:
                raise InvalidInput(f"attribute {code!r} is longer than {limit} characters", field=f)
            out[code] = text
    return out or None


# --- location --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Place:
    lon: float
    lat: float
    address_id: str | None
    community_id: int
    timezone: str


def _point_from_input(intake: Intake) -> tuple[float, float] | None:
    if intake.lon is None and intake.lat is None:
        return None
    name = gcrs.normalize_crs(intake.crs or "wgs84", field="crs")
    if intake.lon is None or (isinstance(intake.lon, str) and not intake.lon.strip()):
        raise InvalidInput("lon is missing: give lon and lat together", field="lon")
    if intake.lat is None or (isinstance(intake.lat, str) and not intake.lat.strip()):
        raise InvalidInput("lat is missing: give lon and lat together", field="lat")
    x, y = gcrs.check_lonlat(intake.lon, intake.lat)
    if name in (gcrs.WGS84, gcrs.CGCS2000):
        return x, y
    lon, lat = gcrs.to_wgs84(x, y, name)
    return gcrs.check_lonlat(lon, lat)


def _household_point(conn: Connection, address_id: str) -> tuple[float, float, int]:
    row = request_queries.household_point(conn, address_id=address_id)
    if row is None:
        raise InvalidInput(f"no household with address_id {address_id!r}", field="address_id")
    return row.lon, row.lat, row.community_id


def _community_for_point(
    conn: Connection,
    lon: float,
    lat: float,
    *,
    community_code: str | None,
    tolerance_m: float,
) -> tuple[int, str]:
    """The community whose boundary covers the point (lowest code), else the nearest one
    within ``tolerance_m`` metres; :class:`InvalidInput` when none is that near."""
    if community_code is not None:
        try:
            queries.community_row(conn, code=community_code)
        except NotFound as exc:  # a code given with a location is a bad input (400), not a 404
            raise InvalidInput(exc.message, field="community") from None
    areas = request_queries.community_areas(conn, code=community_code)
    if not areas:
        raise NotFound("the database holds no community yet: import one or run `geogrid demo`")
    point = Point(lon, lat)
    best: tuple[float, request_queries.CommunityArea] | None = None
    for area in areas:
        if area.boundary.covers(point):
            return area.id, area.timezone
        near = nearest_points(area.boundary, point)[0]
        _, _, dist = _GEOD.inv(lon, lat, near.x, near.y)
        if best is None or dist < best[0]:
            best = (float(dist), area)
    assert best is not None
    if best[0] > tolerance_m:
        raise InvalidInput(
            f"the location (lon {lon:.6f}, lat {lat:.6f}) is outside the service area: the "
            f"nearest community ({best[1].code}) is {best[0]:,.0f} m away",
            field="location",
        )
    return best[1].id, best[1].timezone


def _locate(
    conn: Connection, intake: Intake, geocoder: Geocoder | None, settings: RequestsSettings
) -> _Place:
    """The request's point (WGS 84), address id and community. Precedence when several
    are given: lon/lat, then address_id, then address (Open311 allows all three)."""
    point = _point_from_input(intake)
    address_id = _text(intake.address_id, field="address_id", limit=64)
    address = _text(intake.address, field="address", limit=500)
    if point is None and address_id is None and address is None:
        raise InvalidInput(
            "a location is required: lon and lat, address_id or address", field="location"
        )
    if point is None and address_id is not None:
        lon, lat, _ = _household_point(conn, address_id)
        point = (lon, lat)
    elif point is None and address is not None:
        if geocoder is None:
            raise InvalidInput(
                "addresses cannot be matched here: give lon and lat or address_id",
                field="address",
            )
        try:
            found = geocoder(address, intake.community)
        except (NotFound, InvalidInput) as exc:
            raise InvalidInput(
                f"the address could not be located: {exc.message}",
                field="address",
                details=exc.details,
            ) from None
        point = (found.lon, found.lat)
        address_id = found.address_id
    elif address_id is not None:
        _household_point(conn, address_id)  # must exist even when a point is given
    assert point is not None
    community_id, tz = _community_for_point(
        conn,
        point[0],
        point[1],
        community_code=intake.community,
        tolerance_m=settings.outside_tolerance_m,
    )
    return _Place(point[0], point[1], address_id, community_id, tz)


# --- intake ----------------------------------------------------------------------------------


def receive(
    conn: Connection,
    intake: Intake,
    *,
    actor: Actor,
    geocoder: Geocoder | None = None,
    settings: RequestsSettings | None = None,
) -> Outcome:
    """File a new request (受理) and assign it: point → grid → field → member.

    A location outside every grid is accepted at the community level (no grid, no member,
    ``assignment_rule`` ``none``) and flagged ``outside_grids`` for an official. Everything
    is checked before anything is written; the caller owns the transaction.
    """
    settings = settings or RequestsSettings.defaults()
    actor.require(*models.Role, what="filing a request")
    cat = category_row(conn, intake.category)
    description = _text(intake.description, field="description", limit=settings.max_description)
    attributes = check_attributes(cat.attributes, intake.attributes)
    urls = [_url(u, field=f"media_url[{i}]") for i, u in enumerate(intake.media_urls)]
    photos = check_photos(intake.photos, max_photo_bytes=settings.max_photo_bytes, field="photos")
    contact = intake.contact
    for name, value in contact.values().items():
        _text(value, field=name, limit=200)
    place = _locate(conn, intake, geocoder, settings)
    actor.require_community(place.community_id, what="filing a request in this community")

    now = models.utcnow()
    received_at = intake.received_at or now
    token = secrets.token_urlsafe(12)
    rid = request_queries.insert_request(
        conn,
        community_id=place.community_id,
        category_id=cat.id,
        programme=cat.programme,
        description=description,
        source=(intake.source or "api")[:32],
        address_id=place.address_id,
        status=S.RECEIVED.value,
        received_at=received_at,
        updated_at=now,
        lon=place.lon,
        lat=place.lat,
        token=token,
        attributes=attributes,
    )
    if contact or intake.address:
        request_queries.insert_contact(
            conn, request_id=rid, address_string=intake.address, **contact.values()
        )
    event_id = _event(
        conn,
        request_id=rid,
        at=received_at,
        actor=actor,
        action=Action.RECEIVE,
        from_status=None,
        to_status=S.RECEIVED.value,
        version=1,
        note=None,
        details={"source": intake.source} if intake.source else None,
    )
    _store_media(conn, request_id=rid, event_id=event_id, photos=photos, urls=urls)
    rule = assign_one(conn, request_id=rid, community_id=place.community_id)
    flag = FLAG_OUTSIDE_GRIDS if rule == "none" else None
    if flag:
        request_queries.update_request(conn, request_id=rid, values={"flag": flag})
    given = {
        "description": description,
        "address": intake.address,
        "attributes": attributes,
        "photos": photos,
        "media_urls": urls,
        **contact.values(),
    }
    audit.record(
        conn,
        actor=actor,
        action=Action.RECEIVE.value,
        subject="request",
        subject_id=rid,
        fields=[name for name, value in given.items() if value],
        details={
            "community_id": place.community_id,
            "category": cat.code,
            "source": intake.source,
            "assignment_rule": rule,
        },
    )
    return Outcome(
        rid, S.RECEIVED.value, 1, [event_id], token=token, flag=flag, assignment_rule=rule
    )


def assign_one(conn: Connection, *, request_id: int, community_id: int) -> str:
    """Run the grid → field → member assignment for one request; return its rule."""
    plan = queries.active_plan(conn, community_id=community_id)
    if plan is None:
        request_queries.update_request(
            conn,
            request_id=request_id,
            values={
                "grid_id": None,
                "field_id": None,
                "member_id": None,
                "assignment_rule": "none",
            },
        )
        return "none"
    assign_requests(
        conn,
        community_id=community_id,
        plan_id=plan.id,
        all_requests=True,
        request_ids=[request_id],
    )
    return str(request_queries.assignment_rule(conn, request_id=request_id))


def _event(
    conn: Connection,
    *,
    request_id: int,
    at: dt.datetime,
    actor: Actor,
    action: Action,
    from_status: str | None,
    to_status: str,
    version: int,
    note: str | None,
    details: dict[str, Any] | None = None,
) -> int:
    return request_queries.insert_event(
        conn,
        request_id=request_id,
        at=at,
        actor=actor.label[:200],
        actor_role=actor.role.value,
        action=action.value,
        from_status=from_status,
        to_status=to_status,
        version=version,
        note=note,
        details=details,
    )


# --- actions ---------------------------------------------------------------------------------


def _check_scope(actor: Actor, action: Action, row: Any, params: ActionInput) -> None:
    actor.require_community(row.community_id, what=f"{action.value} on request {row.id}")
    if actor.role is R.MEMBER and row.member_id != actor.member_id:
        raise Forbidden(f"request {row.id} is not assigned to this member")
    if actor.role is R.DEPARTMENT and (
        row.status != S.ESCALATED.value or row.escalated_to_id != actor.department_id
    ):
        raise Forbidden(f"request {row.id} is not escalated to this department")
    if actor.role is R.MEMBER and action is Action.RESOLVE and row.status == S.ESCALATED.value:
        raise Forbidden(f"request {row.id} is with a department: it resolves it or sends it back")
    if actor.role is R.PUBLIC and not (
        params.token and row.token and secrets.compare_digest(params.token, row.token)
    ):
        raise Forbidden("evaluating a request needs its token (given when it was filed)")


def allowed_actions(actor: Actor, row: Any) -> list[Action]:
    """The actions ``actor`` may take on request ``row`` from its current status, in the
    order of :data:`TRANSITIONS` — the checks :func:`act` makes of role, scope and status,
    before any input (a page offers these forms). ``evaluate`` by the public needs the token,
    which a page does not hold: it is not offered to the public."""
    out = []
    for action, transition in TRANSITIONS.items():
        if row.status not in transition.sources or not actor.has(*transition.roles):
            continue
        try:
            _check_scope(actor, action, row, ActionInput())
        except Forbidden:
            continue
        out.append(action)
    return out


def actions_on(conn: Connection, *, request_id: int, actor: Actor) -> list[Action]:
    """:func:`allowed_actions` of the request ``request_id`` as it is now (none if it does
    not exist)."""
    row = request_queries.request_row(conn, request_id=request_id)
    return [] if row is None else allowed_actions(actor, row)


def _conflict_state(row: Any) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "status": row.status,
        "version": int(row.version),
        "updated_at": row.updated_at.isoformat(),
    }


def act(
    conn: Connection,
    *,
    request_id: int,
    action: str,
    actor: Actor,
    params: ActionInput,
    settings: RequestsSettings | None = None,
    now: dt.datetime | None = None,
) -> Outcome:
    """Perform ``action`` on a request, as the module docstring describes."""
    settings = settings or RequestsSettings.defaults()
    try:
        act_ = Action(action)
    except ValueError:
        act_ = None
    if act_ is None or act_ is Action.RECEIVE:
        names = ", ".join(a.value for a in TRANSITIONS)
        raise NotFound(f"unknown action {action!r}: one of {names}", field="action")
    transition = TRANSITIONS[act_]
    if params.version is None:
        raise InvalidInput(
            "version is required: the version of the request you saw", field="version"
        )
    now = now or models.utcnow()
    # 1. Claim the row (see the module docstring: optimistic lock + write lock first).
    claimed = request_queries.claim_request(
        conn, request_id=request_id, version=params.version, now=now
    )
    row = request_queries.request_state(conn, request_id=request_id)
    if row is None:
        raise NotFound(f"no request with id {request_id}", field="id")
    # 2. Who may — before saying anything about the state.
    actor.require(*transition.roles, what=f"the action {act_.value}")
    _check_scope(actor, act_, row, params)
    if not claimed:
        raise Conflict(
            f"request {request_id} has changed: you sent version {params.version}, it is at "
            f"version {row.version} ({row.status}); reload it and try again",
            field="version",
            details={"current": _conflict_state(row)},
        )
    before = row.status
    if before not in transition.sources:
        allowed = ", ".join(sorted(transition.sources))
        raise Conflict(
            f"cannot {act_.value} a request that is {before} (allowed from: {allowed})",
            field="action",
            details={"current": {**_conflict_state(row), "version": int(row.version) - 1}},
        )
    note = _text(params.note, field="note", limit=settings.max_description)
    if transition.note_required and note is None:
        raise InvalidInput(f"{act_.value} needs a note (the reason or feedback)", field="note")
    urls = [_url(u, field=f"media_urls[{i}]") for i, u in enumerate(params.media_urls)]
    photos = check_photos(params.photos, max_photo_bytes=settings.max_photo_bytes, field="photos")
    if (params.photos or urls) and act_ not in (Action.RESOLVE, Action.START, Action.ESCALATE):
        raise InvalidInput(
            f"photos go with resolve, start or escalate, not {act_.value}", field="photos"
        )

    values: dict[str, Any] = {}
    details: dict[str, Any] = {}
    after = transition.target or before
    version = int(row.version)
    deliveries: list[str] = []
    tz = queries.community_by_id(conn, community_id=row.community_id).timezone

    if act_ is Action.REGISTER:
        values["registered_at"] = now
    elif act_ is Action.REJECT:
        pass
    elif act_ in (Action.DISPATCH, Action.REOPEN, Action.SEND_BACK):
        if act_ is Action.DISPATCH and params.member_id is not None:
            values.update(_manual_member(conn, row, params.member_id))
            details["member_id"] = params.member_id
        values["escalated_to_id"] = None
        if act_ is not Action.SEND_BACK:
            # The clock starts at dispatch (GB/T 30428); a reopened case gets a new one.
            sla = request_queries.sla_hours(conn, category_id=row.category_id)
            values.update(dispatched_at=now, due_at=sla_due(now, sla, tz), overdue_notified_at=None)
            details["due_at"] = values["due_at"].isoformat()
        if act_ is Action.REOPEN:
            values.update(
                resolved_at=None,
                closed_at=None,
                satisfaction=None,
                satisfaction_comment=None,
                evaluated_at=None,
            )
        deliveries.append(webhooks.EVENT_DISPATCHED)
    elif act_ is Action.START:
        pass
    elif act_ is Action.ESCALATE:
        dept_id, dept_code = _department(conn, row, params.department)
        values["escalated_to_id"] = dept_id
        details["department"] = dept_code
        deliveries.append(webhooks.EVENT_ESCALATED)
    elif act_ is Action.RESOLVE:
        values["resolved_at"] = now
        deliveries.append(webhooks.EVENT_RESOLVED)
    elif act_ is Action.CLOSE:
        values["closed_at"] = now
    elif act_ is Action.EVALUATE:
        sat = params.satisfaction
        if sat not in SATISFACTION_VALUES:
            raise InvalidInput(
                f"satisfaction must be one of {', '.join(SATISFACTION_VALUES)}, got {sat!r}",
                field="satisfaction",
            )
        comment = _text(params.comment, field="comment", limit=settings.max_description)
        values.update(satisfaction=sat, satisfaction_comment=comment, evaluated_at=now)
        details["satisfaction"] = sat
        note = note or comment
    elif act_ is Action.REASSIGN:
        if params.member_id is None:
            raise InvalidInput("reassign needs member_id", field="member_id")
        values.update(_manual_member(conn, row, params.member_id))
        details.update(member_id=params.member_id, previous_member_id=row.member_id)
    if after != before:
        values["status"] = after
    if values:
        request_queries.update_request(conn, request_id=request_id, values=values)
    event_ids = [
        _event(
            conn,
            request_id=request_id,
            at=now,
            actor=actor,
            action=act_,
            from_status=before,
            to_status=after,
            version=version,
            note=note,
            details=details or None,
        )
    ]
    _store_media(conn, request_id=request_id, event_id=event_ids[0], photos=photos, urls=urls)
    written = {"note": note, "photos": photos, "media_urls": urls}
    if act_ is Action.EVALUATE:
        written["comment"] = values.get("satisfaction_comment")
    audit.record(
        conn,
        actor=actor,
        action=act_.value,
        subject="request",
        subject_id=request_id,
        fields=[name for name, value in written.items() if value],
        details={"from": before, "to": after, "version": version, **details},
    )
    if act_ is Action.EVALUATE and params.satisfaction == "unsatisfied" and params.reopen:
        # 评价 unsatisfied may reopen: a second, separate transition (and version).
        reopened = act(
            conn,
            request_id=request_id,
            action=Action.REOPEN.value,
            # Allowed to reopen as the service; recorded with the evaluating key and origin.
            actor=replace(
                Actor.system(f"{actor.label} (evaluation)"),
                key_id=actor.key_id,
                client=actor.client,
                via=actor.via,
            ),
            params=ActionInput(version=version, note=note or "the reporter is not satisfied"),
            settings=settings,
            now=now,
        )
        reopened.event_ids[:0] = event_ids
        return reopened
    queued: list[int] = []
    for event in deliveries:
        queued += webhooks.enqueue(conn, event=event, request_id=request_id)
    return Outcome(request_id, after, version, event_ids, queued)


def _manual_member(conn: Connection, row: Any, member_id: int) -> dict[str, Any]:
    member = request_queries.member_standing(conn, member_id=member_id)
    if member is None or member.community_id != row.community_id:
        raise InvalidInput(f"no member {member_id} in the request's community", field="member_id")
    if not member.active:
        raise InvalidInput(f"member {member_id} is not active", field="member_id")
    return {"member_id": member_id, "assignment_rule": "manual"}


def _department(conn: Connection, row: Any, code: str | None) -> tuple[int, str]:
    if code is None:
        dept = request_queries.category_department(conn, category_id=row.category_id)
        if dept is None:
            raise InvalidInput(
                "the category has no default department: give department", field="department"
            )
        return int(dept.id), str(dept.code)
    dept = request_queries.department(conn, code=code)
    if dept is None:
        raise InvalidInput(f"unknown department {code!r}", field="department")
    return int(dept.id), str(dept.code)

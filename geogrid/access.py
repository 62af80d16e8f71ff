"""Who may do what: API keys with roles, browser sessions, and the personal-data read log.

Keys
----
A key reads ``gg_<prefix>_<secret>``: ``prefix`` (8 hex digits) finds the row, the whole key
is checked against a SHA-256 hash. A fast hash is the right one here: the secret is 256 random
bits, so there is nothing to guess a dictionary for, and a slow password hash would only
slow down every request (OWASP, "Password Storage Cheat Sheet", applies to low-entropy
secrets). The key is shown once, when created; only its hash is stored.

Roles (docs/api.md, "Access")
-----------------------------
``public`` files requests (Open311 apps) and sees no personal data; ``member`` sees and acts on
its own requests, field and households; ``department`` on what is escalated to it;
``official`` on everything of its community (or district, with no community), names masked;
``planner`` works on plans; ``admin`` also manages keys, webhooks and the catalogue. Reading
unmasked personal data needs the key's ``personal_data`` right, and every such read is logged
in the audit log (``geogrid.audit``), as is every write.

Sessions
--------
Every role but ``public`` signs in from a browser with its key (a grid member also with a
one-time link an official prints: :func:`create_sign_in_link`); the session cookie carries a
random token whose hash is stored. A session writes only through the app's own HTML forms,
each with a CSRF token (``api.web``); ``/v1`` JSON writes need the key itself in a header,
which a cross-site page cannot send.
"""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import hashlib
import hmac
import math
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Final

from sqlalchemy import Connection

from geogrid import audit
from geogrid.db import models, queries
from geogrid.db.queries import access as access_queries
from geogrid.db.queries import catalogue as catalogue_queries
from geogrid.errors import Forbidden, InvalidInput, NotAuthenticated, NotFound, TooManyAttempts
from geogrid.i18n import N_
from geogrid.periods import DEFAULT_TZ, iso
from geogrid.privacy import mask_name

Role = models.Role

#: Roles that may sign in from a browser (login page + session cookie).
#: Roles that may sign in in a browser: everyone but the public apps' keys (issue 15).
SESSION_ROLES: Final = frozenset(
    {Role.MEMBER, Role.DEPARTMENT, Role.OFFICIAL, Role.PLANNER, Role.ADMIN}
)
#: Roles whose keys may carry the personal-data right.
PERSONAL_DATA_ROLES: Final = frozenset({Role.MEMBER, Role.DEPARTMENT, Role.OFFICIAL, Role.ADMIN})
#: How long a browser session lasts.
SESSION_HOURS: Final = 12
KEY_PREFIX: Final = "gg_"


@dataclass(frozen=True)
class Actor:
    """Who is acting: the role and scope of a key (or of the CLI, ``system``).

    ``community_ids`` is the scope: the communities the key may act on — its community, or
    those of its subdistrict or district (looked up when the key is used, so a community
    imported later joins its subdistrict's keys) — or None for a key limited to none."""

    role: models.Role
    label: str
    key_id: int | None = None
    community_id: int | None = None
    member_id: int | None = None
    department_id: int | None = None
    personal_data: bool = False
    via_session: bool = False
    #: False only for a caller without a key.
    authenticated: bool = True
    subdistrict_code: str | None = None
    district_code: str | None = None
    community_ids: frozenset[int] | None = None
    #: Where the call comes from, for the audit log: the HTTP client's address, or
    #: ``<login>@<host>`` of the operator running a command.
    client: str | None = None
    #: Through what: the route (``POST /v1/visits``) or the command (``geogrid members add``).
    via: str | None = None
    #: Who is signed in, as the pages show it: a member key's member (masked name), else the
    #: key's name as its creator gave it (``--name``).
    name: str | None = None

    @classmethod
    def anonymous(cls) -> Actor:
        """A caller without a key: public reads only."""
        return cls(role=Role.PUBLIC, label="anonymous", authenticated=False)

    @classmethod
    def system(cls, label: str = "cli", *, via: str | None = None) -> Actor:
        """The command line: an operator on the server, acting as admin (recorded in the
        audit log with the operator's login and host)."""
        return cls(
            role=Role.ADMIN, label=label, personal_data=True, client=local_operator(), via=via
        )

    def reached(self, *, client: str | None, via: str | None) -> Actor:
        """The same actor, with where the call came from and through what (audit log)."""
        return replace(self, client=client, via=via)

    @property
    def scoped(self) -> bool:
        """Whether the key is limited to some communities (one, a subdistrict, a district)."""
        return self.community_ids is not None

    def may_act_on(self, community_id: int | None) -> bool:
        return self.community_ids is None or community_id in self.community_ids

    def has(self, *roles: models.Role) -> bool:
        return self.role in roles

    def require(self, *roles: models.Role, what: str) -> None:
        """Raise :class:`Forbidden` (or :class:`NotAuthenticated`) unless the role is one of
        ``roles``."""
        if not self.authenticated:
            raise NotAuthenticated(f"{what} needs an API key (X-API-Key header)", field="api_key")
        if self.role in roles:
            return
        names = ", ".join(sorted(r.value for r in roles))
        raise Forbidden(f"{what} needs the role {names}; this key is {self.role.value}")

    def require_community(self, community_id: int | None, *, what: str) -> None:
        """A key scoped to a community (or a subdistrict, a district) may act only there."""
        if not self.may_act_on(community_id):
            raise Forbidden(f"this key is limited to other communities: {what} is not allowed")

    def require_unscoped(self, *, what: str) -> None:
        """What every community shares (the catalogue) is changed only by keys of no one
        community: a community's key must not change it for the others."""
        if self.scoped:
            raise Forbidden(
                f"{what} changes it for every community: it needs a key that is not limited "
                "to one community, subdistrict or district"
            )

    def require_personal_data(self, *, what: str) -> None:
        if not self.personal_data:
            raise Forbidden(
                f"{what} is personal data: this key has no personal_data right", field="personal"
            )


@functools.cache
def local_operator() -> str:
    """``<login>@<host>`` of the process: who runs a command, for the audit log."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container's uid without a passwd entry)
        user = "uid?"
    return f"{user}@{socket.gethostname()}"


def as_actor(actor: Actor | None) -> Actor:
    """``actor``, or the local operator (:meth:`Actor.system`) for a library call without one."""
    return actor if actor is not None else Actor.system()


def limit_to_scope(
    conn: Connection, actor: Actor, community: str | None, *, what: str
) -> str | None:
    """The community codes (comma-separated, as the maps take them) that ``actor`` may see
    ``what`` of: a scoped key its own communities only (also when none was asked for, which
    would otherwise mean every community), anyone else what was asked."""
    if actor.community_ids is None:
        return community
    own = queries.community_codes(conn, community_ids=actor.community_ids)
    asked = [c.strip() for c in community.split(",") if c.strip()] if community else own
    others = [c for c in asked if c not in own]
    if others:
        raise Forbidden(
            f"this key is limited to {_scope_name(actor, own)}: {what} of "
            f"{', '.join(others)} is not allowed"
        )
    if not asked:
        raise NotFound(f"no community in {_scope_name(actor, own)} yet", field="community")
    return ",".join(asked)


def _scope_name(actor: Actor, own: list[str]) -> str:
    if actor.subdistrict_code is not None:
        return f"subdistrict {actor.subdistrict_code}"
    if actor.district_code is not None:
        return f"district {actor.district_code}"
    return f"community {', '.join(own)}"


# --- keys ------------------------------------------------------------------------------------


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    """A created key: ``key`` is shown once and never stored."""

    id: int
    key: str
    prefix: str
    role: str


def create_key(
    conn: Connection,
    *,
    role: str,
    name: str | None = None,
    community_code: str | None = None,
    member_id: int | None = None,
    department_code: str | None = None,
    personal_data: bool = False,
    subdistrict_code: str | None = None,
    district_code: str | None = None,
    actor: Actor | None = None,
) -> NewKey:
    """Create a key; return it with its secret (shown once). A key may be limited to one
    community, or to the communities of a subdistrict or of a district (by code). Recorded
    in the audit log as ``actor``'s (default: the local operator)."""
    try:
        r = Role(role)
    except ValueError:
        names = ", ".join(x.value for x in Role)
        raise InvalidInput(f"unknown role {role!r}: use one of {names}", field="role") from None
    scopes = [s for s in (community_code, subdistrict_code, district_code) if s is not None]
    if len(scopes) > 1:
        raise InvalidInput(
            "a key is limited to one community, one subdistrict or one district: give one",
            field="community",
        )
    # An area without communities is most likely a typo: a key for it would reach nothing.
    if (subdistrict_code or district_code) and not queries.community_ids_in(
        conn, subdistrict_code=subdistrict_code, district_code=district_code
    ):
        field = "subdistrict" if subdistrict_code else "district"
        raise NotFound(
            f"no community in {field} {subdistrict_code or district_code!r}", field=field
        )
    community_id = None
    if community_code is not None:
        community_id = queries.community_row(conn, code=community_code).id
    department_id = None
    if r is Role.DEPARTMENT:
        if department_code is None:
            raise InvalidInput("a department key needs --department CODE", field="department")
        department_id = catalogue_queries.department_id(conn, code=department_code)
        if department_id is None:
            raise NotFound(f"no department with code {department_code!r}", field="department")
    elif department_code is not None:
        raise InvalidInput("--department is for department keys only", field="department")
    if r is Role.MEMBER:
        if member_id is None:
            raise InvalidInput("a member key needs --member ID", field="member")
        member_community_id = queries.member_community_id(conn, member_id=member_id)
        if member_community_id is None:
            raise NotFound(f"no member with id {member_id}", field="member")
        community_id = community_id or member_community_id
        if community_id != member_community_id:
            raise InvalidInput("the member belongs to another community", field="member")
        if subdistrict_code is not None or district_code is not None:
            raise InvalidInput("a member key belongs to its member's community", field="member")
    elif member_id is not None:
        raise InvalidInput("--member is for member keys only", field="member")
    if personal_data and r not in PERSONAL_DATA_ROLES:
        raise InvalidInput(
            f"a {r.value} key cannot carry the personal_data right", field="personal_data"
        )
    prefix = secrets.token_hex(4)
    while access_queries.prefix_taken(conn, prefix=prefix):
        prefix = secrets.token_hex(4)  # pragma: no cover - 1 in 4 billion
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key_id = access_queries.insert_key(
        conn,
        prefix=prefix,
        key_hash=_hash(key),
        name=name,
        role=r.value,
        community_id=community_id,
        member_id=member_id,
        department_id=department_id,
        personal_data=personal_data,
        subdistrict_code=subdistrict_code,
        district_code=district_code,
    )
    audit.record(
        conn,
        actor=as_actor(actor),
        action="create",
        subject="key",
        subject_id=key_id,
        fields=["name"] if name else (),
        details={
            "prefix": prefix,
            "role": r.value,
            "community_id": community_id,
            "subdistrict": subdistrict_code,
            "district": district_code,
            "member_id": member_id,
            "department": department_code,
            "personal_data": personal_data,
        },
    )
    return NewKey(id=key_id, key=key, prefix=prefix, role=r.value)


def _prefix_of(key: str) -> str | None:
    if not key.startswith(KEY_PREFIX):
        return None
    prefix, sep, _ = key[len(KEY_PREFIX) :].partition("_")
    return prefix if sep and len(prefix) == 8 else None


def revoke_key(conn: Connection, *, key_or_prefix: str, actor: Actor | None = None) -> str:
    """Revoke a key given in full or by its prefix; return the prefix (audit log: ``actor``,
    default the local operator)."""
    prefix = _prefix_of(key_or_prefix) or key_or_prefix
    row = access_queries.key_by_prefix(conn, prefix=prefix)
    if row is None:
        raise NotFound(f"no key with prefix {prefix!r}", field="key")
    now = models.utcnow()
    if row.revoked_at is None:
        access_queries.set_key_revoked(conn, key_id=row.id, at=now)
    access_queries.revoke_key_sessions(conn, key_id=row.id, at=now)
    audit.record(
        conn,
        actor=as_actor(actor),
        action="revoke",
        subject="key",
        subject_id=row.id,
        details={"prefix": prefix, "was_revoked": row.revoked_at is not None},
    )
    return prefix


def list_keys(
    conn: Connection, *, include_revoked: bool = False, tz: str = DEFAULT_TZ
) -> list[dict[str, Any]]:
    """Every key's public facts (never a hash or secret); times in ``tz``, the service's."""
    out = []
    for row in access_queries.list_keys(conn, include_revoked=include_revoked):
        key = row._asdict()
        for column in ("created_at", "revoked_at", "last_used_at"):
            key[column] = iso(key[column], tz)
        out.append(key)
    return out


def _actor_of(conn: Connection, row: access_queries.KeyRow, *, via_session: bool = False) -> Actor:
    name = f" {row.name}" if row.name else ""
    if row.community_id is not None:
        scope: frozenset[int] | None = frozenset({int(row.community_id)})
    elif row.subdistrict_code is not None or row.district_code is not None:
        scope = frozenset(
            queries.community_ids_in(
                conn, subdistrict_code=row.subdistrict_code, district_code=row.district_code
            )
        )
    else:
        scope = None
    return Actor(
        role=Role(row.role),
        label=f"key {row.prefix}{name} ({row.role})",
        key_id=int(row.id),
        community_id=row.community_id,
        member_id=row.member_id,
        department_id=row.department_id,
        personal_data=bool(row.personal_data),
        via_session=via_session,
        subdistrict_code=row.subdistrict_code,
        district_code=row.district_code,
        community_ids=scope,
        # A member's pages greet the member (masked, as officials see members), not the key:
        # a key made for a sign-in link is named "sign-in link".
        name=mask_name(row.member_name) if row.member_name else (row.name or None),
    )


def authenticate(conn: Connection, key: str, *, field: str = "api_key") -> Actor:
    """The actor of a key; :class:`NotAuthenticated` for a wrong or revoked one. Records the
    key's use (at most once a minute)."""
    actor, due = check_key(conn, key, field=field)
    if due and actor.key_id is not None:
        record_key_use(conn, key_id=actor.key_id)
    return actor


def check_key(conn: Connection, key: str, *, field: str = "api_key") -> tuple[Actor, bool]:
    """As :func:`authenticate`, reading only: the actor, and whether its use is due to be
    recorded (:func:`record_key_use`). A server checks keys this way so that a key check
    never waits for the embedded database's write lock."""
    prefix = _prefix_of(key.strip())
    row = None
    if prefix is not None:
        row = access_queries.key_by_prefix(conn, prefix=prefix)
    # compare_digest even for an unknown prefix: the answer takes the same time.
    expected = row.key_hash if row is not None else _hash("")
    if not hmac.compare_digest(expected, _hash(key.strip())) or row is None:
        raise NotAuthenticated("the API key is not valid", field=field)
    if row.revoked_at is not None:
        raise NotAuthenticated("the API key has been revoked", field=field)
    # last_used_at to the minute: one write a minute per key at most, not one per request.
    due = row.last_used_at is None or models.utcnow() - row.last_used_at > dt.timedelta(minutes=1)
    return _actor_of(conn, row), due


def record_key_use(conn: Connection, *, key_id: int) -> None:
    access_queries.set_key_used(conn, key_id=key_id, at=models.utcnow())


# --- sessions --------------------------------------------------------------------------------


def open_session(conn: Connection, *, key: str, hours: int = SESSION_HOURS) -> tuple[str, Actor]:
    """Sign in with a key: return a new session token (for the cookie) and the actor."""
    actor = authenticate(conn, key)
    if actor.role not in SESSION_ROLES:
        names = ", ".join(sorted(r.value for r in SESSION_ROLES))
        raise Forbidden(f"browser sign-in is for {names} keys; this key is {actor.role.value}")
    token = secrets.token_urlsafe(32)
    now = models.utcnow()
    access_queries.insert_session(
        conn,
        token_hash=_hash(token),
        key_id=actor.key_id,
        created_at=now,
        expires_at=now + dt.timedelta(hours=hours),
    )
    return token, actor


def session_actor(conn: Connection, token: str) -> Actor:
    """The actor of a session token; :class:`NotAuthenticated` when unknown or expired."""
    session = access_queries.session_by_token_hash(conn, token_hash=_hash(token))
    if session is None or session.revoked_at is not None or session.key.revoked_at is not None:
        raise NotAuthenticated("the session is not valid: sign in again", field="session")
    if session.expires_at <= models.utcnow():
        raise NotAuthenticated("the session has expired: sign in again", field="session")
    return _actor_of(conn, session.key, via_session=True)


def close_session(conn: Connection, token: str) -> None:
    access_queries.revoke_session(conn, token_hash=_hash(token), at=models.utcnow())


#: How long a member's one-time sign-in link is valid (issue 15).
SIGN_IN_LINK_HOURS: Final = 24


def sign_in_link_member(
    conn: Connection, *, member_id: int, actor: Actor
) -> access_queries.MemberCard:
    """The member a sign-in link would be for, as the officials' page shows it (name to be
    masked): only to officials and admins of the member's community."""
    actor.require(Role.OFFICIAL, Role.ADMIN, what="a member's sign-in link")
    member = access_queries.member_card(conn, member_id=member_id)
    if member is None:
        raise NotFound(f"no member with id {member_id}", field="member")
    actor.require_community(member.community_id, what="a sign-in link for this member")
    return member


def create_sign_in_link(
    conn: Connection,
    *,
    member_id: int,
    actor: Actor,
    hours: int = SIGN_IN_LINK_HOURS,
    now: dt.datetime | None = None,
) -> tuple[str, dt.datetime]:
    """A one-time sign-in link for a grid member, printed by an official (or admin) of the
    member's community: return its token (shown once, only its SHA-256 is stored) and when it
    expires. It signs in as the member's active member key — the newest — or as one made for
    the purpose when the member has none (its secret is never shown). Recorded in the audit
    log as ``actor``'s."""
    member = sign_in_link_member(conn, member_id=member_id, actor=actor)
    if not member.active:
        raise InvalidInput(f"member {member_id} is not active", field="member")
    if not 1 <= hours <= 24 * 7:
        raise InvalidInput("a sign-in link lasts 1 to 168 hours", field="hours")
    key_id = access_queries.member_key_id(conn, member_id=member_id)
    made_key = key_id is None
    if key_id is None:
        key_id = create_key(
            conn, role=Role.MEMBER.value, member_id=member_id, name="sign-in link", actor=actor
        ).id
    token = secrets.token_urlsafe(32)
    now = now or models.utcnow()
    expires_at = now + dt.timedelta(hours=hours)
    link_id = access_queries.insert_sign_in_link(
        conn,
        token_hash=_hash(token),
        member_id=member_id,
        key_id=key_id,
        created_by=actor.label,
        created_at=now,
        expires_at=expires_at,
    )
    audit.record(
        conn,
        actor=actor,
        action="create",
        subject="sign_in_link",
        subject_id=link_id,
        details={"member_id": member_id, "key_id": key_id, "new_key": made_key, "hours": hours},
    )
    return token, expires_at


def _link_refusal(conn: Connection, token_hash: str) -> NotAuthenticated:
    """Why a link does not sign in: unknown, spent or expired."""
    state = access_queries.sign_in_link_state(conn, token_hash=token_hash)
    if state is None:
        return NotAuthenticated(
            N_("this sign-in link is not valid: ask your community for a new one"), field="token"
        )
    if state.used_at is not None:
        return NotAuthenticated(
            N_(
                "this sign-in link has been used already: each link signs in once; ask your "
                "community for a new one"
            ),
            field="token",
        )
    return NotAuthenticated(
        N_("this sign-in link has expired (links last 24 hours): ask your community for a new one"),
        field="token",
    )


def check_sign_in_link(conn: Connection, *, token: str, now: dt.datetime | None = None) -> None:
    """Read only: :class:`NotAuthenticated` (saying why) when the link would not sign in now;
    the link is not spent."""
    now = now or models.utcnow()
    token_hash = _hash(token.strip())
    state = access_queries.sign_in_link_state(conn, token_hash=token_hash)
    if state is None or state.used_at is not None or state.expires_at <= now:
        raise _link_refusal(conn, token_hash)


def redeem_sign_in_link(
    conn: Connection,
    *,
    token: str,
    session_hours: int = SESSION_HOURS,
    now: dt.datetime | None = None,
) -> tuple[str, Actor]:
    """Sign in with a one-time link: return a new session token and the member's actor.

    The link is spent by one conditional UPDATE (``used_at IS NULL AND expires_at > now``), so
    of two redemptions at once exactly one succeeds: on PostgreSQL the second waits for the
    first's row lock and then finds ``used_at`` set (READ COMMITTED re-checks the condition;
    docs: "Transaction Isolation"); SQLite's write transactions are serialised. An unknown,
    spent or expired link is :class:`NotAuthenticated`, saying which."""
    now = now or models.utcnow()
    token_hash = _hash(token.strip())
    spent = access_queries.spend_sign_in_link(conn, token_hash=token_hash, now=now)
    if spent is None:
        raise _link_refusal(conn, token_hash)
    key = access_queries.key_by_id(conn, key_id=spent.key_id)
    if key is None or key.revoked_at is not None or key.member_id != spent.member_id:
        raise NotAuthenticated(
            N_("the key of this sign-in link has been revoked: ask your community for a new link"),
            field="token",
        )
    session_token = secrets.token_urlsafe(32)
    access_queries.insert_session(
        conn,
        token_hash=_hash(session_token),
        key_id=key.id,
        created_at=now,
        expires_at=now + dt.timedelta(hours=session_hours),
    )
    actor = _actor_of(conn, key, via_session=True)
    audit.record(
        conn,
        actor=actor,
        action="redeem",
        subject="sign_in_link",
        subject_id=spent.id,
        details={"member_id": spent.member_id, "key_id": key.id},
    )
    return session_token, actor


# --- the sign-in throttle ----------------------------------------------------------------------

#: The throttle's window: at most ``limit`` wrong keys per client address in it.
LOGIN_WINDOW = dt.timedelta(minutes=1)


def begin_login_attempt(conn: Connection, *, client: str, now: dt.datetime, limit: int) -> int:
    """Count a sign-in attempt from ``client`` before its key is checked: the attempt is
    recorded as a failure at once (:func:`login_succeeded` takes it back), so that concurrent
    attempts cannot all pass the count together; :class:`TooManyAttempts` when ``client`` has
    ``limit`` failures in the last minute, with the seconds until the oldest leaves the
    window. The counts are in the database, so they hold across the service's workers."""
    client = client[:64]
    access_queries.lock_login_client(conn, client=client)
    access_queries.delete_login_failures(conn, before=now - LOGIN_WINDOW)
    count, first = access_queries.login_failures_since(
        conn, client=client, since=now - LOGIN_WINDOW
    )
    if count >= limit:
        wait = (first + LOGIN_WINDOW - now).total_seconds() if first is not None else 60.0
        raise TooManyAttempts(
            f"too many failed sign-ins from this address: try again in {math.ceil(wait)} s",
            retry_after=max(1, math.ceil(wait)),
            field="api_key",
        )
    return access_queries.insert_login_failure(conn, client=client, at=now)


def login_succeeded(conn: Connection, *, attempt: int) -> None:
    """The attempt of :func:`begin_login_attempt` had the right key: it is not a failure."""
    access_queries.delete_login_failure(conn, failure_id=attempt)


# --- personal data ---------------------------------------------------------------------------


def log_personal_read(
    conn: Connection,
    *,
    actor: Actor,
    subject: str,
    subject_ids: Iterable[int],
    fields: Iterable[str],
    via: str,
) -> int:
    """Record who read which person's unmasked data (never the data itself): one ``read``
    entry of the audit log per subject."""
    return audit.record_reads(
        conn, actor=actor, subject=subject, subject_ids=subject_ids, fields=fields, via=via
    )


def personal_reads(
    conn: Connection, *, limit: int = 100, subject: str | None = None, tz: str = DEFAULT_TZ
) -> list[dict[str, Any]]:
    """The latest reads of personal data (times in ``tz``), as the personal-data log showed
    them before the audit log took it over (``GET /v1/admin/personal-data-reads``): the
    audit log's ``read`` entries, ``id`` being the entry's."""
    rows = audit.entries(
        conn, where=audit.AuditFilter(action="read", subject=subject), limit=limit, tz=tz
    )
    return [
        {
            "id": r["id"],
            "at": r["at"],
            "api_key_id": r["api_key_id"],
            "actor": r["actor"],
            "subject": r["subject"],
            "subject_id": int(r["subject_id"]),
            "fields": r["fields"],
            "via": r["via"],
        }
        for r in rows
        if r["subject_id"] is not None and r["subject_id"].isdigit()
    ]

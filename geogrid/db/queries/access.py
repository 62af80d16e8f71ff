"""Queries of access: API keys and browser sessions (reads of personal data are in the audit
log: ``geogrid.db.queries.audit``).

The rules (who may hold which key, what a session authorizes, when a key counts as used)
are in ``geogrid.access``; here only the statements.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from sqlalchemy import Connection, delete, func, insert, select, text, update

from geogrid.db import models


class KeyRow(NamedTuple):
    """An API key's row as authentication reads it (with its hash, never shown)."""

    id: int
    prefix: str
    key_hash: str
    name: str | None
    role: str
    community_id: int | None
    member_id: int | None
    department_id: int | None
    personal_data: bool
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None
    subdistrict_code: str | None
    district_code: str | None
    #: The name of the member a member key belongs to (personal data: mask before showing).
    member_name: str | None


class SessionRow(NamedTuple):
    """A browser session with the key it was opened with."""

    key: KeyRow
    expires_at: dt.datetime
    revoked_at: dt.datetime | None


class KeyListing(NamedTuple):
    """A key's public facts: community and department by code, no hash."""

    id: int
    prefix: str
    name: str | None
    role: str
    community: str | None
    subdistrict: str | None
    district: str | None
    member_id: int | None
    department: str | None
    personal_data: bool
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


_KEY_COLUMNS = (
    models.ApiKey.id,
    models.ApiKey.prefix,
    models.ApiKey.key_hash,
    models.ApiKey.name,
    models.ApiKey.role,
    models.ApiKey.community_id,
    models.ApiKey.member_id,
    models.ApiKey.department_id,
    models.ApiKey.personal_data,
    models.ApiKey.revoked_at,
    models.ApiKey.last_used_at,
    models.ApiKey.subdistrict_code,
    models.ApiKey.district_code,
    # One scalar subquery (primary-key probe) rather than a join: the key queries stay one
    # table wide, and only member keys find a name.
    select(models.Member.name)
    .where(models.Member.id == models.ApiKey.member_id)
    .scalar_subquery()
    .label("member_name"),
)


# --- keys ------------------------------------------------------------------------------------


def key_by_prefix(conn: Connection, *, prefix: str) -> KeyRow | None:
    """The key with ``prefix``, or None."""
    row = conn.execute(select(*_KEY_COLUMNS).where(models.ApiKey.prefix == prefix)).one_or_none()
    return None if row is None else KeyRow._make(row)


def prefix_taken(conn: Connection, *, prefix: str) -> bool:
    """Whether a key (revoked or not) already has ``prefix``."""
    return (
        conn.execute(select(models.ApiKey.id).where(models.ApiKey.prefix == prefix)).first()
        is not None
    )


def insert_key(
    conn: Connection,
    *,
    prefix: str,
    key_hash: str,
    name: str | None,
    role: str,
    community_id: int | None,
    member_id: int | None,
    department_id: int | None,
    personal_data: bool,
    subdistrict_code: str | None = None,
    district_code: str | None = None,
) -> int:
    """Store a new key (its hash only); return its id."""
    key_id = conn.execute(
        insert(models.ApiKey)
        .values(
            prefix=prefix,
            key_hash=key_hash,
            name=name,
            role=role,
            community_id=community_id,
            member_id=member_id,
            department_id=department_id,
            personal_data=personal_data,
            subdistrict_code=subdistrict_code,
            district_code=district_code,
            created_at=models.utcnow(),
        )
        .returning(models.ApiKey.id)
    ).scalar_one()
    return int(key_id)


def set_key_revoked(conn: Connection, *, key_id: int, at: dt.datetime) -> None:
    """Mark a key revoked at ``at``."""
    conn.execute(update(models.ApiKey).where(models.ApiKey.id == key_id).values(revoked_at=at))


def set_key_used(conn: Connection, *, key_id: int, at: dt.datetime) -> None:
    """Record that a key was used at ``at``."""
    conn.execute(update(models.ApiKey).where(models.ApiKey.id == key_id).values(last_used_at=at))


def list_keys(conn: Connection, *, include_revoked: bool) -> list[KeyListing]:
    """Every key's public facts, by id; revoked ones only with ``include_revoked``."""
    key = models.ApiKey
    stmt = (
        select(
            key.id,
            key.prefix,
            key.name,
            key.role,
            models.Community.code.label("community"),
            key.subdistrict_code.label("subdistrict"),
            key.district_code.label("district"),
            key.member_id,
            models.Department.code.label("department"),
            key.personal_data,
            key.created_at,
            key.revoked_at,
            key.last_used_at,
        )
        .outerjoin(models.Community, models.Community.id == key.community_id)
        .outerjoin(models.Department, models.Department.id == key.department_id)
        .order_by(key.id)
    )
    if not include_revoked:
        stmt = stmt.where(key.revoked_at.is_(None))
    return [KeyListing._make(row) for row in conn.execute(stmt)]


# --- sessions --------------------------------------------------------------------------------


def insert_session(
    conn: Connection,
    *,
    token_hash: str,
    key_id: int | None,
    created_at: dt.datetime,
    expires_at: dt.datetime,
) -> None:
    """Store a new browser session (the hash of its token only)."""
    conn.execute(
        insert(models.ApiSession).values(
            token_hash=token_hash,
            api_key_id=key_id,
            created_at=created_at,
            expires_at=expires_at,
        )
    )


def session_by_token_hash(conn: Connection, *, token_hash: str) -> SessionRow | None:
    """The session whose token has ``token_hash``, with its key; None when unknown."""
    session = models.ApiSession
    row = conn.execute(
        select(*_KEY_COLUMNS, session.expires_at, session.revoked_at)
        .join(models.ApiKey, models.ApiKey.id == session.api_key_id)
        .where(session.token_hash == token_hash)
    ).one_or_none()
    if row is None:
        return None
    *key, expires_at, revoked_at = row
    return SessionRow(key=KeyRow._make(key), expires_at=expires_at, revoked_at=revoked_at)


def login_failures_since(
    conn: Connection, *, client: str, since: dt.datetime
) -> tuple[int, dt.datetime | None]:
    """How many sign-ins from ``client`` failed since ``since``, and the earliest of them."""
    f = models.LoginFailure
    count, first = conn.execute(
        select(func.count(), func.min(f.at)).where(f.client == client, f.at > since)
    ).one()
    return int(count), first


def insert_login_failure(conn: Connection, *, client: str, at: dt.datetime) -> int:
    """A failure (or an attempt not yet decided) from ``client``; its id."""
    return int(
        conn.execute(
            insert(models.LoginFailure)
            .values(client=client, at=at)
            .returning(models.LoginFailure.id)
        ).scalar_one()
    )


def delete_login_failure(conn: Connection, *, failure_id: int) -> None:
    conn.execute(delete(models.LoginFailure).where(models.LoginFailure.id == failure_id))


def lock_login_client(conn: Connection, *, client: str) -> None:
    """Serialise sign-in attempts from ``client`` until the transaction ends, so that counting
    and recording an attempt are one step. PostgreSQL: a transaction-level advisory lock on
    the address's hash (docs: "Advisory Locks"); SQLite's transactions start ``BEGIN
    IMMEDIATE`` and are serialised already."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:c, 14))"), {"c": client})


def delete_login_failures(conn: Connection, *, before: dt.datetime) -> None:
    """Forget failures older than ``before``: the throttle only looks back one window."""
    conn.execute(delete(models.LoginFailure).where(models.LoginFailure.at <= before))


def revoke_session(conn: Connection, *, token_hash: str, at: dt.datetime) -> None:
    """Revoke the session whose token has ``token_hash`` (unless it is revoked already)."""
    session = models.ApiSession
    conn.execute(
        update(session)
        .where(session.token_hash == token_hash, session.revoked_at.is_(None))
        .values(revoked_at=at)
    )


def revoke_key_sessions(conn: Connection, *, key_id: int, at: dt.datetime) -> None:
    """Revoke every session still open with key ``key_id``."""
    session = models.ApiSession
    conn.execute(
        update(session)
        .where(session.api_key_id == key_id, session.revoked_at.is_(None))
        .values(revoked_at=at)
    )


# --- members' one-time sign-in links -----------------------------------------------------------


class MemberCard(NamedTuple):
    """A member as a sign-in link's page shows it: the name (masked by the caller), the
    community and its zone."""

    id: int
    name: str
    active: bool
    community_id: int
    community_code: str
    community_name: str
    timezone: str


def member_card(conn: Connection, *, member_id: int) -> MemberCard | None:
    """Member ``member_id`` with its community, or None."""
    member, community = models.Member, models.Community
    row = conn.execute(
        select(
            member.id,
            member.name,
            member.active,
            member.community_id,
            community.code,
            community.name,
            community.timezone,
        )
        .join(community, community.id == member.community_id)
        .where(member.id == member_id)
    ).one_or_none()
    return None if row is None else MemberCard._make(row)


def member_key_id(conn: Connection, *, member_id: int) -> int | None:
    """The member's newest active (not revoked) member key, or None."""
    key = models.ApiKey
    found = conn.execute(
        select(key.id)
        .where(
            key.member_id == member_id,
            key.role == models.Role.MEMBER.value,
            key.revoked_at.is_(None),
        )
        .order_by(key.id.desc())
        .limit(1)
    ).scalar()
    return None if found is None else int(found)


def key_by_id(conn: Connection, *, key_id: int) -> KeyRow | None:
    """The key with id ``key_id``, or None."""
    row = conn.execute(select(*_KEY_COLUMNS).where(models.ApiKey.id == key_id)).one_or_none()
    return None if row is None else KeyRow._make(row)


def insert_sign_in_link(
    conn: Connection,
    *,
    token_hash: str,
    member_id: int,
    key_id: int,
    created_by: str,
    created_at: dt.datetime,
    expires_at: dt.datetime,
) -> int:
    """Store a new sign-in link (the hash of its token only); its id."""
    return int(
        conn.execute(
            insert(models.SignInLink)
            .values(
                token_hash=token_hash,
                member_id=member_id,
                api_key_id=key_id,
                created_by=created_by[:200],
                created_at=created_at,
                expires_at=expires_at,
            )
            .returning(models.SignInLink.id)
        ).scalar_one()
    )


class SpentLink(NamedTuple):
    id: int
    member_id: int
    key_id: int


def spend_sign_in_link(conn: Connection, *, token_hash: str, now: dt.datetime) -> SpentLink | None:
    """Mark the link used, if it is unused and unexpired, in one statement: the link spent
    (None when there was none to spend). Two concurrent calls cannot both get it: the UPDATE's
    condition is checked again on the locked row (PostgreSQL) or the writes are serialised
    (SQLite)."""
    link = models.SignInLink
    row = conn.execute(
        update(link)
        .where(link.token_hash == token_hash, link.used_at.is_(None), link.expires_at > now)
        .values(used_at=now)
        .returning(link.id, link.member_id, link.api_key_id)
    ).one_or_none()
    return None if row is None else SpentLink._make(row)


class LinkState(NamedTuple):
    used_at: dt.datetime | None
    expires_at: dt.datetime


def sign_in_link_state(conn: Connection, *, token_hash: str) -> LinkState | None:
    """When the link was used and when it expires (None: no such link)."""
    link = models.SignInLink
    row = conn.execute(
        select(link.used_at, link.expires_at).where(link.token_hash == token_hash)
    ).one_or_none()
    return None if row is None else LinkState._make(row)

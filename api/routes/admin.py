"""``/v1/admin``: API keys, webhooks and their delivery log, the audit log.

Admin keys only. A created key is returned once and never again (only its hash is stored).
``/v1/admin/personal-data-reads`` is kept for existing clients: the audit log's ``read``
entries in its former shape.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from api.auth import ActorDep
from api.deps import ConnDep, EngineDep, SettingsDep
from api.params import Day, Id
from api.schemas.admin import (
    AuditPage,
    DeliveryOut,
    KeyCreate,
    KeyCreated,
    KeyOut,
    KeyRevoked,
    PersonalReadOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookState,
    WebhookUpdate,
)
from api.schemas.common import ErrorEnvelope
from geogrid import access, audit
from geogrid.db.models import Role
from geogrid.periods import period
from geogrid.requests import webhooks

router = APIRouter(prefix="/v1/admin", tags=["admin"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorEnvelope} for s in (401, 403, 404, 422)
}


@router.post(
    "/keys",
    status_code=201,
    response_model=KeyCreated,
    summary="Create an API key (shown once)",
    responses=_ERRORS,
)
def create_key(
    engine: EngineDep,
    actor: ActorDep,
    body: Annotated[
        KeyCreate,
        Body(examples=[{"role": "official", "community": "441302011005", "name": "社区书记"}]),
    ],
) -> dict[str, Any]:
    actor.require(Role.ADMIN, what="creating keys")
    actor.require_unscoped(what="creating keys")
    with engine.begin() as conn:
        new = access.create_key(
            conn,
            role=body.role.value,
            name=body.name,
            community_code=body.community,
            member_id=body.member_id,
            department_code=body.department,
            personal_data=body.personal_data,
            subdistrict_code=body.subdistrict,
            district_code=body.district,
            actor=actor,
        )
    return {"id": new.id, "key": new.key, "prefix": new.prefix, "role": new.role}


@router.get(
    "/keys",
    response_model=list[KeyOut],
    summary="API keys (never their secrets)",
    responses=_ERRORS,
)
def list_keys(
    conn: ConnDep, actor: ActorDep, settings: SettingsDep, include_revoked: bool = False
) -> Any:
    actor.require(Role.ADMIN, what="listing keys")
    actor.require_unscoped(what="listing keys")
    return access.list_keys(conn, include_revoked=include_revoked, tz=settings.service.timezone)


@router.delete(
    "/keys/{prefix}",
    response_model=KeyRevoked,
    summary="Revoke a key (and its sessions)",
    responses=_ERRORS,
)
def revoke_key(prefix: str, engine: EngineDep, actor: ActorDep) -> dict[str, Any]:
    actor.require(Role.ADMIN, what="revoking keys")
    actor.require_unscoped(what="revoking keys")
    with engine.begin() as conn:
        return {"revoked": access.revoke_key(conn, key_or_prefix=prefix, actor=actor)}


@router.post(
    "/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    summary="Register a webhook",
    responses=_ERRORS,
)
def create_webhook(
    engine: EngineDep,
    actor: ActorDep,
    settings: SettingsDep,
    body: Annotated[
        WebhookCreate,
        Body(
            examples=[
                {
                    "url": "https://sms.example.org/geogrid",
                    "events": ["request.dispatched", "request.overdue"],
                }
            ]
        ),
    ],
) -> dict[str, Any]:
    actor.require(Role.ADMIN, what="registering webhooks")
    actor.require_unscoped(what="registering webhooks")
    with engine.begin() as conn:
        wid, secret = webhooks.create_webhook(
            conn,
            url=body.url,
            events=body.events or webhooks.EVENTS,
            secret=body.secret,
            community_code=body.community,
            description=body.description,
            settings=settings.requests,
            actor=actor,
        )
    return {"id": wid, "secret": secret}


@router.get(
    "/webhooks",
    response_model=list[WebhookOut],
    summary="Webhooks (without secrets)",
    responses=_ERRORS,
)
def list_webhooks(conn: ConnDep, actor: ActorDep, settings: SettingsDep) -> Any:
    actor.require(Role.ADMIN, what="listing webhooks")
    actor.require_unscoped(what="listing webhooks")
    return webhooks.list_webhooks(conn, tz=settings.service.timezone)


@router.patch(
    "/webhooks/{webhook_id}",
    response_model=WebhookState,
    summary="Switch a webhook on or off",
    responses=_ERRORS,
)
def update_webhook(
    webhook_id: Id,
    engine: EngineDep,
    actor: ActorDep,
    settings: SettingsDep,
    body: Annotated[WebhookUpdate, Body(examples=[{"active": False}])],
) -> dict[str, Any]:
    actor.require(Role.ADMIN, what="changing webhooks")
    actor.require_unscoped(what="changing webhooks")
    with engine.begin() as conn:
        webhooks.set_webhook_active(
            conn,
            webhook_id=webhook_id,
            active=body.active,
            settings=settings.requests,
            actor=actor,
        )
    return {"id": webhook_id, "active": body.active}


@router.get(
    "/webhooks/deliveries",
    response_model=list[DeliveryOut],
    summary="The delivery log with every attempt",
    responses=_ERRORS,
)
def list_deliveries(
    conn: ConnDep,
    settings: SettingsDep,
    actor: ActorDep,
    webhook_id: Id | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    actor.require(Role.ADMIN, what="reading the delivery log")
    actor.require_unscoped(what="reading the delivery log")
    return webhooks.deliveries(
        conn, webhook_id=webhook_id, limit=limit, tz=settings.service.timezone
    )


@router.get(
    "/personal-data-reads",
    response_model=list[PersonalReadOut],
    summary="Who read whose personal data, and when",
    responses=_ERRORS,
)
def personal_data_reads(
    conn: ConnDep,
    settings: SettingsDep,
    actor: ActorDep,
    subject: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    actor.require(Role.ADMIN, what="reading the personal-data log")
    actor.require_unscoped(what="reading the personal-data log")
    return access.personal_reads(conn, limit=limit, subject=subject, tz=settings.service.timezone)


@router.get(
    "/audit",
    response_model=AuditPage,
    summary="The audit log: reads of personal data and every write",
    responses=_ERRORS,
)
def audit_log(
    conn: ConnDep,
    settings: SettingsDep,
    actor: ActorDep,
    from_: Annotated[Day | None, Query(alias="from", description="First day (local)")] = None,
    to: Annotated[Day | None, Query(description="Last day (local), inclusive")] = None,
    who: Annotated[
        str | None,
        Query(alias="actor", max_length=200, description="Text of the actor's label, or key id"),
    ] = None,
    subject: Annotated[str | None, Query(max_length=32, examples=["member"])] = None,
    subject_id: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=32, examples=["read"])] = None,
    before_id: Annotated[Id | None, Query(description="Entries older than this one")] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_LIMIT)] = 100,
) -> dict[str, Any]:
    """Newest first; dates are the service's (``GEOGRID_TIMEZONE``). Entries name fields,
    never their values."""
    actor.require(Role.ADMIN, what="reading the audit log")
    actor.require_unscoped(what="reading the audit log")
    tz = settings.service.timezone
    days = period(from_, to, tz=tz) if (from_ or to) else None
    where = audit.AuditFilter(
        since=days.lower if from_ is not None and days is not None else None,
        until=days.upper if to is not None and days is not None else None,
        actor=who,
        subject=subject,
        subject_id=subject_id,
        action=action,
        before_id=before_id,
    )
    items = audit.entries(conn, where=where, limit=limit, tz=tz)
    more = len(items) == limit
    return {"limit": limit, "next_before_id": items[-1]["id"] if more else None, "items": items}

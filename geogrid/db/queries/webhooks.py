"""Queries of outbound webhooks: registrations, the delivery outbox and the attempt log.

``geogrid.requests.webhooks`` signs, sends and retries; these read and write its tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, insert, select, update

from geogrid.db import models

PENDING = models.DeliveryStatus.PENDING.value


# --- registration ----------------------------------------------------------------------------


def insert_webhook(
    conn: Connection,
    *,
    url: str,
    secret: str,
    events: Sequence[str],
    community_id: int | None,
    description: str | None,
    created_at: dt.datetime,
) -> int:
    """Register an active webhook; its id."""
    return int(
        conn.execute(
            insert(models.Webhook)
            .values(
                url=url,
                secret=secret,
                events=list(events),
                community_id=community_id,
                active=True,
                description=description,
                created_at=created_at,
            )
            .returning(models.Webhook.id)
        ).scalar_one()
    )


def webhook_url(conn: Connection, *, webhook_id: int) -> str | None:
    """A webhook's URL; None when there is no such webhook."""
    url = conn.execute(
        select(models.Webhook.url).where(models.Webhook.id == webhook_id)
    ).scalar_one_or_none()
    return None if url is None else str(url)


def set_active(conn: Connection, *, webhook_id: int, active: bool) -> bool:
    """Switch a webhook on or off; False when there is no such webhook."""
    done = conn.execute(
        update(models.Webhook).where(models.Webhook.id == webhook_id).values(active=active)
    ).rowcount
    return bool(done)


class WebhookRow(NamedTuple):
    """A webhook without its secret; ``community`` is its community's code."""

    id: int
    url: str
    events: list[str]
    community: str | None
    active: bool
    description: str | None
    created_at: dt.datetime


def webhooks(conn: Connection) -> list[WebhookRow]:
    """Every webhook (without secrets), by id."""
    hook = models.Webhook
    rows = conn.execute(
        select(
            hook.id,
            hook.url,
            hook.events,
            models.Community.code.label("community"),
            hook.active,
            hook.description,
            hook.created_at,
        )
        .outerjoin(models.Community, models.Community.id == hook.community_id)
        .order_by(hook.id)
    ).all()
    return [WebhookRow(**r._asdict()) for r in rows]


class WebhookTarget(NamedTuple):
    """An active webhook: the events it wants, its community (None: every one)."""

    id: int
    events: list[str] | None
    community_id: int | None


def active_webhooks(conn: Connection) -> list[WebhookTarget]:
    """The active webhooks."""
    hook = models.Webhook
    rows = conn.execute(
        select(hook.id, hook.events, hook.community_id).where(hook.active.is_(True))
    ).all()
    return [WebhookTarget(**r._asdict()) for r in rows]


# --- the outbox ------------------------------------------------------------------------------


def insert_delivery(
    conn: Connection,
    *,
    webhook_id: int,
    event: str,
    request_id: int,
    payload: str,
    now: dt.datetime,
) -> int:
    """Queue one notification to one webhook (pending, due ``now``); its id."""
    return int(
        conn.execute(
            insert(models.WebhookDelivery)
            .values(
                webhook_id=webhook_id,
                event=event,
                request_id=request_id,
                payload=payload,
                status=PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            .returning(models.WebhookDelivery.id)
        ).scalar_one()
    )


def overdue_request_ids(conn: Connection, *, now: dt.datetime) -> list[int]:
    """Open requests past their SLA deadline whose ``request.overdue`` has not gone out."""
    request = models.Request
    return [
        int(i)
        for i in conn.execute(
            select(request.id).where(
                request.status.in_(models.OPEN_STATUSES),
                request.due_at.is_not(None),
                request.due_at < now,
                request.overdue_notified_at.is_(None),
            )
        ).scalars()
    ]


def mark_overdue_notified(
    conn: Connection, *, request_ids: Sequence[int], now: dt.datetime
) -> None:
    """Note that ``request.overdue`` went out for these requests."""
    request = models.Request
    conn.execute(
        update(request).where(request.id.in_(list(request_ids))).values(overdue_notified_at=now)
    )


# --- the delivery log ------------------------------------------------------------------------


class DeliveryRow(NamedTuple):
    """A delivery as the log shows it (without its payload)."""

    id: int
    webhook_id: int
    event: str
    request_id: int | None
    status: str
    attempts: int
    next_attempt_at: dt.datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None


def deliveries(conn: Connection, *, webhook_id: int | None, limit: int) -> list[DeliveryRow]:
    """The latest deliveries (of one webhook, or of all), newest first."""
    delivery = models.WebhookDelivery
    stmt = select(
        delivery.id,
        delivery.webhook_id,
        delivery.event,
        delivery.request_id,
        delivery.status,
        delivery.attempts,
        delivery.next_attempt_at,
        delivery.last_status_code,
        delivery.last_error,
        delivery.created_at,
        delivery.delivered_at,
    )
    if webhook_id is not None:
        stmt = stmt.where(delivery.webhook_id == webhook_id)
    rows = conn.execute(stmt.order_by(delivery.id.desc()).limit(limit)).all()
    return [DeliveryRow(**r._asdict()) for r in rows]


class AttemptRow(NamedTuple):
    delivery_id: int
    at: dt.datetime
    status_code: int | None
    error: str | None
    duration_ms: int | None


def attempts(conn: Connection, *, delivery_ids: Sequence[int]) -> list[AttemptRow]:
    """The attempts of these deliveries, oldest first."""
    attempt = models.WebhookAttempt
    rows = conn.execute(
        select(
            attempt.delivery_id, attempt.at, attempt.status_code, attempt.error, attempt.duration_ms
        )
        .where(attempt.delivery_id.in_(list(delivery_ids)))
        .order_by(attempt.id)
    ).all()
    return [AttemptRow(**r._asdict()) for r in rows]


# --- sending ---------------------------------------------------------------------------------


class DueDelivery(NamedTuple):
    """A pending delivery with what sending it needs."""

    id: int
    event: str
    payload: str
    attempts: int
    next_attempt_at: dt.datetime | None
    url: str
    secret: str


def due_deliveries(
    conn: Connection, *, ids: Sequence[int] | None, now: dt.datetime, limit: int
) -> list[DueDelivery]:
    """Pending deliveries of active webhooks: exactly ``ids``, else those due at ``now``;
    the earliest due first."""
    delivery, hook = models.WebhookDelivery, models.Webhook
    stmt = (
        select(
            delivery.id,
            delivery.event,
            delivery.payload,
            delivery.attempts,
            delivery.next_attempt_at,
            hook.url,
            hook.secret,
        )
        .join(hook, hook.id == delivery.webhook_id)
        .where(delivery.status == PENDING, hook.active.is_(True))
    )
    stmt = (
        stmt.where(delivery.id.in_(list(ids)))
        if ids is not None
        else stmt.where(delivery.next_attempt_at <= now)
    )
    rows = conn.execute(stmt.order_by(delivery.next_attempt_at, delivery.id).limit(limit)).all()
    return [DueDelivery(**r._asdict()) for r in rows]


def lease_delivery(
    conn: Connection,
    *,
    delivery_id: int,
    seen_next_attempt_at: dt.datetime | None,
    until: dt.datetime,
) -> bool:
    """Move a pending delivery's ``next_attempt_at`` to ``until`` if it is still the one seen:
    whether this worker won it (two workers never send the same delivery at once)."""
    delivery = models.WebhookDelivery
    got = conn.execute(
        update(delivery)
        .where(
            delivery.id == delivery_id,
            delivery.status == PENDING,
            delivery.next_attempt_at == seen_next_attempt_at,
        )
        .values(next_attempt_at=until)
    ).rowcount
    return bool(got)


def record_attempt(
    conn: Connection,
    *,
    delivery_id: int,
    at: dt.datetime,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    attempts: int,
    next_attempt_at: dt.datetime | None,
    status: str | None = None,
    delivered_at: dt.datetime | None = None,
) -> None:
    """Log an attempt and update its delivery (``status`` and ``delivered_at`` when given)."""
    conn.execute(
        insert(models.WebhookAttempt).values(
            delivery_id=delivery_id,
            at=at,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
        )
    )
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_status_code": status_code,
        "last_error": error,
        "next_attempt_at": next_attempt_at,
    }
    if status is not None:
        values["status"] = status
    if delivered_at is not None:
        values["delivered_at"] = delivered_at
    delivery = models.WebhookDelivery
    conn.execute(update(delivery).where(delivery.id == delivery_id).values(**values))

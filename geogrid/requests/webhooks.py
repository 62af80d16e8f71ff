"""Outbound webhooks: signed, retried with back-off, every attempt logged.

Events: ``request.dispatched`` (also when sent back or reopened: the member has it again),
``request.escalated``, ``request.overdue`` (once per SLA deadline, found by
:func:`sweep_overdue`) and ``request.resolved``.

Delivery is an outbox: the workflow writes one ``webhook_deliveries`` row per interested
webhook in the transaction of the change itself, so a notification exists if and only if the
change was committed. :func:`deliver_due` then sends what is due — the API right after the
commit and from its worker thread (:class:`WebhookWorker`), or ``geogrid webhooks deliver``
from cron — outside any database transaction (no lock is held while a receiver is slow).

Each delivery is a JSON ``POST`` with the headers ``X-Geogrid-Event``,
``X-Geogrid-Delivery`` (the delivery id: receivers de-duplicate on it, since a retry after a
lost answer sends it again), ``X-Geogrid-Timestamp`` (Unix seconds) and
``X-Geogrid-Signature: sha256=<hex>``, the HMAC-SHA256 of ``"<timestamp>.<body>"`` under the
webhook's secret (the scheme of Stripe's and GitHub's webhooks: the timestamp in the signed
text lets receivers refuse replays older than a few minutes). A 2xx answer is success;
anything else, or no answer within the timeout, is retried after 30 s, 1, 2, 4, 8 min …
(doubling, ``GEOGRID_WEBHOOK_BACKOFF_SECONDS``) until ``GEOGRID_WEBHOOK_MAX_ATTEMPTS``, then
the delivery is marked ``failed``. Every attempt is a row of ``webhook_attempts``.

Targets are ``https`` URLs of public addresses only, checked at registration and again at
each delivery, which connects to the address it checked and follows no redirect (a 3xx is a
failed attempt): :mod:`geogrid.requests.targets`. A target that now resolves to a private
address is a failed attempt that never connects. ``GEOGRID_WEBHOOK_ALLOW_PRIVATE`` allows
``http`` and private addresses (tests, closed networks). Deliveries go straight to the
receiver, never through a proxy named in the environment (a proxy would resolve the name
again, after the check).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
from sqlalchemy import Connection, Engine

from geogrid import audit
from geogrid.access import Actor, as_actor
from geogrid.background import Poller
from geogrid.db import models, queries
from geogrid.db.queries import requests as request_queries
from geogrid.db.queries import webhooks as webhook_queries
from geogrid.errors import InvalidInput, NotFound
from geogrid.periods import DEFAULT_TZ, iso
from geogrid.privacy import mask_name
from geogrid.requests.targets import Resolver, check_target
from geogrid.requests.views import public_address
from geogrid.settings import RequestsSettings

log = logging.getLogger("geogrid.webhooks")

EVENT_DISPATCHED: Final = "request.dispatched"
EVENT_ESCALATED: Final = "request.escalated"
EVENT_OVERDUE: Final = "request.overdue"
EVENT_RESOLVED: Final = "request.resolved"
EVENTS: Final = (EVENT_DISPATCHED, EVENT_ESCALATED, EVENT_OVERDUE, EVENT_RESOLVED)
SIGNATURE_HEADER: Final = "X-Geogrid-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: int, body: bytes, signature: str) -> bool:
    """What a receiver does (shown here for its tests and docs)."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


# --- registration ----------------------------------------------------------------------------


def create_webhook(
    conn: Connection,
    *,
    url: str,
    events: Sequence[str] = EVENTS,
    secret: str | None = None,
    community_code: str | None = None,
    description: str | None = None,
    settings: RequestsSettings | None = None,
    resolve: Resolver | None = None,
    actor: Actor | None = None,
) -> tuple[int, str]:
    """Register a webhook; return its id and secret (generated when not given). Recorded
    in the audit log as ``actor``'s (default: the local operator).

    The URL must be ``https`` and resolve (through ``resolve``, default the system's
    resolver) to public addresses only, unless ``settings.webhook_allow_private``
    (:func:`geogrid.requests.targets.check_target`); it is checked last, after the cheap
    checks of the other fields.
    """
    settings = settings or RequestsSettings.defaults()
    bad = [e for e in events if e not in EVENTS]
    if bad or not events:
        raise InvalidInput(
            f"events must be among {', '.join(EVENTS)}, got {', '.join(bad) or 'none'}",
            field="events",
        )
    if secret is not None and len(secret) < 16:
        raise InvalidInput("a webhook secret needs at least 16 characters", field="secret")
    check_target(url, allow_private=settings.webhook_allow_private, resolve=resolve, pin=False)
    community_id = None
    if community_code is not None:
        community_id = int(queries.community_row(conn, code=community_code).id)
    secret = secret or secrets.token_urlsafe(32)
    webhook_id = webhook_queries.insert_webhook(
        conn,
        url=url,
        secret=secret,
        events=sorted(set(events)),
        community_id=community_id,
        description=description,
        created_at=models.utcnow(),
    )
    audit.record(
        conn,
        actor=as_actor(actor),
        action="create",
        subject="webhook",
        subject_id=webhook_id,
        details={"events": sorted(set(events)), "community_id": community_id},
    )
    return webhook_id, secret


def set_webhook_active(
    conn: Connection,
    *,
    webhook_id: int,
    active: bool,
    settings: RequestsSettings | None = None,
    resolve: Resolver | None = None,
    actor: Actor | None = None,
) -> None:
    """Switch a webhook on or off. Switching it on checks its URL again, as at registration
    (it may have been registered under other rules, or its name may resolve elsewhere now)."""
    settings = settings or RequestsSettings.defaults()
    url = webhook_queries.webhook_url(conn, webhook_id=webhook_id)
    if url is None:
        raise NotFound(f"no webhook with id {webhook_id}", field="id")
    if active:
        check_target(url, allow_private=settings.webhook_allow_private, resolve=resolve, pin=False)
    webhook_queries.set_active(conn, webhook_id=webhook_id, active=active)
    audit.record(
        conn,
        actor=as_actor(actor),
        action="update",
        subject="webhook",
        subject_id=webhook_id,
        fields=["active"],
        details={"active": active},
    )


def list_webhooks(conn: Connection, *, tz: str = DEFAULT_TZ) -> list[dict[str, Any]]:
    """Webhooks without their secrets (times in ``tz``, the service's zone)."""
    return [
        {**row._asdict(), "created_at": iso(row.created_at, tz)}
        for row in webhook_queries.webhooks(conn)
    ]


def deliveries(
    conn: Connection, *, webhook_id: int | None = None, limit: int = 100, tz: str = DEFAULT_TZ
) -> list[dict[str, Any]]:
    """The delivery log, newest first, each with its attempts (times in ``tz``)."""
    rows = webhook_queries.deliveries(conn, webhook_id=webhook_id, limit=limit)
    ids = [int(r.id) for r in rows]
    tries: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if ids:
        for attempt in webhook_queries.attempts(conn, delivery_ids=ids):
            tries[int(attempt.delivery_id)].append(
                {
                    "at": iso(attempt.at, tz),
                    "status_code": attempt.status_code,
                    "error": attempt.error,
                    "duration_ms": attempt.duration_ms,
                }
            )
    out = []
    for delivery in rows:
        row: dict[str, Any] = delivery._asdict()
        for column in ("next_attempt_at", "created_at", "delivered_at"):
            row[column] = iso(row[column], tz)
        row["attempt_log"] = tries[int(delivery.id)]
        out.append(row)
    return out


# --- the outbox ------------------------------------------------------------------------------


def _payload(conn: Connection, *, event: str, request_id: int, now: dt.datetime) -> dict[str, Any]:
    """What a receiver needs to act (a member's app, an SMS gateway): no reporter data."""
    row = request_queries.request_row(conn, request_id=request_id)
    assert row is not None  # queued in the transaction that changed it
    tz = row.timezone
    return {
        "event": event,
        "occurred_at": iso(now, tz),
        "request": {
            "id": int(row.id),
            "status": row.status,
            "version": int(row.version),
            "community_code": row.community_code,
            "category": row.category_code,
            "category_name": row.category_name,
            "programme": row.programme,
            "description": row.description,
            "lon": round(float(row.lon), 7),
            "lat": round(float(row.lat), 7),
            "address": public_address(row),
            "grid_code": row.grid_code,
            "member_id": row.member_id,
            "member_display_name": mask_name(row.member_name) if row.member_name else None,
            "department": row.department_code,
            "received_at": iso(row.received_at, tz),
            "dispatched_at": iso(row.dispatched_at, tz),
            "due_at": iso(row.due_at, tz),
            "resolved_at": iso(row.resolved_at, tz),
        },
    }


def enqueue(
    conn: Connection, *, event: str, request_id: int, now: dt.datetime | None = None
) -> list[int]:
    """Queue ``event`` about a request for every active webhook that wants it."""
    now = now or models.utcnow()
    community_id = request_queries.request_community_id(conn, request_id=request_id)
    hooks = [
        hook
        for hook in webhook_queries.active_webhooks(conn)
        if event in (hook.events or []) and hook.community_id in (None, community_id)
    ]
    if not hooks:
        return []
    body = json.dumps(
        _payload(conn, event=event, request_id=request_id, now=now),
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return [
        webhook_queries.insert_delivery(
            conn, webhook_id=hook.id, event=event, request_id=request_id, payload=body, now=now
        )
        for hook in hooks
    ]


def sweep_overdue(conn: Connection, *, now: dt.datetime | None = None) -> list[int]:
    """Mark open requests past their SLA deadline and queue ``request.overdue`` for each
    (once per deadline: a reopened request gets a new one). Returns the request ids."""
    now = now or models.utcnow()
    ids = webhook_queries.overdue_request_ids(conn, now=now)
    if ids:
        webhook_queries.mark_overdue_notified(conn, request_ids=ids, now=now)
        for request_id in ids:
            enqueue(conn, event=EVENT_OVERDUE, request_id=request_id, now=now)
    return ids


# --- delivery --------------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    ids: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "attempted": self.attempted,
            "delivered": self.delivered,
            "retrying": self.retrying,
            "failed": self.failed,
        }


def _claim(
    engine: Engine, ids: Sequence[int] | None, now: dt.datetime, lease: float, limit: int
) -> list[webhook_queries.DueDelivery]:
    """Due deliveries, each leased (``next_attempt_at`` moved past the attempt) so that two
    workers never send the same one at once."""
    with engine.begin() as conn:
        rows = webhook_queries.due_deliveries(conn, ids=ids, now=now, limit=limit)
        until = now + dt.timedelta(seconds=lease)
        return [
            row
            for row in rows
            if webhook_queries.lease_delivery(
                conn, delivery_id=row.id, seen_next_attempt_at=row.next_attempt_at, until=until
            )
        ]


def deliver_due(
    engine: Engine,
    *,
    settings: RequestsSettings | None = None,
    ids: Sequence[int] | None = None,
    client: httpx.Client | None = None,
    now: dt.datetime | None = None,
    limit: int = 100,
    resolve: Resolver | None = None,
) -> DeliveryReport:
    """Send the deliveries that are due (or exactly ``ids``); record each attempt.

    Each target is checked again and connected to at the address checked (``resolve``:
    default the system's resolver). A given ``client`` must not follow redirects; the one
    made here does not, keeps no connection open between deliveries (one pinned to an
    address is never reused for another host name) and ignores proxy variables.
    """
    settings = settings or RequestsSettings.defaults()
    clock = now  # a given time (tests, replays) also dates the attempts
    now = now or models.utcnow()
    report = DeliveryReport()
    rows = _claim(engine, ids, now, settings.webhook_timeout_seconds * 2 + 5, limit)
    if not rows:
        return report
    own = client is None
    http = client or httpx.Client(
        timeout=settings.webhook_timeout_seconds,
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )
    try:
        for row in rows:
            _attempt(engine, http, row, settings, report, clock, resolve)
    finally:
        if own:
            http.close()
    return report


def _attempt(
    engine: Engine,
    http: httpx.Client,
    row: webhook_queries.DueDelivery,
    settings: RequestsSettings,
    report: DeliveryReport,
    clock: dt.datetime | None,
    resolve: Resolver | None,
) -> None:
    body = row.payload.encode()
    ts = int(time.time())
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "geogrid-webhooks",
        "X-Geogrid-Event": row.event,
        "X-Geogrid-Delivery": str(row.id),
        "X-Geogrid-Timestamp": str(ts),
        SIGNATURE_HEADER: sign(row.secret, ts, body),
    }
    started = time.perf_counter()
    status: int | None = None
    error: str | None = None
    try:
        # Checked again now: the name may resolve elsewhere than at registration.
        target = check_target(
            row.url, allow_private=settings.webhook_allow_private, resolve=resolve
        )
    except InvalidInput as exc:
        error = f"not sent: {exc.message.removeprefix('url: ')}"[:500]
    else:
        url, pinned, extensions = target.request()
        try:
            # Streamed and closed unread: only the status counts, whatever the body's size.
            with http.stream(
                "POST", url, content=body, headers={**headers, **pinned}, extensions=extensions
            ) as response:
                status = response.status_code
            if 300 <= status < 400:
                error = f"HTTP {status}: a redirect, not followed"
            elif not 200 <= status < 300:
                error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
    took = int((time.perf_counter() - started) * 1000)
    at = clock or models.utcnow()
    attempts = int(row.attempts) + 1
    outcome: str | None = None  # the delivery's new status; None: still pending
    next_attempt_at: dt.datetime | None = None
    report.attempted += 1
    report.ids.append(int(row.id))
    if error is None:
        outcome = models.DeliveryStatus.DELIVERED.value
        report.delivered += 1
    elif attempts >= settings.webhook_max_attempts:
        outcome = models.DeliveryStatus.FAILED.value
        report.failed += 1
        log.warning("webhook delivery %s failed after %s attempts: %s", row.id, attempts, error)
    else:
        wait = settings.webhook_backoff_seconds * 2 ** (attempts - 1)
        next_attempt_at = at + dt.timedelta(seconds=wait)
        report.retrying += 1
    with engine.begin() as conn:
        webhook_queries.record_attempt(
            conn,
            delivery_id=row.id,
            at=at,
            status_code=status,
            error=error,
            duration_ms=took,
            attempts=attempts,
            next_attempt_at=next_attempt_at,
            status=outcome,
            delivered_at=at if error is None else None,
        )


class WebhookWorker:
    """A daemon thread that finds overdue requests and delivers due webhooks every
    ``settings.webhook_poll_seconds`` (the API starts one in its lifespan)."""

    def __init__(
        self,
        engine: Engine,
        settings: RequestsSettings | None = None,
        *,
        resolve: Resolver | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings or RequestsSettings.defaults()
        self.resolve = resolve
        # A failed round keeps the worker alive; the next round retries.
        self._poller = Poller(
            self.run_once,
            interval=self.settings.webhook_poll_seconds,
            name="geogrid-webhooks",
            on_error=lambda exc: log.warning("webhook worker round failed: %s", exc),
        )

    def start(self) -> None:
        self._poller.start()

    def stop(self) -> None:
        self._poller.stop()

    def run_once(self) -> DeliveryReport:
        with self.engine.begin() as conn:
            sweep_overdue(conn)
        return deliver_due(self.engine, settings=self.settings, resolve=self.resolve)

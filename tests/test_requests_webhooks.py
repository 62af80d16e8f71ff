"""Webhooks on both backends: signed, delivered to a local receiver (127.0.0.1 only, allowed by
``webhook_allow_private``), retried with back-off, given up after the last attempt, every
attempt logged; overdue found once. Targets: tests/test_webhook_targets.py."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from geogrid.access import Actor
from geogrid.db import models as m
from geogrid.requests import webhooks as w
from geogrid.requests.workflow import ActionInput, Intake, act, receive
from geogrid.settings import RequestsSettings
from tests.requests_factories import IN_FIELD, Receiver, World, build_world, make_app, new_key

SECRET = "s3cret-s3cret-s3cret"
OFFICIAL = Actor(role=m.Role.OFFICIAL, label="official", key_id=1)
#: The receiver is local: http to 127.0.0.1.
LOCAL = RequestsSettings(webhook_allow_private=True)


def _local(**kw: Any) -> RequestsSettings:
    return RequestsSettings(webhook_allow_private=True, **kw)


@pytest.fixture
def world(engine: Engine) -> World:
    return build_world(engine)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _hook(engine: Engine, url: str, events: tuple[str, ...] = w.EVENTS) -> int:
    with engine.begin() as conn:
        return w.create_webhook(conn, url=url, events=events, secret=SECRET, settings=LOCAL)[0]


def _file_and_dispatch(engine: Engine) -> tuple[int, list[int]]:
    with engine.begin() as conn:
        rid = receive(
            conn,
            Intake(category="sewer_blocked", lon=IN_FIELD[0], lat=IN_FIELD[1]),
            actor=OFFICIAL,
        ).request_id
        act(conn, request_id=rid, action="register", actor=OFFICIAL, params=ActionInput(version=1))
        out = act(
            conn, request_id=rid, action="dispatch", actor=OFFICIAL, params=ActionInput(version=2)
        )
    return rid, out.deliveries


def _delivery(engine: Engine, did: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(m.table(m.WebhookDelivery)).where(m.WebhookDelivery.id == did)
        ).one()


def test_dispatch_through_the_api_is_signed_and_delivered(
    db_url: str, engine: Engine, world: World, receiver: Receiver
) -> None:
    _hook(engine, receiver.url)
    official = new_key(engine, "official")
    h = {"X-API-Key": official}
    with TestClient(make_app(db_url)) as client:
        rid = client.post(
            "/v1/requests",
            json={"category": "sewer_blocked", "lon": IN_FIELD[0], "lat": IN_FIELD[1]},
            headers=h,
        ).json()["id"]
        assert receiver.calls == []  # intake notifies no one; dispatch does
        client.post(f"/v1/requests/{rid}/register", json={"version": 1}, headers=h)
        r = client.post(f"/v1/requests/{rid}/dispatch", json={"version": 2}, headers=h)
        assert r.status_code == 200
    assert len(receiver.calls) == 1  # sent by the background task after the commit
    call = receiver.calls[0]
    headers = {k.lower(): v for k, v in call["headers"].items()}
    assert headers["x-geogrid-event"] == "request.dispatched"
    ts = int(headers["x-geogrid-timestamp"])
    assert w.verify(SECRET, ts, call["body"], headers["x-geogrid-signature"])
    assert not w.verify("another secret!!", ts, call["body"], headers["x-geogrid-signature"])
    payload = json.loads(call["body"])
    assert payload["event"] == "request.dispatched"
    assert payload["request"]["id"] == rid
    assert payload["request"]["member_id"] == world.members["A"]
    assert payload["request"]["member_display_name"] == "张*明"
    assert payload["request"]["due_at"].endswith("+08:00")
    assert "张小明" not in call["body"].decode()
    d = _delivery(engine, int(headers["x-geogrid-delivery"]))
    assert (d.status, d.attempts, d.last_status_code) == ("delivered", 1, 200)


def test_retry_with_back_off_then_success(engine: Engine, world: World) -> None:
    receiver = Receiver([500, 503])
    try:
        _hook(engine, receiver.url)
        _, (did,) = _file_and_dispatch(engine)
        settings = _local(webhook_backoff_seconds=30, webhook_max_attempts=5)
        t0 = m.utcnow()
        first = w.deliver_due(engine, settings=settings, now=t0)
        assert (first.attempted, first.retrying) == (1, 1)
        d = _delivery(engine, did)
        assert (d.status, d.attempts, d.last_status_code) == ("pending", 1, 500)
        wait = (d.next_attempt_at - t0).total_seconds()
        assert 29 <= wait <= 40
        assert w.deliver_due(engine, settings=settings, now=t0).attempted == 0  # not yet due
        second = w.deliver_due(engine, settings=settings, now=d.next_attempt_at)
        assert second.retrying == 1
        d2 = _delivery(engine, did)
        assert 59 <= (d2.next_attempt_at - d.next_attempt_at).total_seconds() <= 75  # doubled
        third = w.deliver_due(engine, settings=settings, now=d2.next_attempt_at)
        assert third.delivered == 1
        d3 = _delivery(engine, did)
        assert (d3.status, d3.attempts) == ("delivered", 3)
        with engine.connect() as conn:
            log = w.deliveries(conn)
        assert [a["status_code"] for a in log[0]["attempt_log"]] == [500, 503, 200]
    finally:
        receiver.close()


def test_gives_up_after_the_last_attempt(engine: Engine, world: World) -> None:
    receiver = Receiver([500] * 5)
    try:
        _hook(engine, receiver.url)
        _, (did,) = _file_and_dispatch(engine)
        settings = _local(webhook_backoff_seconds=1, webhook_max_attempts=2)
        w.deliver_due(engine, settings=settings)
        report = w.deliver_due(engine, settings=settings, now=m.utcnow() + dt.timedelta(hours=1))
        assert report.failed == 1
        d = _delivery(engine, did)
        assert (d.status, d.attempts, d.next_attempt_at) == ("failed", 2, None)
    finally:
        receiver.close()


def test_unreachable_receiver_is_logged(engine: Engine, world: World) -> None:
    _hook(engine, "http://127.0.0.1:9/nobody-listens")
    _, (did,) = _file_and_dispatch(engine)
    report = w.deliver_due(engine, settings=_local(webhook_timeout_seconds=2))
    assert report.retrying == 1
    d = _delivery(engine, did)
    assert d.last_status_code is None and "ConnectError" in d.last_error


def test_escalation_resolution_and_event_filter(
    engine: Engine, world: World, receiver: Receiver
) -> None:
    _hook(engine, receiver.url, events=(w.EVENT_RESOLVED,))
    rid, deliveries = _file_and_dispatch(engine)
    assert deliveries == []  # this webhook wants resolutions only
    with engine.begin() as conn:
        esc = act(
            conn,
            request_id=rid,
            action="escalate",
            actor=OFFICIAL,
            params=ActionInput(version=3, note="水务"),
        )
        res = act(
            conn,
            request_id=rid,
            action="resolve",
            actor=OFFICIAL,
            params=ActionInput(version=4, note="修好了"),
        )
    assert esc.deliveries == [] and len(res.deliveries) == 1
    w.deliver_due(engine, ids=res.deliveries, settings=LOCAL)
    assert [json.loads(c["body"])["event"] for c in receiver.calls] == ["request.resolved"]


def test_overdue_is_found_once(engine: Engine, world: World, receiver: Receiver) -> None:
    _hook(engine, receiver.url, events=(w.EVENT_OVERDUE,))
    rid, _ = _file_and_dispatch(engine)
    with engine.begin() as conn:
        conn.execute(
            update(m.Request)
            .where(m.Request.id == rid)
            .values(due_at=m.utcnow() - dt.timedelta(hours=1))
        )
        assert w.sweep_overdue(conn) == [rid]
        assert w.sweep_overdue(conn) == []
    worker = w.WebhookWorker(engine, LOCAL)
    report = worker.run_once()
    assert report.delivered == 1
    payload = json.loads(receiver.calls[0]["body"])
    assert payload["event"] == "request.overdue" and payload["request"]["id"] == rid


def test_bad_webhooks_are_refused(engine: Engine, world: World) -> None:
    from geogrid.errors import InvalidInput

    with engine.begin() as conn:
        for kwargs, field in [
            ({"url": "ftp://x"}, "url"),
            ({"url": "http://127.0.0.1/x", "events": ["request.lost"]}, "events"),
            ({"url": "http://127.0.0.1/x", "secret": "short"}, "secret"),
        ]:
            with pytest.raises(InvalidInput) as exc:
                w.create_webhook(conn, settings=LOCAL, **kwargs)  # type: ignore[arg-type]
            assert exc.value.field == field


def test_the_servers_worker_finds_overdue_requests(
    db_url: str, engine: Engine, world: World, receiver: Receiver
) -> None:
    """The requests router's lifespan runs the worker: an overdue request is notified
    without anyone asking."""
    import time

    _hook(engine, receiver.url, events=(w.EVENT_OVERDUE,))
    rid, _ = _file_and_dispatch(engine)
    with engine.begin() as conn:
        conn.execute(
            update(m.Request)
            .where(m.Request.id == rid)
            .values(due_at=m.utcnow() - dt.timedelta(minutes=5))
        )
    with TestClient(make_app(db_url, webhook_poll_seconds=0.1)):
        deadline = time.monotonic() + 10
        while not receiver.calls and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [json.loads(c["body"])["event"] for c in receiver.calls] == ["request.overdue"]

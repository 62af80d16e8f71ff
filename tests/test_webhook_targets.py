"""Webhook targets (issue 14, SSRF): https to public addresses only, checked at registration
(API, CLI, library) and again at delivery, which connects to the address it checked (Host and
TLS server name kept) and follows no redirect. No test needs the internet: the resolver is
injected, and deliveries that really connect go to a local receiver under
``webhook_allow_private``."""

from __future__ import annotations

import ipaddress
import json
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from geogrid.access import Actor, create_key
from geogrid.db import models as m
from geogrid.errors import InvalidInput
from geogrid.requests import webhooks as w
from geogrid.requests.targets import check_target, is_public
from geogrid.requests.workflow import ActionInput, Intake, act, receive
from geogrid.settings import RequestsSettings
from tests.requests_factories import IN_FIELD, Receiver, World, make_app

SECRET = "s3cret-s3cret-s3cret"
OFFICIAL = Actor(role=m.Role.OFFICIAL, label="official", key_id=1)
#: A public address (example.com's, long ago); never connected to by these tests.
PUBLIC = "93.184.216.34"
PEM = str(Path(__file__).parent / "tls" / "hooks.example.org.pem")
STRICT = RequestsSettings(webhook_allow_private=False)
LOCAL = RequestsSettings(webhook_allow_private=True)

#: Each of these reaches the machine itself or its cloud's metadata service.
INSIDE = [
    "https://127.0.0.1/hook",
    "https://0x7f000001/hook",  # hex
    "https://2130706433/hook",  # one integer
    "https://017700000001/hook",  # octal
    "https://127.1/hook",  # shortened
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped
    "https://[::ffff:169.254.169.254]/hook",
    "https://[2002:7f00:1::1]/hook",  # 6to4 of 127.0.0.1
    "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
    "https://10.1.2.3/hook",
    "https://0.0.0.0/hook",
    "https://224.0.0.1/hook",  # multicast
]


def resolver(*answers: str) -> Callable[[str, int], Sequence[str]]:
    """A resolver answering ``answers`` for any name, recording what it was asked."""
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> Sequence[str]:
        asked.append((host, port))
        return list(answers)

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


def nowhere(host: str, port: int) -> Sequence[str]:
    raise AssertionError(f"a numeric host was sent to the resolver: {host}")


# --- the check -------------------------------------------------------------------------------


@pytest.mark.parametrize("url", INSIDE)
def test_addresses_inside_are_refused_without_a_resolver(url: str) -> None:
    with pytest.raises(InvalidInput, match="not a public address") as exc:
        check_target(url, resolve=nowhere)
    assert exc.value.field == "url"


def test_numeric_forms_read_as_the_address_they_stand_for() -> None:
    for url in INSIDE[:5]:
        target = check_target(url, allow_private=True, resolve=nowhere)
        assert target.address == ipaddress.ip_address("127.0.0.1"), url


def test_a_name_is_checked_by_every_address_it_resolves_to() -> None:
    ok = check_target("https://hooks.example.org/x", resolve=resolver(PUBLIC, "2606:4700::1111"))
    assert [str(a) for a in ok.addresses] == [PUBLIC, "2606:4700::1111"]
    for answers in [("127.0.0.1",), (PUBLIC, "10.0.0.7"), ("::ffff:127.0.0.1",), ("fe80::1",)]:
        with pytest.raises(InvalidInput, match=r"hooks\.example\.org resolves to") as exc:
            check_target("https://hooks.example.org/x", resolve=resolver(*answers))
        assert exc.value.field == "url"


def test_https_only_and_names_must_resolve() -> None:
    for url in ("http://hooks.example.org/x", "ftp://hooks.example.org/x", "file:///etc/passwd"):
        with pytest.raises(InvalidInput, match="https") as exc:
            check_target(url, resolve=resolver(PUBLIC))
        assert exc.value.field == "url"

    def unknown(host: str, port: int) -> Sequence[str]:
        raise OSError(-2, "Name or service not known")

    with pytest.raises(InvalidInput, match="does not resolve"):
        check_target("https://hooks.example.org/x", resolve=unknown)
    # Allowed: http and private addresses; a name is not resolved at registration.
    assert check_target("http://127.0.0.1:9/x", allow_private=True).address is not None
    assert check_target("http://receiver.lan/x", allow_private=True, pin=False).addresses == ()


def test_is_public() -> None:
    assert is_public(ipaddress.ip_address(PUBLIC))
    assert is_public(ipaddress.ip_address("2606:4700::1111"))
    assert not is_public(ipaddress.ip_address("100.64.0.1"))  # carrier-grade NAT
    assert not is_public(ipaddress.ip_address("192.0.2.1"))  # documentation


def test_the_request_is_pinned_to_the_checked_address() -> None:
    target = check_target("https://hooks.example.org:8443/x?a=1", resolve=resolver(PUBLIC))
    url, headers, extensions = target.request()
    assert url == f"https://{PUBLIC}:8443/x?a=1"
    assert headers == {"Host": "hooks.example.org:8443"}
    assert extensions == {"sni_hostname": "hooks.example.org"}


# --- registration ----------------------------------------------------------------------------


def _admin(engine: Engine) -> dict[str, str]:
    with engine.begin() as conn:
        return {"X-API-Key": create_key(conn, role="admin").key}


def test_the_api_refuses_targets_inside(db_url: str, engine: Engine, world: World) -> None:
    headers = _admin(engine)
    with TestClient(make_app(db_url, webhook_allow_private=False)) as client:
        for url in [
            "https://127.0.0.1/hook",
            "https://0x7f000001/hook",
            "https://169.254.169.254/latest/meta-data/",
            "https://[::1]/hook",
            "http://127.0.0.1:8000/v1/admin/keys",  # the API itself, and not https
        ]:
            r = client.post("/v1/admin/webhooks", json={"url": url}, headers=headers)
            assert r.status_code == 422, (url, r.text)
            assert r.json()["error"]["field"] == "url"
        # One registered earlier (under other rules) is not switched back on.
        with engine.begin() as conn:
            wid = w.create_webhook(conn, url="https://127.0.0.1/hook", settings=LOCAL)[0]
            conn.execute(update(m.Webhook).where(m.Webhook.id == wid).values(active=False))
        r = client.patch(f"/v1/admin/webhooks/{wid}", json={"active": True}, headers=headers)
        assert r.status_code == 422 and r.json()["error"]["field"] == "url", r.text
        r = client.patch(f"/v1/admin/webhooks/{wid}", json={"active": False}, headers=headers)
        assert r.status_code == 200
    with engine.connect() as conn:
        assert conn.execute(select(m.Webhook.url)).scalars().all() == ["https://127.0.0.1/hook"]


def test_the_library_checks_names_with_the_resolver_given(engine: Engine, world: World) -> None:
    with engine.begin() as conn:
        with pytest.raises(InvalidInput) as exc:
            w.create_webhook(conn, url="https://hooks.example.org/x", resolve=resolver("127.0.0.1"))
        assert exc.value.field == "url"
        wid, _ = w.create_webhook(conn, url="https://hooks.example.org/x", resolve=resolver(PUBLIC))
        w.set_webhook_active(conn, webhook_id=wid, active=False)
        with pytest.raises(InvalidInput):
            w.set_webhook_active(conn, webhook_id=wid, active=True, resolve=resolver("10.0.0.1"))
        w.set_webhook_active(conn, webhook_id=wid, active=True, resolve=resolver(PUBLIC))


def test_the_cli_refuses_targets_inside(db_url: str, world: World) -> None:
    from typer.testing import CliRunner

    from tests.requests_factories import cli_app

    r = CliRunner().invoke(
        cli_app(),
        ["webhooks", "add", "https://0x7f000001/hook", "--database", db_url],
        env={"GEOGRID_WEBHOOK_ALLOW_PRIVATE": "false"},
    )
    assert r.exit_code == 1 and "not a public address" in r.output, r.output


# --- delivery --------------------------------------------------------------------------------


def _dispatched(engine: Engine, url: str, **kw: Any) -> int:
    """The only active webhook, for ``url``, and a dispatch that queues a delivery to it;
    the delivery's id."""
    with engine.begin() as conn:
        conn.execute(update(m.Webhook).values(active=False))
        w.create_webhook(conn, url=url, secret=SECRET, **kw)
        rid = receive(
            conn,
            Intake(category="sewer_blocked", lon=IN_FIELD[0], lat=IN_FIELD[1]),
            actor=OFFICIAL,
        ).request_id
        act(conn, request_id=rid, action="register", actor=OFFICIAL, params=ActionInput(version=1))
        out = act(
            conn, request_id=rid, action="dispatch", actor=OFFICIAL, params=ActionInput(version=2)
        )
    (did,) = out.deliveries
    return did


def _delivery(engine: Engine, did: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(m.table(m.WebhookDelivery)).where(m.WebhookDelivery.id == did)
        ).one()


def test_a_name_that_now_resolves_inside_is_not_connected_to(engine: Engine, world: World) -> None:
    receiver = Receiver()  # listening on 127.0.0.1: it must not be called
    try:
        url = f"https://hooks.example.org:{receiver.port}/hook"
        did = _dispatched(engine, url, resolve=resolver(PUBLIC))  # public when registered
        rebound = resolver("127.0.0.1")  # … and rebound since
        report = w.deliver_due(engine, settings=STRICT, resolve=rebound)
        assert (report.attempted, report.retrying) == (1, 1)
        d = _delivery(engine, did)
        assert (d.status, d.attempts, d.last_status_code) == ("pending", 1, None)
        assert d.last_error.startswith("not sent: hooks.example.org resolves to 127.0.0.1")
        assert rebound.asked == [("hooks.example.org", receiver.port)]  # type: ignore[attr-defined]
        assert receiver.calls == []
    finally:
        receiver.close()


def test_delivery_connects_to_the_address_it_resolved(engine: Engine, world: World) -> None:
    """``hooks.example.org`` is in no DNS here: the delivery reaching the receiver shows
    that it connected to the address the check resolved, with the name as ``Host``."""
    receiver = Receiver()
    try:
        url = f"http://hooks.example.org:{receiver.port}/hook"
        did = _dispatched(engine, url, settings=LOCAL)
        report = w.deliver_due(engine, settings=LOCAL, resolve=resolver("127.0.0.1"))
        assert report.delivered == 1
        (call,) = receiver.calls
        assert call["headers"]["Host"] == f"hooks.example.org:{receiver.port}"
        assert json.loads(call["body"])["event"] == "request.dispatched"
        assert _delivery(engine, did).status == "delivered"
    finally:
        receiver.close()


def test_tls_is_verified_against_the_name_not_the_address(engine: Engine, world: World) -> None:
    """Pinned to 127.0.0.1, the TLS handshake still names ``hooks.example.org`` (SNI) and
    the certificate is checked against it; a name the certificate lacks fails."""
    receiver = Receiver(tls=PEM)
    client = httpx.Client(verify=ssl.create_default_context(cafile=PEM), trust_env=False)
    try:
        good = _dispatched(
            engine, f"https://hooks.example.org:{receiver.port}/hook", settings=LOCAL
        )
        report = w.deliver_due(
            engine, settings=LOCAL, resolve=resolver("127.0.0.1"), client=client, ids=[good]
        )
        assert report.delivered == 1
        assert receiver.server_names == ["hooks.example.org"]
        assert receiver.calls[0]["headers"]["Host"] == f"hooks.example.org:{receiver.port}"
        bad = _dispatched(engine, f"https://other.example.org:{receiver.port}/hook", settings=LOCAL)
        w.deliver_due(
            engine, settings=LOCAL, resolve=resolver("127.0.0.1"), client=client, ids=[bad]
        )
        d = _delivery(engine, bad)
        assert d.status == "pending" and "other.example.org" in d.last_error
        assert len(receiver.calls) == 1
    finally:
        client.close()
        receiver.close()


def test_redirects_are_not_followed(engine: Engine, world: World) -> None:
    inside = Receiver()
    redirecting = Receiver([302], headers={"Location": inside.url})
    try:
        did = _dispatched(engine, redirecting.url, settings=LOCAL)
        report = w.deliver_due(engine, settings=LOCAL)
        assert report.retrying == 1
        d = _delivery(engine, did)
        assert (d.last_status_code, d.last_error) == (302, "HTTP 302: a redirect, not followed")
        assert len(redirecting.calls) == 1 and inside.calls == []
    finally:
        redirecting.close()
        inside.close()

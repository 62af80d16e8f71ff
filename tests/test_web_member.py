"""A grid member's pages (issue 15): one-time sign-in links, the work list at ``/my`` and its
forms (start, resolve with a photo, visits), on both backends.

The forms must change the data exactly as ``POST /v1/requests/{id}/{action}`` and
``POST /v1/visits`` do — they call the same library functions — and a member must reach
nothing outside its own requests and households.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine, func, select, update

from api.auth import SESSION_COOKIE
from geogrid.access import check_key, create_sign_in_link, redeem_sign_in_link, session_actor
from geogrid.db import models as m
from geogrid.errors import Forbidden, NotAuthenticated
from geogrid.privacy import mask_name
from tests.requests_factories import (
    IN_FIELD,
    IN_GRID_NO_FIELD,
    World,
    csrf_token,
    file_request,
    make_app,
    new_key,
    sign_in,
)

A = "441302011099"


@pytest.fixture
def client(db_url: str, world: World) -> Iterator[TestClient]:
    with TestClient(make_app(db_url)) as c:
        yield c


def _actor(engine: Engine, key: str) -> Any:
    with engine.connect() as conn:
        return check_key(conn, key)[0]


def _dispatched(client: TestClient, official: str, at: tuple[float, float] = IN_FIELD) -> int:
    """A request at ``at`` (member A's field by default), registered and dispatched."""
    filed = file_request(client, official, lon=at[0], lat=at[1], description="井盖松动")
    assert filed.status_code == 201, filed.text
    rid = int(filed.json()["id"])
    for action, version in (("register", 1), ("dispatch", 2)):
        answer = client.post(
            f"/v1/requests/{rid}/{action}",
            json={"version": version},
            headers={"X-API-Key": official},
        )
        assert answer.status_code == 200, answer.text
    return rid


def _request(engine: Engine, rid: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(m.Request).where(m.Request.id == rid)).one()


def _member_session(client: TestClient, engine: Engine, world: World) -> str:
    """Member A signed in through a link an official of A printed."""
    official = _actor(engine, new_key(engine, "official", community_code=A))
    with engine.begin() as conn:
        token, _ = create_sign_in_link(conn, member_id=world.members["A"], actor=official)
    form = {"token": token, "csrf_token": csrf_token(client, f"/login/link/{token}")}
    answer = client.post("/login/link", data=form, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/my", answer.text
    return token


# --- sign-in links: the library ------------------------------------------------------------------


def test_only_officials_of_the_community_make_links(engine: Engine, world: World) -> None:
    member = world.members["A"]
    refused = [
        _actor(engine, new_key(engine, role, **kw))
        for role, kw in (
            ("planner", {"community_code": A}),
            ("department", {"department_code": "urban_management"}),
            ("member", {"member_id": member}),
        )
    ]
    for actor in refused:
        with engine.begin() as conn, pytest.raises(Forbidden):
            create_sign_in_link(conn, member_id=member, actor=actor)
    # An official of another community: refused by scope.
    with engine.begin() as conn:
        other = conn.execute(
            m.Community.__table__.insert().values(
                code="441302011098",
                name="另一社区",
                boundary=conn.execute(
                    select(m.Community.boundary).where(m.Community.id == world.community_id)
                ).scalar_one(),
                created_at=m.utcnow(),
            )
        ).inserted_primary_key
    assert other
    outsider = _actor(engine, new_key(engine, "official", community_code="441302011098"))
    with engine.begin() as conn, pytest.raises(Forbidden, match="other communities"):
        create_sign_in_link(conn, member_id=member, actor=outsider)
    for key in (new_key(engine, "official", community_code=A), new_key(engine, "admin")):
        with engine.begin() as conn:
            token, expires = create_sign_in_link(conn, member_id=member, actor=_actor(engine, key))
        assert len(token) >= 40 and expires > m.utcnow() + dt.timedelta(hours=23)
    with engine.connect() as conn:
        links = conn.execute(select(m.SignInLink)).all()
        # Only hashes are stored; one member key was made for both links (no key before).
        assert all(len(link.token_hash) == 64 and token not in link.token_hash for link in links)
        assert len({link.api_key_id for link in links}) == 1
        made = conn.execute(select(m.ApiKey).where(m.ApiKey.id == links[0].api_key_id)).one()
        assert (made.role, made.member_id) == ("member", member)
        audited = conn.execute(
            select(func.count()).where(m.AuditEntry.subject == "sign_in_link")
        ).scalar_one()
        assert audited == 2


def test_a_link_uses_the_members_own_key(engine: Engine, world: World) -> None:
    member = world.members["A"]
    own = new_key(engine, "member", member_id=member)
    official = _actor(engine, new_key(engine, "official", community_code=A))
    with engine.begin() as conn:
        token, _ = create_sign_in_link(conn, member_id=member, actor=official)
        session, actor = redeem_sign_in_link(conn, token=token, session_hours=12)
    assert actor.label == _actor(engine, own).label and actor.member_id == member
    with engine.connect() as conn:
        assert session_actor(conn, session).member_id == member


def test_redeem_once_then_refused_and_expiry(engine: Engine, world: World) -> None:
    official = _actor(engine, new_key(engine, "official", community_code=A))
    now = m.utcnow()
    with engine.begin() as conn:
        token, expires = create_sign_in_link(
            conn, member_id=world.members["A"], actor=official, now=now
        )
        late, _ = create_sign_in_link(conn, member_id=world.members["A"], actor=official, now=now)
    assert expires == now + dt.timedelta(hours=24)
    with engine.begin() as conn:
        redeem_sign_in_link(conn, token=token, session_hours=12, now=now)
    with engine.begin() as conn, pytest.raises(NotAuthenticated, match="used already"):
        redeem_sign_in_link(conn, token=token, session_hours=12, now=now)
    with engine.begin() as conn, pytest.raises(NotAuthenticated, match="expired"):
        redeem_sign_in_link(
            conn, token=late, session_hours=12, now=now + dt.timedelta(hours=24, seconds=1)
        )
    with engine.begin() as conn, pytest.raises(NotAuthenticated, match="not valid"):
        redeem_sign_in_link(conn, token="nonsense", session_hours=12, now=now)
    # The expired link was not spent by the refusal: still unused, and still refused.
    with engine.connect() as conn:
        used = conn.execute(select(m.SignInLink.used_at).order_by(m.SignInLink.id)).scalars()
        assert [u is not None for u in used] == [True, False]


def test_concurrent_redemptions_exactly_one_wins(engine: Engine, world: World) -> None:
    official = _actor(engine, new_key(engine, "official", community_code=A))
    with engine.begin() as conn:
        token, _ = create_sign_in_link(conn, member_id=world.members["A"], actor=official)
    barrier = threading.Barrier(2)
    results: list[str] = []

    def redeem() -> None:
        barrier.wait()
        try:
            with engine.begin() as conn:
                redeem_sign_in_link(conn, token=token, session_hours=12)
            results.append("ok")
        except NotAuthenticated:
            results.append("refused")

    threads = [threading.Thread(target=redeem) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == ["ok", "refused"]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(m.ApiSession)).scalar_one() == 1


# --- sign-in links: the pages ---------------------------------------------------------------------


def test_link_pages(client: TestClient, engine: Engine, world: World) -> None:
    official = new_key(engine, "official", community_code=A)
    assert sign_in(client, official).status_code == 303
    members = client.get("/members")
    assert members.status_code == 200
    assert "张**" in members.text or "张*" in members.text
    assert "张小明" not in members.text  # names masked
    member = world.members["A"]
    assert client.get(f"/members/{member}/sign-in-link").status_code == 200
    # Without the CSRF token: refused, no link made.
    assert client.post(f"/members/{member}/sign-in-link").status_code == 403
    page = client.post(
        f"/members/{member}/sign-in-link",
        data={"csrf_token": csrf_token(client, f"/members/{member}/sign-in-link")},
    )
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "<svg" in page.text and "张小明" not in page.text
    link = re.search(r'href="(http://testserver/login/link/[^"]+)"', page.text)
    assert link, page.text
    token = link.group(1).rsplit("/", 1)[1]
    # Valid until, in the community's zone (Asia/Shanghai: UTC+8).
    with engine.connect() as conn:
        expires = conn.execute(select(m.SignInLink.expires_at)).scalar_one()
    local = expires.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M")
    assert local in page.text

    client.cookies.clear()
    # GET does not spend the link (scanners and previews fetch it).
    for _ in range(3):
        assert client.get(f"/login/link/{token}").status_code == 200
    with engine.connect() as conn:
        assert conn.execute(select(m.SignInLink.used_at)).scalar_one() is None
    form = {"token": token, "csrf_token": csrf_token(client, f"/login/link/{token}")}
    # Without the CSRF token: refused, the link not spent.
    assert client.post("/login/link", data={"token": token}).status_code == 403
    answer = client.post("/login/link", data=form, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/my"
    cookie = answer.headers["set-cookie"]
    assert SESSION_COOKIE in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    my = client.get("/my")
    assert my.status_code == 200 and 'data-role="member"' in my.text
    # The header greets the member by the masked name, not the key made for the link.
    signed_in = re.search(r'class="signed-in"[^>]*>.*?<strong[^>]*>([^<]+)</strong>', my.text)
    assert signed_in and signed_in.group(1) == mask_name("张小明"), my.text[:2000]
    # A second redemption: refused, saying why.
    client.cookies.clear()
    form["csrf_token"] = csrf_token(client, "/login")  # the link's page has no form now
    again = client.post("/login/link", data=form, follow_redirects=False)
    assert again.status_code == 401 and "已经使用过" in again.text
    # The page of a spent link says so at once (in the viewer's language), with no button.
    spent = client.get(f"/login/link/{token}")
    assert "已经使用过" in spent.text and 'action="/login/link"' not in spent.text
    assert "used already" in client.get(f"/login/link/{token}?lang=en").text
    assert client.get("/my", follow_redirects=False).status_code == 303


def test_link_expires_by_the_apps_clock(client: TestClient, engine: Engine, world: World) -> None:
    official = new_key(engine, "official", community_code=A)
    sign_in(client, official)
    member = world.members["A"]
    page = client.post(
        f"/members/{member}/sign-in-link",
        data={"csrf_token": csrf_token(client, "/members")},
    )
    token = re.search(r"/login/link/([A-Za-z0-9_-]+)", page.text)
    assert token
    client.cookies.clear()
    real = client.app.state.clock  # type: ignore[attr-defined]
    client.app.state.clock = lambda: real() + dt.timedelta(hours=24, minutes=1)  # type: ignore[attr-defined]
    try:
        form = {"token": token.group(1), "csrf_token": csrf_token(client, "/login")}
        answer = client.post("/login/link", data=form, follow_redirects=False)
    finally:
        client.app.state.clock = real  # type: ignore[attr-defined]
    assert answer.status_code == 401 and "已过期" in answer.text


def test_other_roles_cannot_print_links(client: TestClient, engine: Engine, world: World) -> None:
    member = world.members["A"]
    assert (
        client.get("/members", follow_redirects=False)
        .headers["location"]
        .startswith("/login?next=/members")
    )
    sign_in(client, new_key(engine, "member", member_id=member))
    assert client.get("/members").status_code == 403
    form = {"csrf_token": csrf_token(client, "/my")}
    assert client.post(f"/members/{member}/sign-in-link", data=form).status_code == 403
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(m.SignInLink)).scalar_one() == 0


# --- the work list --------------------------------------------------------------------------------


def test_work_list_shows_my_open_requests_soonest_due_first(
    client: TestClient, engine: Engine, world: World
) -> None:
    official = new_key(engine, "official", community_code=A)
    mine = [_dispatched(client, official) for _ in range(3)]
    others = _dispatched(client, official, IN_GRID_NO_FIELD)  # member B's (grid lead)
    received = file_request(client, official).json()["id"]  # member A's, but only received
    now = m.utcnow()
    dues = {mine[0]: now + dt.timedelta(hours=30), mine[1]: now - dt.timedelta(hours=2)}
    dues[mine[2]] = now + dt.timedelta(hours=3)
    with engine.begin() as conn:
        for rid, due in dues.items():
            conn.execute(update(m.Request).where(m.Request.id == rid).values(due_at=due))
    closed = _dispatched(client, official)
    with engine.begin() as conn:  # a finished one of A's: not on the list
        conn.execute(update(m.Request).where(m.Request.id == closed).values(status="closed"))
    _member_session(client, engine, world)
    page = client.get("/my")
    assert page.status_code == 200
    shown = [int(i) for i in re.findall(r'data-request="(\d+)"', page.text)]
    # Soonest due first (the overdue one on top), then the received one without a due time.
    assert shown == [mine[1], mine[2], mine[0], received]
    assert others not in shown and closed not in shown
    overdue = re.findall(r'data-request="(\d+)"[^>]*class="is-overdue"', page.text)
    assert overdue == [str(mine[1])]
    # Start is offered on the dispatched ones only.
    starts = [int(i) for i in re.findall(r'action="/my/requests/(\d+)/start"', page.text)]
    assert starts == mine[1:2] + mine[2:3] + mine[0:1]


def test_start_resolve_and_visit_through_the_forms(
    client: TestClient, engine: Engine, world: World
) -> None:
    official = new_key(engine, "official", community_code=A)
    rid = _dispatched(client, official)
    _member_session(client, engine, world)
    token = csrf_token(client, "/my")
    # CSRF missing: 403, nothing changes.
    assert client.post(f"/my/requests/{rid}/start", data={"version": 3}).status_code == 403
    assert _request(engine, rid).status == "dispatched"
    started = client.post(
        f"/my/requests/{rid}/start",
        data={"version": 3, "csrf_token": token},
        follow_redirects=False,
    )
    assert started.status_code == 303 and started.headers["location"].startswith("/my?done=start")
    row = _request(engine, rid)
    assert (row.status, row.version) == ("in_progress", 4)
    # The same form again, with the version it had: someone else acted.
    stale_en = client.post(
        f"/my/requests/{rid}/start?lang=en", data={"version": 3, "csrf_token": token}
    )
    assert stale_en.status_code == 409 and "Someone else acted on this request" in stale_en.text
    assert _request(engine, rid).version == 4

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, "JPEG")
    resolved = client.post(
        f"/my/requests/{rid}/resolve",
        data={"version": 4, "note": "已更换井盖", "csrf_token": token},
        files={"photo": ("fixed.jpg", buffer.getvalue(), "image/jpeg")},
        follow_redirects=False,
    )
    assert resolved.status_code == 303, resolved.text
    api = client.get(f"/v1/requests/{rid}", headers={"X-API-Key": official}).json()
    assert api["status"] == "resolved" and api["version"] == 5
    assert [p["content_type"] for p in api["media"]] == ["image/jpeg"]
    resolve = [h for h in api["history"] if h["action"] == "resolve"]
    assert resolve and resolve[0]["note"] == "已更换井盖"
    assert rid not in [int(i) for i in re.findall(r'data-request="(\d+)"', client.get("/my").text)]

    with engine.connect() as conn:
        home = conn.execute(
            select(m.Household.address_id).where(m.Household.id == world.households[0])
        ).scalar_one()
    page = client.get("/my").text
    assert f'value="{home}"' in page  # the member's own household is offered
    logged = client.post(
        "/my/visits",
        data={
            "address_id": home,
            "visited_on": "2026-01-05",
            "kind": "care",
            "note": "慰问",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert logged.status_code == 303
    with engine.connect() as conn:
        visit = conn.execute(select(m.Visit)).one()
    assert (visit.member_id, visit.kind, visit.note) == (world.members["A"], "care", "慰问")
    assert visit.visited_on == dt.date(2026, 1, 5)
    assert client.post("/my/visits", data={"address_id": home, "kind": "care"}).status_code == 403


def test_a_too_large_photo_is_refused_with_a_message(
    client: TestClient, engine: Engine, world: World
) -> None:
    official = new_key(engine, "official", community_code=A)
    rid = _dispatched(client, official)
    _member_session(client, engine, world)
    token = csrf_token(client, "/my")
    big = b"\xff\xd8\xff\xe0" + b"\0" * 5_200_000
    answer = client.post(
        f"/my/requests/{rid}/resolve?lang=en",
        data={"version": 3, "note": "done", "csrf_token": token},
        files={"photo": ("big.jpg", big, "image/jpeg")},
    )
    assert answer.status_code == 422
    assert "The photo is 5.2 MB; at most 5 MB" in answer.text
    assert _request(engine, rid).status == "dispatched"


def test_nothing_outside_the_members_own(client: TestClient, engine: Engine, world: World) -> None:
    official = new_key(engine, "official", community_code=A)
    others = _dispatched(client, official, IN_GRID_NO_FIELD)  # member B's
    _member_session(client, engine, world)
    token = csrf_token(client, "/my")
    assert (
        client.post(
            f"/my/requests/{others}/start", data={"version": 3, "csrf_token": token}
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/my/requests/{others}/resolve",
            data={"version": 3, "note": "x", "csrf_token": token},
        ).status_code
        == 403
    )
    assert _request(engine, others).status == "dispatched"
    # A household outside the member's field (the grid-lead one): refused, not offered.
    with engine.connect() as conn:
        outside = conn.execute(
            select(m.Household.address_id).where(m.Household.id == world.households[1])
        ).scalar_one()
    assert f'value="{outside}"' not in client.get("/my").text
    refused = client.post(
        "/my/visits",
        data={"address_id": outside, "kind": "routine", "csrf_token": token},
    )
    assert refused.status_code == 403
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(m.Visit)).scalar_one() == 0
    # Officials do not use the member's forms.
    client.cookies.clear()
    sign_in(client, official)
    token = csrf_token(client, "/login")
    assert client.get("/my").status_code == 403
    assert (
        client.post(
            f"/my/requests/{others}/start", data={"version": 3, "csrf_token": token}
        ).status_code
        == 403
    )

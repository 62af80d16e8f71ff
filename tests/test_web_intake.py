"""The residents' pages (issue 15, item 5): report a problem at ``/report``, follow it at
``/track/{token}``, find a grid at ``/find`` — public, without a key; the intake's rate limit
per client address (5 an hour, 20 a day) kept in the database with the app's clock.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from geogrid.db import models as m
from tests.requests_factories import (
    IN_FIELD,
    IN_GRID_NO_FIELD,
    World,
    csrf_token,
    make_app,
    new_key,
)

T0 = dt.datetime(2026, 12, 6, 2, 0, tzinfo=dt.UTC)
REPORTER = {"name": "陈报告", "phone": "13912345678"}


class Clock:
    """The app's clock, moved by the test."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += dt.timedelta(**kw)


def _client(db_url: str, *, peer: str = "203.0.113.7", **kw: Any) -> tuple[TestClient, Clock]:
    app = make_app(db_url, **kw)
    client = TestClient(app, client=(peer, 50000))
    clock = Clock(T0)
    app.state.clock = clock
    return client, clock


@pytest.fixture
def web(db_url: str, world: World) -> Iterator[tuple[TestClient, Clock]]:
    client, clock = _client(db_url)
    with client:
        yield client, clock


def _form(client: TestClient, **over: Any) -> dict[str, Any]:
    return {
        "csrf_token": csrf_token(client, "/report"),
        "category": "sewer_blocked",
        "description": "井盖下污水外溢，气味很大",
        "lon": str(IN_FIELD[0]),
        "lat": str(IN_FIELD[1]),
        **REPORTER,
        **over,
    }


def _post(client: TestClient, **over: Any) -> Any:
    return client.post("/report", data=_form(client, **over), follow_redirects=False)


def _requests(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(m.Request).order_by(m.Request.id)).all())


def _attempts(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(m.IntakeAttempt)).scalar_one())


def test_report_form_offers_public_categories_only(
    web: tuple[TestClient, Clock], engine: Engine
) -> None:
    client, _ = web
    page = client.get("/report", headers={"Accept": "text/html"})
    assert page.status_code == 200
    offered = set(re.findall(r'<option value="([a-z_0-9]+)"', page.text))
    with engine.connect() as conn:
        rows = conn.execute(select(m.Category.code, m.Category.programme)).all()
    care = {code for code, programme in rows if programme == "care"}
    assert care and offered and not offered & care
    assert offered == {code for code, programme in rows if programme != "care"}
    # the map: vendored Leaflet, and the grids drawn for finding a place offline
    assert "/maps/assets/leaflet-1.9.4/dist/leaflet.js" in page.text
    assert "441302011099001" in page.text


def test_filed_through_the_form_is_routed_and_shows_its_token(
    web: tuple[TestClient, Clock], engine: Engine, world: World
) -> None:
    client, _ = web
    answer = _post(client)
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    token = re.fullmatch(r"/track/([A-Za-z0-9_-]+)\?filed=1", location)
    assert token
    (row,) = _requests(engine)
    assert row.token == token.group(1)
    assert row.source == "web"
    assert row.grid_id == world.grids["441302011099001"]
    assert row.member_id == world.members["A"]  # the field's holder, at once
    with engine.connect() as conn:
        contact = conn.execute(select(m.RequestContact)).one()
    assert (contact.first_name, contact.phone) == (REPORTER["name"], REPORTER["phone"])
    page = client.get(location)
    assert page.status_code == 200
    assert token.group(1) in page.text
    assert f"/track/{token.group(1)}" in page.text
    assert _attempts(engine) == 1


def test_status_page_shows_progress_and_no_personal_data(
    web: tuple[TestClient, Clock], engine: Engine, world: World
) -> None:
    client, _ = web
    token = _post(client, description="路灯坏了，联系我 13700001111").headers["location"]
    token = token.split("/")[-1].split("?")[0]
    (row,) = _requests(engine)
    official = new_key(engine, "official", community_code="441302011099", name="王主任")
    for action, body in (
        ("register", {}),
        ("dispatch", {}),
        ("start", {}),
        ("resolve", {"note": "已疏通，有问题请拨 13600002222"}),
    ):
        version = client.get(f"/v1/requests/{row.id}", headers={"X-API-Key": official}).json()
        answer = client.post(
            f"/v1/requests/{row.id}/{action}",
            json={"version": version["version"], **body},
            headers={"X-API-Key": official},
        )
        assert answer.status_code == 200, answer.text
    page = client.get(f"/track/{token}", headers={"Accept": "text/html"}, params={"lang": "en"})
    assert page.status_code == 200
    text = page.text
    steps = re.findall(r'data-step="([a-z_]+)"', text)
    assert steps == ["received", "dispatched", "in_progress", "resolved", "closed"]
    done = re.findall(r'class="step (done|todo) step-([a-z_]+)"', text)
    assert dict((s, d) for d, s in done) == {
        "received": "done",
        "dispatched": "done",
        "in_progress": "done",
        "resolved": "done",
        "closed": "todo",
    }
    assert 'id="status">Solved<' in text
    # times in the community's zone (Asia/Shanghai: UTC+8)
    with engine.connect() as conn:
        received = conn.execute(select(m.Request.received_at)).scalar_one()
    local = received.replace(tzinfo=dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert local.strftime("%Y-%m-%d %H:%M") in text
    # no one's personal data: not the reporter's, not the members', not the official's
    for secret in (
        REPORTER["name"],
        REPORTER["phone"],
        "13700001111",
        "13600002222",
        "张小明",
        "张*明",
        "李四",
        "王主任",
    ):
        assert secret not in text, secret
    assert "441302011099001" in text  # the grid is public
    # the place as the public views snap it, never the exact point
    assert f"{IN_FIELD[1]:.7f}" not in text and f"{IN_FIELD[0]:.7f}" not in text


def test_unknown_token_is_404(web: tuple[TestClient, Clock]) -> None:
    client, _ = web
    page = client.get("/track/no-such-token", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert "token" in page.text
    assert (
        client.get("/track?token=abc", follow_redirects=False).headers["location"] == "/track/abc"
    )


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"category": ""}, "category"),
        ({"category": "hardship_subsidy"}, "category"),
        ({"description": "  "}, "description"),
        ({"lon": "", "lat": ""}, "location"),
        ({"lon": "115.5", "lat": "24.5"}, "location"),
        ({"phone": "call me maybe"}, "phone"),
    ],
)
def test_bad_input_shows_the_form_again_and_writes_nothing(
    web: tuple[TestClient, Clock], engine: Engine, over: dict[str, str], field: str
) -> None:
    client, _ = web
    answer = _post(client, **over)
    assert answer.status_code == 422
    assert f'id="{field}-error"' in answer.text
    assert "井盖下污水外溢" in answer.text or "description" in over  # what was typed is kept
    assert _requests(engine) == [] and _attempts(engine) == 0


def test_a_photo_that_is_not_an_image_is_refused(
    web: tuple[TestClient, Clock], engine: Engine
) -> None:
    client, _ = web
    answer = client.post(
        "/report",
        data=_form(client),
        files={"photo": ("x.jpg", b"<svg onload=alert(1)>", "image/jpeg")},
        follow_redirects=False,
    )
    assert answer.status_code == 422 and 'id="photo-error"' in answer.text
    assert _requests(engine) == []


def test_a_photo_is_kept_with_the_request(web: tuple[TestClient, Clock], engine: Engine) -> None:
    from tests.test_access_matrix import PNG

    client, _ = web
    answer = client.post(
        "/report",
        data=_form(client),
        files={"photo": ("p.png", PNG, "image/png")},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    with engine.connect() as conn:
        media = conn.execute(select(m.RequestMedia.content_type, m.RequestMedia.size)).all()
    assert media == [("image/png", len(PNG))]


def test_a_photo_over_the_limit_is_refused(db_url: str, world: World, engine: Engine) -> None:
    client, _ = _client(db_url, max_photo_bytes=1000)
    with client:
        answer = client.post(
            "/report",
            data=_form(client),
            files={"photo": ("big.jpg", b"\xff\xd8\xff" + b"0" * 2000, "image/jpeg")},
            follow_redirects=False,
        )
    assert answer.status_code == 422 and 'id="photo-error"' in answer.text
    assert _requests(engine) == []


def test_csrf_missing_is_403_and_files_nothing(
    web: tuple[TestClient, Clock], engine: Engine
) -> None:
    client, _ = web
    form = _form(client)
    del form["csrf_token"]
    answer = client.post("/report", data=form, follow_redirects=False)
    assert answer.status_code == 403
    answer = client.post("/report", data=_form(client), headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403
    assert _requests(engine) == [] and _attempts(engine) == 0


# --- the rate limit --------------------------------------------------------------------------


def test_five_an_hour_then_429_until_the_hour_has_passed(
    web: tuple[TestClient, Clock], engine: Engine
) -> None:
    client, clock = web
    for _ in range(5):
        assert _post(client).status_code == 303
        clock.advance(minutes=1)
    refused = _post(client)
    assert refused.status_code == 429
    # the first was filed at T0: one more fits at T0 + 1 h, 55 minutes from now
    assert refused.headers["Retry-After"] == str(55 * 60)
    assert "5" in refused.text and "20" in refused.text
    assert "2026-12-06 11:00" in refused.text  # T0 + 1 h in Asia/Shanghai
    assert len(_requests(engine)) == 5 and _attempts(engine) == 5
    clock.advance(minutes=55)
    assert _post(client).status_code == 303
    assert len(_requests(engine)) == 6


def test_twenty_a_day(web: tuple[TestClient, Clock], engine: Engine) -> None:
    client, clock = web
    for i in range(20):
        assert _post(client).status_code == 303, i
        clock.advance(minutes=61)
    refused = _post(client)
    assert refused.status_code == 429
    # 20 × 61 min after T0: the first leaves the day at T0 + 24 h
    assert int(refused.headers["Retry-After"]) == 24 * 3600 - 20 * 61 * 60
    clock.advance(seconds=int(refused.headers["Retry-After"]))
    assert _post(client).status_code == 303
    # pruned: nothing older than a day is kept
    assert _attempts(engine) == 20


def test_the_limit_is_per_address(db_url: str, world: World, engine: Engine) -> None:
    first, clock = _client(db_url, peer="198.51.100.1")
    second, _ = _client(db_url, peer="198.51.100.2")
    second.app.state.clock = clock
    with first, second:
        for _ in range(5):
            assert _post(first).status_code == 303
        assert _post(first).status_code == 429
        assert _post(second).status_code == 303


def test_forwarded_for_only_from_a_trusted_proxy(db_url: str, world: World) -> None:
    spoofed, _ = _client(db_url, peer="198.51.100.9")
    with spoofed:
        for i in range(5):
            forwarded = {"X-Forwarded-For": f"192.0.2.{i}"}
            form = _form(spoofed)
            assert spoofed.post("/report", data=form, headers=forwarded).status_code == 200
        # without a trusted proxy the header is the client's own words: ignored
        form = _form(spoofed)
        refused = spoofed.post(
            "/report", data=form, headers={"X-Forwarded-For": "192.0.2.99"}, follow_redirects=False
        )
        assert refused.status_code == 429
    proxied, _ = _client(db_url, peer="10.0.0.2", http={"trusted_proxies": ["10.0.0.0/8"]})
    with proxied:
        for _ in range(5):
            form = _form(proxied)
            answer = proxied.post(
                "/report",
                data=form,
                headers={"X-Forwarded-For": "192.0.2.50"},
                follow_redirects=False,
            )
            assert answer.status_code == 303
        form = _form(proxied)
        refused = proxied.post(
            "/report", data=form, headers={"X-Forwarded-For": "192.0.2.50"}, follow_redirects=False
        )
        assert refused.status_code == 429
        # another resident behind the same proxy is counted apart
        form = _form(proxied)
        answer = proxied.post(
            "/report", data=form, headers={"X-Forwarded-For": "192.0.2.51"}, follow_redirects=False
        )
        assert answer.status_code == 303


def test_concurrent_posts_cannot_pass_the_limit_together(
    db_url: str, world: World, engine: Engine
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    client, _ = _client(db_url, peer="198.51.100.77")
    with client:
        forms = [_form(client) for _ in range(8)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = list(
                pool.map(
                    lambda f: client.post("/report", data=f, follow_redirects=False).status_code,
                    forms,
                )
            )
    assert sorted(codes) == [303] * 5 + [429] * 3
    assert len(_requests(engine)) == 5


# --- /find ----------------------------------------------------------------------------------


def test_find_a_point_shows_the_grid_and_no_personal_data(web: tuple[TestClient, Clock]) -> None:
    client, _ = web
    page = client.get(
        "/find", params={"lon": IN_GRID_NO_FIELD[0], "lat": IN_GRID_NO_FIELD[1], "lang": "en"}
    )
    assert page.status_code == 200
    assert 'id="grid-code">441302011099001<' in page.text
    assert "李四" not in page.text and "李*" in page.text  # the lead, masked as /v1/lookup does
    assert "grid lead" in page.text
    far = client.get("/find", params={"lon": 115.5, "lat": 24.5})
    assert far.status_code == 200 and 'id="find-error"' in far.text
    bad = client.get("/find", params={"lon": "east", "lat": "1"})
    assert bad.status_code == 422


def test_under_gcj02_tiles_the_map_and_the_tap_are_gcj02(
    db_url: str, world: World, engine: Engine
) -> None:
    """Amap's tiles are drawn in GCJ-02 (~500 m off WGS 84 in China): the outlines are shifted
    to line up with them, and a tap posted in GCJ-02 lands where the resident tapped."""
    from api import create_app
    from geogrid import crs as gcrs
    from geogrid.settings import DatabaseSettings, MapSettings, RequestsSettings, Settings
    from tests.requests_factories import TEST_REQUESTS_SETTINGS

    app = create_app(
        Settings(
            database=DatabaseSettings(database_url=db_url),
            requests=RequestsSettings(**TEST_REQUESTS_SETTINGS),
            maps=MapSettings(map_tiles="amap"),
        )
    )
    with TestClient(app) as client:
        page = client.get("/report")
        assert 'name="crs" value="gcj02"' in page.text
        assert "autonavi.com" in page.text
        lon, lat = gcrs.from_wgs84(IN_FIELD[0], IN_FIELD[1], "gcj02")
        answer = _post(client, lon=str(lon), lat=str(lat), crs="gcj02")
        assert answer.status_code == 303, answer.text
    (row,) = _requests(engine)
    assert row.member_id == world.members["A"] and row.grid_id == world.grids["441302011099001"]

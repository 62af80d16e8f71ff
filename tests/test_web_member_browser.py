"""A grid member's pages in headless Chromium: ``/my`` and ``/members`` at 375 and 1280 px in
Chinese and English, and the member's journey (issue 15, item 8): an official prints a
one-time link, the member opens it on a phone, signs in, starts a request and resolves it with
a JPEG photo over 5 MB, which the page shrinks below the limit before it is sent.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from playwright.sync_api import Browser, Page
from sqlalchemy import Engine, select

from geogrid.db import models as m
from geogrid.settings import RequestsSettings
from tests.browser_support import screenshot_path
from tests.requests_factories import World, file_request, make_app, new_key
from tests.web_support import assert_page_ok, check_page, sign_in, start_server, watch, web_context

pytestmark = pytest.mark.browser
A = "441302011099"
LIMIT = RequestsSettings().max_photo_bytes


def _dispatched(client: TestClient, official: str, description: str) -> int:
    rid = int(file_request(client, official, description=description).json()["id"])
    for action, version in (("register", 1), ("dispatch", 2)):
        answer = client.post(
            f"/v1/requests/{rid}/{action}",
            json={"version": version},
            headers={"X-API-Key": official},
        )
        assert answer.status_code == 200, answer.text
    return rid


@pytest.fixture
def served(db_url: str, engine: Engine, world: World) -> Iterator[tuple[str, list[int], str]]:
    """The app over the requests world with two of member A's requests dispatched: (base
    URL, request ids, an official key of the community)."""
    official = new_key(engine, "official", community_code=A)
    with TestClient(make_app(db_url)) as client:
        ids = [_dispatched(client, official, d) for d in ("井盖松动，有人差点绊倒", "路灯不亮")]
    base, stop = start_server(db_url)
    yield base, ids, official
    stop()


def test_pages(
    browser: Browser, served: tuple[str, list[int], str], engine: Engine, world: World
) -> None:
    base, ids, official = served
    member = new_key(engine, "member", member_id=world.members["A"])
    for lang in ("zh", "en"):
        for width in (1280, 375):
            name = f"web_my_{lang}_{width}"
            with check_page(
                browser, f"{base}/my", lang=lang, width=width, key=member, screenshot=name
            ) as report:
                page = report.page
                shown = page.locator("[data-request]").evaluate_all(
                    "xs => xs.map(x => Number(x.dataset.request))"
                )
                assert sorted(shown) == sorted(ids)
                title = "我的任务" if lang == "zh" else "My work"
                assert page.locator("h1").inner_text() == title
                # The camera input of the resolve form.
                photo = page.locator(f"#photo-{ids[0]}")
                assert photo.get_attribute("capture") == "environment"
                assert photo.get_attribute("accept") == "image/*"
            with check_page(
                browser,
                f"{base}/members",
                lang=lang,
                width=width,
                key=official,
                screenshot=f"web_members_{lang}_{width}",
            ) as report:
                names = report.page.locator(".people h2 [translate=no]").all_inner_texts()
                assert "张小明" not in names and any(n.startswith("张") for n in names)
            button = f"{base}/members/{world.members['A']}/sign-in-link"
            with check_page(
                browser,
                button,
                lang=lang,
                width=width,
                key=official,
                screenshot=f"web_sign_in_link_{lang}_{width}",
            ) as report:
                assert report.page.locator(f"form[action='{button[len(base) :]}']").count() == 1
                assert "张小明" not in report.page.content()


def _big_jpeg(path: Path) -> int:
    """A 6000 × 4500 JPEG of noise at quality 95: far over the 5 MB limit."""
    rng = np.random.default_rng(15)
    pixels = rng.integers(0, 256, size=(4500, 6000, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, "JPEG", quality=95)
    return path.stat().st_size


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=screenshot_path(name), full_page=True)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_member_journey(
    browser: Browser,
    served: tuple[str, list[int], str],
    engine: Engine,
    world: World,
    tmp_path: Path,
    lang: str,
) -> None:
    base, ids, official = served
    rid = ids[0]
    photo = tmp_path / "big.jpg"
    size = _big_jpeg(photo)
    assert size > 5_000_000 and size > LIMIT

    # 1. An official prints a sign-in link for member A.
    with web_context(browser, base, lang=lang, width=1280) as context:
        page = context.new_page()
        sign_in(page, official, next="/members")
        report = watch(page, f"{base}/members")
        page.goto("/members")
        assert_page_ok(report, lang=lang)
        _shot(page, f"journey_member_1_members_{lang}")
        with page.expect_navigation():
            page.click(f"form[action='/members/{world.members['A']}/sign-in-link'] button")
        assert page.locator(".qr svg").count() == 1
        link = page.locator("[data-link]").get_attribute("href")
        assert link and link.startswith(f"{base}/login/link/")
        assert "张小明" not in page.content()
        assert_page_ok(report, lang=lang)
        _shot(page, f"journey_member_2_link_{lang}")

    # 2. The member opens it on a phone (a new browser), confirms, lands on /my.
    with web_context(browser, base, lang=lang, width=375) as context:
        page = context.new_page()
        report = watch(page, link)
        page.goto(link)
        assert_page_ok(report, lang=lang)
        _shot(page, f"journey_member_3_confirm_{lang}")
        with page.expect_navigation():
            page.click("form[action='/login/link'] button[type=submit]")
        page.wait_for_url(f"{base}/my")
        assert page.locator(".signed-in").get_attribute("data-role") == "member"
        assert_page_ok(report, lang=lang)
        _shot(page, f"journey_member_4_my_{lang}")

        # 3. Start the request.
        card = page.locator(f"#request-{rid}")
        with page.expect_navigation():
            card.locator("button[data-action=start]").click()
        assert page.locator(f"#request-{rid}").get_attribute("data-status") == "in_progress"
        _shot(page, f"journey_member_5_started_{lang}")

        # 4. Resolve it with the big photo, which the page shrinks before sending it.
        card = page.locator(f"#request-{rid}")
        card.locator("summary").click()
        card.locator("textarea[name=note]").fill("已更换井盖" if lang == "zh" else "Cover replaced")
        card.locator("input[type=file]").set_input_files(photo)
        form = card.locator("form.resolve")
        page.wait_for_selector(
            f"#request-{rid} form.resolve[data-photo=ready]", state="attached", timeout=60_000
        )
        chosen = card.locator("input[type=file]").evaluate(
            "i => ({size: i.files[0].size, type: i.files[0].type})"
        )
        assert chosen["type"] == "image/jpeg" and 0 < chosen["size"] <= LIMIT
        assert int(form.get_attribute("data-photo-bytes") or 0) == chosen["size"]
        assert_page_ok(report, lang=lang)
        _shot(page, f"journey_member_6_photo_{lang}")
        with page.expect_navigation(timeout=60_000):
            card.locator("button[data-action=resolve]").click()
        assert page.locator(f"#request-{rid}").count() == 0
        assert page.locator("[role=status]").count() == 1
        assert_page_ok(report, lang=lang)
        _shot(page, f"journey_member_7_resolved_{lang}")

    # The request is resolved with one photo, within the limits, as the page sent it.
    with engine.connect() as conn:
        status = conn.execute(select(m.Request.status).where(m.Request.id == rid)).scalar_one()
        media = conn.execute(select(m.RequestMedia).where(m.RequestMedia.request_id == rid)).all()
    assert status == "resolved"
    assert len(media) == 1
    stored = media[0]
    assert stored.content_type == "image/jpeg" and len(stored.data) <= LIMIT
    assert len(stored.data) == chosen["size"]
    with Image.open(io.BytesIO(stored.data)) as image:
        assert max(image.size) <= 2560
        assert image.size[0] / image.size[1] == pytest.approx(6000 / 4500, rel=0.01)

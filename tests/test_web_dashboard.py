"""The officials' dashboard (``GET /dashboard``) and its exports (``GET /dashboard/export``):
the article's figures on the demo, the period form, the KPI tables and exports against
``GET /v1/kpis``, and who may see which community's (both backends)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from shapely.geometry import MultiPolygon, box
from sqlalchemy import Engine, update

from geogrid.db import models as m
from geogrid.db import queries as q
from geogrid.demo.generate import COMMUNITY_CODE
from geogrid.requests.dashboard import LIST_ROWS
from tests.requests_factories import World, file_request, make_app, new_key, sign_in

ARTICLE = {"from": "2017-07-01", "to": "2018-04-18"}
#: Each exported KPI table and the ``group_by`` of GET /v1/kpis it shows.
TABLES = {"grids": "grid", "branches": "branch", "members": "member", "categories": "category"}


def figure(page: str, name: str) -> str:
    found = re.search(rf'data-figure="{name}"[^>]*><span class="value">([^<]*)<', page)
    assert found, f"no figure {name}"
    return found.group(1)


@pytest.fixture
def demo_client(demo_engine: Engine) -> Iterator[TestClient]:
    """The app over the demo, signed in as an official of the demo community."""
    url = demo_engine.url.render_as_string(hide_password=False)
    with TestClient(make_app(url)) as client:
        key = new_key(demo_engine, "official", community_code=COMMUNITY_CODE)
        assert sign_in(client, key).status_code == 303
        client.headers["X-Test-Key"] = key  # kept for the /v1 calls below
        yield client


def api_kpis(client: TestClient, group_by: str | None = None, **period: str) -> dict[str, Any]:
    params = {**period, "community": COMMUNITY_CODE}
    if group_by:
        params["group_by"] = group_by
    r = client.get("/v1/kpis", params=params, headers={"X-API-Key": client.headers["X-Test-Key"]})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_the_articles_period_shows_86_84_and_97_7(demo_client: TestClient) -> None:
    page = demo_client.get("/dashboard", params=ARTICLE)
    assert page.status_code == 200, page.text
    text = page.text
    assert (figure(text, "received"), figure(text, "resolved")) == ("86", "84")
    assert figure(text, "resolution_rate") == "97.7%"
    api = api_kpis(demo_client, **ARTICLE)["total"]
    assert figure(text, "closure_rate") == f"{api['closure_rate'] * 100:.1f}%"
    assert figure(text, "satisfaction_rate") == f"{api['satisfaction_rate'] * 100:.1f}%"
    summary = demo_client.get("/v1/summary", params={**ARTICLE, "community": COMMUNITY_CODE})
    c = summary.json()["communities"][0]
    assert figure(text, "grids") == str(c["grids"])
    assert figure(text, "households") == f"{c['households']:,}"
    # The maps follow the community, the period and the official audience.
    assert f"/maps/coverage?community={COMMUNITY_CODE}&amp;audience=official" in text
    assert "from=2017-07-01&amp;to=2018-04-18" in text
    # Charts: ECharts from the service, their data as JSON in the page, no inline handlers.
    assert 'src="/maps/assets/echarts-6.1.0/dist/echarts.min.js"' in text
    assert 'type="application/json" id="dashboard-charts"' in text
    assert not re.search(r"\son[a-z]+=", text)


def test_the_period_form_changes_the_figures(demo_client: TestClient) -> None:
    short = {"from": "2017-07-01", "to": "2017-09-30"}
    page = demo_client.get("/dashboard", params=short).text
    api = api_kpis(demo_client, **short)["total"]
    assert api["received"] < 86
    assert figure(page, "received") == str(api["received"])
    assert figure(page, "resolved") == str(api["resolved"])
    assert 'value="2017-09-30"' in page
    # A preset link carries its own dates; an empty form field is "no date", not an error.
    assert demo_client.get("/dashboard", params={"from": "", "to": ""}).status_code == 200
    bad = demo_client.get("/dashboard", params={"from": "2018-01-01", "to": "2017-01-01"})
    assert bad.status_code == 422


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_kpi_tables_and_exports_match_the_api(demo_client: TestClient, lang: str) -> None:
    page = demo_client.get("/dashboard", params={**ARTICLE, "lang": lang}).text
    for table, group_by in TABLES.items():
        api = api_kpis(demo_client, group_by, **ARTICLE)
        query = {**ARTICLE, "table": table, "lang": lang}
        # The page's table: one row per group and the total.
        body = re.search(rf'<table class="kpis" id="table-{table}">(.*?)</table>', page, re.S)
        assert body and body.group(1).count("<tr") == len(api["rows"]) + 2  # + header, total
        got = demo_client.get("/dashboard/export", params={**query, "format": "csv"})
        assert got.status_code == 200 and got.content.startswith(b"\xef\xbb\xbf")
        lines = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
        head = lines[0]
        if lang == "zh":
            assert {"受理诉求", "解决率", "结案率", "按期结案率", "满意率"} <= set(head)
            assert ("网格编码" in head) == (table == "grids")
        else:
            assert {"Requests received", "Closure rate", "On-time rate"} <= set(head)
        received = head.index("受理诉求" if lang == "zh" else "Requests received")
        rate = head.index("结案率" if lang == "zh" else "Closure rate")
        rows = lines[1:]
        assert len(rows) == len(api["rows"]) + 1
        for row, want in zip(rows, [*api["rows"], api["total"]], strict=True):
            assert int(row[received]) == want["received"]
            wanted = want["closure_rate"]
            assert row[rate] == ("" if wanted is None else f"{wanted * 100:.1f}%")
        if table == "categories" and lang == "en":  # the catalogue's English names
            assert not any(re.search(r"[\u4e00-\u9fff]", row[0]) for row in rows)
        if table == "members":  # names masked for the official audience
            assert all("*" in row[0] for row in rows[:-1] if row[0])
        xlsx = demo_client.get("/dashboard/export", params={**query, "format": "xlsx"})
        assert xlsx.status_code == 200
        sheet = load_workbook(io.BytesIO(xlsx.content)).active
        assert sheet is not None
        values = list(sheet.iter_rows(values_only=True))
        assert list(values[0]) == head
        for row, want in zip(values[1:], [*api["rows"], api["total"]], strict=True):
            assert row[received] == want["received"]
            assert row[rate] == want["closure_rate"]
    assert api_kpis(demo_client, **ARTICLE)["total"]["received"] == 86


def test_lists_link_to_request_pages(demo_client: TestClient) -> None:
    page = demo_client.get("/dashboard").text
    key = {"X-API-Key": demo_client.headers["X-Test-Key"]}
    for name, params in (
        ("overdue", {"status": "open", "overdue": "true"}),
        ("escalated", {"status": "escalated"}),
    ):
        found = demo_client.get("/v1/requests", params={**params, "limit": 500}, headers=key)
        body = found.json()
        assert figure(page, name) == f"{body['total']:,}"
        listed = re.search(rf'id="list-{name}">(.*?)</table>', page, re.S)
        ids = (
            [int(i) for i in re.findall(r'href="/requests/(\d+)"', listed.group(1))]
            if listed
            else []
        )
        assert len(ids) == min(body["total"], LIST_ROWS)
        assert set(ids) <= {item["id"] for item in body["items"]}
        export = demo_client.get("/dashboard/export", params={"table": name, "format": "csv"})
        lines = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
        assert lines[0][0] == "编号" and len(lines) - 1 == min(body["total"], 500)
        assert {int(row[0]) for row in lines[1:]} >= set(ids)
        if name == "escalated" and body["total"]:
            # In English the departments' English names (the catalogue has them all).
            params = {"table": name, "format": "csv", "lang": "en"}
            english = demo_client.get("/dashboard/export", params=params)
            rows = list(csv.DictReader(io.StringIO(english.content.decode("utf-8-sig"))))
            assert all(r["Department"] for r in rows)
            assert not any(re.search(r"[\u4e00-\u9fff]", r["Department"]) for r in rows)


# --- who sees what --------------------------------------------------------------------------

B = "441302011098"


def _community_b(engine: Engine) -> None:
    with engine.begin() as conn:
        q.insert_returning_ids(
            conn,
            m.Community,
            [
                {
                    "code": B,
                    "name": "另一社区",
                    "subdistrict_code": "441302011",
                    "district_code": "441302",
                    "boundary": q.geom_value(MultiPolygon([box(100.0, 30.0, 100.1, 30.1)])),
                    "created_at": m.utcnow(),
                }
            ],
        )
        conn.execute(
            update(m.Community)
            .where(m.Community.code != B)
            .values(subdistrict_code="441302011", district_code="441302")
        )


def _browser(client: TestClient, engine: Engine, role: str, **kw: Any) -> TestClient:
    client.cookies.clear()
    assert sign_in(client, new_key(engine, role, **kw)).status_code == 303
    return client


def test_scoping(db_url: str, engine: Engine, world: World) -> None:
    _community_b(engine)
    a = "441302011099"
    with TestClient(make_app(db_url)) as client:
        public = new_key(engine, "public", community_code=a)
        assert file_request(client, public).status_code == 201
        # B's official sees B by default, and neither A's dashboard nor its exports.
        _browser(client, engine, "official", community_code=B)
        page = client.get("/dashboard")
        assert page.status_code == 200 and "另一社区" in page.text
        assert figure(page.text, "received") == "0"
        assert "area" not in re.findall(r'<select id="(\w+)"', page.text)
        assert client.get("/dashboard", params={"community": a}).status_code == 404
        assert client.get("/dashboard", params={"area": f"community:{a}"}).status_code == 404
        assert client.get("/dashboard", params={"subdistrict": "441302011"}).status_code == 403
        for table in ("grids", "overdue", "members"):
            got = client.get("/dashboard/export", params={"table": table, "community": a})
            assert got.status_code == 404
        # A's official sees A's request, and only A.
        _browser(client, engine, "official", community_code=a)
        page = client.get("/dashboard")
        assert figure(page.text, "received") == "1" and "另一社区" not in page.text
        # A subdistrict's key chooses among its communities, and sees both together.
        _browser(client, engine, "official", subdistrict_code="441302011")
        page = client.get("/dashboard")
        assert f'value="community:{B}"' in page.text and f'value="community:{a}"' in page.text
        assert 'value="subdistrict:441302011" selected' in page.text
        assert figure(page.text, "received") == "1"
        assert client.get("/dashboard", params={"area": f"community:{B}"}).status_code == 200
        # An unscoped admin may see every community together, or either.
        _browser(client, engine, "admin")
        page = client.get("/dashboard", params={"area": "all"})
        assert page.status_code == 200 and figure(page.text, "received") == "1"
        assert client.get("/dashboard", params={"area": "nowhere"}).status_code == 422


@pytest.mark.parametrize("role", ["member", "department", "planner"])
def test_other_roles_are_refused(db_url: str, engine: Engine, world: World, role: str) -> None:
    extra: dict[str, Any] = {"community_code": "441302011099"}
    if role == "member":
        extra["member_id"] = world.members["A"]
    if role == "department":
        extra["department_code"] = "urban_management"
    with TestClient(make_app(db_url)) as client:
        _browser(client, engine, role, **extra)
        for path in ("/dashboard", "/dashboard/export?table=grids"):
            got = client.get(path, headers={"Accept": "text/html"})
            assert got.status_code == 403, path


def test_anonymous_is_sent_to_sign_in(db_url: str, world: World) -> None:
    with TestClient(make_app(db_url)) as client:
        got = client.get("/dashboard?from=2017-07-01", follow_redirects=False)
        assert got.status_code == 303
        assert got.headers["location"] == "/login?next=/dashboard%3Ffrom%3D2017-07-01"
        export = client.get("/dashboard/export?table=grids", follow_redirects=False)
        assert export.status_code == 303 and export.headers["location"].startswith("/login?next=")

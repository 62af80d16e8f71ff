"""The request pages (``/requests``, ``/requests/{id}``) over both backends: the list gives the
ids ``GET /v1/requests`` gives with the same filters and scope, pages and orders; the detail
page shows the timeline, the routing and the escalations; each action through its form
changes the request as ``POST /v1/requests/{id}/{action}`` would, only with the CSRF token
and the version seen; refusals are pages with the reason (docs/api.md, "Web workbench")."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import MultiPolygon, box
from sqlalchemy import Engine, func, insert, select, update

from geogrid.db import models as m
from geogrid.db import queries as q
from geogrid.privacy import mask_name
from tests.requests_factories import (
    IN_GRID_NO_FIELD,
    IN_VACANT_FIELD,
    JUST_OUTSIDE,
    World,
    csrf_token,
    file_request,
    make_app,
    new_key,
    sign_in,
)

HTML = {"Accept": "text/html"}
OTHER = "441302011098"  # another community
URBAN = "urban_management"
ROW_ID = re.compile(r'<tr data-id="(\d+)"')


def _h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


@pytest.fixture
def app(db_url: str, world: World) -> Any:
    return make_app(db_url)


@pytest.fixture
def api(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def keys(engine: Engine, world: World) -> dict[str, str]:
    return {
        "official": new_key(engine, "official"),
        "member": new_key(engine, "member", member_id=world.members["A"]),
        "member_c": new_key(engine, "member", member_id=world.members["C"]),
        "department": new_key(engine, "department", department_code="urban_management"),
        "public": new_key(engine, "public"),
    }


def browser(app: Any, key: str | None) -> TestClient:
    """A browser: its own cookies, signed in with ``key`` through the form (or anonymous)."""
    c = TestClient(app, headers=HTML)
    if key is not None:
        assert sign_in(c, key).status_code == 303
    return c


def act(api: TestClient, key: str, rid: int, action: str, **body: Any) -> dict[str, Any]:
    version = api.get(f"/v1/requests/{rid}", headers=_h(key)).json()["version"]
    r = api.post(f"/v1/requests/{rid}/{action}", json={"version": version, **body}, headers=_h(key))
    assert r.status_code == 200, r.text
    return dict(r.json())


def filed(api: TestClient, key: str, n: int = 1, **body: Any) -> list[int]:
    out = []
    for _ in range(n):
        r = file_request(api, key, **body)
        assert r.status_code == 201, r.text
        out.append(int(r.json()["id"]))
    return out


def ids_of(page: str) -> list[int]:
    return [int(i) for i in ROW_ID.findall(page)]


def api_ids(api: TestClient, key: str, query: str) -> list[int]:
    r = api.get(f"/v1/requests?limit=500&{query}", headers=_h(key))
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["items"]]


@pytest.fixture
def cases(api: TestClient, keys: dict[str, str], engine: Engine) -> dict[str, int]:
    """Requests in several states: received, dispatched (member A), escalated to urban
    management, resolved, one in another grid (member C), one outside every grid, one
    overdue."""
    official = keys["official"]
    rid = dict(
        zip(
            ["received", "dispatched", "escalated", "resolved", "overdue"],
            filed(api, official, 5),
            strict=True,
        )
    )
    rid["other_grid"] = filed(api, official, lon=IN_VACANT_FIELD[0], lat=IN_VACANT_FIELD[1])[0]
    rid["grid_lead"] = filed(
        api, official, category="street_light", lon=IN_GRID_NO_FIELD[0], lat=IN_GRID_NO_FIELD[1]
    )[0]
    rid["outside"] = filed(api, official, lon=JUST_OUTSIDE[0], lat=JUST_OUTSIDE[1])[0]
    for name in ("dispatched", "escalated", "resolved", "overdue", "other_grid", "grid_lead"):
        act(api, official, rid[name], "register")
        act(api, official, rid[name], "dispatch")
    act(
        api,
        official,
        rid["escalated"],
        "escalate",
        note="需要城管处理",
        department="urban_management",
    )
    act(api, official, rid["resolved"], "resolve", note="已疏通")
    with engine.begin() as conn:
        conn.execute(
            update(m.Request)
            .where(m.Request.id == rid["overdue"])
            .values(due_at=m.utcnow().replace(year=2020))
        )
    return rid


MINE = ("received", "dispatched", "escalated", "resolved", "overdue")  # member A's
FILTERS = [
    "",
    "status=open",
    "status=escalated",
    "status=received,resolved",
    "category=street_light",
    "grid=441302011099002",
    "overdue=true",
    "overdue=false",
    "department=urban_management",
    "flag=outside_grids",
    "from=2020-01-01&to=2099-12-31",
    "from=2099-01-01",
    "status=open&grid=441302011099001",
]


@pytest.mark.parametrize("who", ["official", "member", "department"])
def test_list_gives_the_ids_of_the_api(
    app: Any, api: TestClient, keys: dict[str, str], cases: dict[str, int], who: str
) -> None:
    page = browser(app, keys[who])
    seen: set[int] = set()
    for query in FILTERS:
        r = page.get(f"/requests?{query}")
        assert r.status_code == 200, (query, r.text[:300])
        want = api_ids(api, keys[who], query)
        assert ids_of(r.text) == want, query
        seen |= set(want)
    # Scoped as the API: the official sees all, a member its own, a department what is
    # escalated to it (the comparison above would pass on two empty lists).
    expected = {
        "official": set(cases.values()),
        "member": {
            cases[n] for n in ("received", "dispatched", "escalated", "resolved", "overdue")
        },
        "department": {cases["escalated"]},
    }[who]
    assert seen == expected


def test_list_filters_as_a_plain_form_and_with_htmx(
    app: Any, keys: dict[str, str], cases: dict[str, int]
) -> None:
    page = browser(app, keys["official"])
    r = page.get("/requests")
    start = r.text.index('<form class="filters')
    form = r.text[start : r.text.index("</form>", start)]
    # A plain GET form (works without JavaScript), and htmx's live filtering on change.
    assert 'method="get" action="/requests"' in form and 'hx-push-url="true"' in form
    assert "/maps/assets/htmx.org-2.0.11/dist/htmx.min.js" in r.text
    # What a form sends for fields left alone: empty values filter nothing.
    empty = "status=&category=&grid=&department=&from=&to=&sort=received"
    assert ids_of(page.get(f"/requests?{empty}").text) == ids_of(r.text)
    r = page.get(f"/requests?{empty.replace('status=&', 'status=escalated&')}")
    assert ids_of(r.text) == [cases["escalated"]]
    assert 'value="escalated" selected' in r.text
    # Bad input is a page saying what, not JSON.
    r = page.get("/requests?status=lost")
    assert r.status_code == 422 and "text/html" in r.headers["content-type"]
    assert "unknown status" in r.text


def test_paging_and_sorting(
    app: Any, api: TestClient, keys: dict[str, str], cases: dict[str, int]
) -> None:
    official = keys["official"]
    more = filed(api, official, 22)  # 8 + 22 = 30 requests: two pages of 25
    page = browser(app, official)
    every = api_ids(api, official, "")
    assert len(every) == 30
    first = page.get("/requests")
    assert ids_of(first.text) == every[:25]
    assert 'rel="next" href="/requests?offset=25"' in first.text
    assert 'rel="prev"' not in first.text
    second = page.get("/requests?offset=25")
    assert ids_of(second.text) == every[25:]
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text
    assert "26–30" in second.text  # "Showing 26–30 of 30"
    # Filters are kept in the pages' links.
    assert 'href="/requests?status=open&amp;offset=25"' in page.get("/requests?status=open").text

    items = api.get("/v1/requests?limit=500", headers=_h(official)).json()["items"]
    by_due = sorted(items, key=lambda i: (i["due_at"] is None, i["due_at"] or "", i["id"]))
    got = ids_of(page.get("/requests?sort=due").text) + ids_of(
        page.get("/requests?sort=due&offset=25").text
    )
    assert got == [i["id"] for i in by_due]
    assert got[0] == cases["overdue"]  # the one past its deadline comes first
    order = [s.value for s in m.RequestStatus]
    by_status = sorted(items, key=lambda i: (order.index(i["status"]), -i["id"]))
    got = ids_of(page.get("/requests?sort=status").text)
    assert got == [i["id"] for i in by_status][:25]
    assert set(more) <= set(every)
    assert page.get("/requests?sort=colour").status_code == 422


def test_detail_page_shows_timeline_routing_and_escalations(
    app: Any,
    api: TestClient,
    keys: dict[str, str],
    cases: dict[str, int],
    engine: Engine,
    world: World,
) -> None:
    with engine.begin() as conn:
        branch = conn.execute(
            insert(m.Branch)
            .values(community_id=world.community_id, name="第一党支部")
            .returning(m.Branch.id)
        ).scalar_one()
        conn.execute(
            update(m.Member).where(m.Member.id == world.members["A"]).values(branch_id=branch)
        )
    rid = cases["escalated"]
    r = browser(app, keys["official"]).get(f"/requests/{rid}?lang=en")
    assert r.status_code == 200, r.text[:500]
    text = r.text
    view = api.get(f"/v1/requests/{rid}", headers=_h(keys["official"])).json()
    # The timeline: every transition, in order, with its note.
    actions = re.findall(r'<li data-action="([a-z_]+)"', text)
    assert actions == [e["action"] or "receive" for e in view["history"]]
    assert actions == ["receive", "register", "dispatch", "escalate"]
    assert "需要城管处理" in text
    # The routing: grid, field, member (masked), branch.
    routing = text[text.index('id="h-routing"') : text.index('id="h-place"')]
    assert "441302011099001" in routing and "F1" in routing
    assert "张*明" in routing and "张小明" not in text
    assert "第一党支部" in routing
    # The escalation: to which department, when, why.
    escalations = text[text.index('class="escalations"') :]
    escalations = escalations[: escalations.index("</table>")]
    assert "Urban management" in escalations and "需要城管处理" in escalations
    local = view["history"][-1]["at"][:16].replace("T", " ")
    assert local in escalations  # in the community's zone, as the API gives it
    # The place on a small map, Leaflet from the service.
    assert 'id="request-map"' in text and "/maps/assets/leaflet-1.9.4/dist/leaflet.js" in text
    assert f'data-lat="{view["location"]["lat"]}"' in text


def test_photos_are_shown_from_the_media_route(
    app: Any, api: TestClient, keys: dict[str, str]
) -> None:
    import base64

    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5E"
        "rkJggg=="
    )
    photo = {"data": base64.b64encode(png).decode(), "content_type": "image/png"}
    rid = filed(api, keys["official"], photos=[photo])[0]
    page = browser(app, keys["member"])
    r = page.get(f"/requests/{rid}")
    media = re.findall(r'<img src="(/v1/media/\d+)"', r.text)
    assert len(media) == 1
    # The session's browser reads it through the media route, with its rights.
    got = page.get(media[0])
    assert got.status_code == 200 and got.content == png


def _form(page: TestClient, rid: int, action: str) -> dict[str, str]:
    """The hidden fields of the action's form on the page."""
    text = page.get(f"/requests/{rid}").text
    start = text.find(f'action="/requests/{rid}/{action}"')
    assert start >= 0, f"no {action} form"
    form = text[start : text.index("</form>", start)]
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))


def _post(page: TestClient, rid: int, action: str, **fields: str) -> Any:
    data = {**_form(page, rid, action), **fields}
    return page.post(f"/requests/{rid}/{action}", data=data, follow_redirects=False)


def _state(api: TestClient, key: str, rid: int) -> dict[str, Any]:
    return dict(api.get(f"/v1/requests/{rid}", headers=_h(key)).json())


def test_dispatch_offers_the_communitys_members_masked(
    app: Any, api: TestClient, keys: dict[str, str], world: World
) -> None:
    official = browser(app, keys["official"])
    rid = filed(api, keys["official"])[0]
    assert _post(official, rid, "register").status_code == 303
    text = official.get(f"/requests/{rid}").text
    start = text.index('id="dispatch-member"')
    picker = text[start : text.index("</select>", start)]
    options = re.findall(r'<option value="(\d+)"[^>]*>([^<]*)</option>', picker)
    assert {int(v) for v, _ in options} == set(world.members.values())
    labels = dict(options)
    assert labels[str(world.members["A"])].startswith(mask_name("张小明"))
    assert "张小明" not in picker and "13800000001" not in picker
    grid = _state(api, keys["official"], rid)["assignment"]["grid_code"]
    leads = {"441302011099001": "B", "441302011099002": "C"}
    if grid in leads:  # the lead of the request's grid comes first, with the grid's code
        assert options[0][0] == str(world.members[leads[grid]]) and grid in options[0][1]
    # Choosing one dispatches to that member.
    r = _post(official, rid, "dispatch", member_id=str(world.members["C"]))
    assert r.status_code == 303, r.text[:500]
    assert _state(api, keys["official"], rid)["assignment"]["member_id"] == world.members["C"]


def test_each_action_through_its_form(
    app: Any, api: TestClient, keys: dict[str, str], world: World
) -> None:
    """The whole workflow through the pages, by whoever may take each step."""
    official, member, dept = (browser(app, keys[k]) for k in ("official", "member", "department"))
    rid = filed(api, keys["official"])[0]
    a, b = str(world.members["A"]), str(world.members["B"])
    steps = [
        (official, "register", {}, "registered"),
        (official, "dispatch", {}, "dispatched"),
        (member, "start", {"note": "到现场"}, "in_progress"),
        (member, "escalate", {"note": "管道破裂", "department": "urban_management"}, "escalated"),
        (dept, "send_back", {"note": "请社区先处理"}, "dispatched"),
        (
            official,
            "reassign",
            {"note": "换人", "member_id": b},
            "dispatched",
        ),
        (
            official,
            "reassign",
            {"note": "换回", "member_id": a},
            "dispatched",
        ),
        (member, "escalate", {"note": "再次上报", "department": URBAN}, "escalated"),
        (dept, "resolve", {"note": "已修复"}, "resolved"),
        (official, "evaluate", {"satisfaction": "satisfied", "comment": "好"}, "resolved"),
        (official, "close", {}, "closed"),
        (official, "reopen", {"note": "居民反映又堵了"}, "dispatched"),
    ]
    for page, action, fields, status in steps:
        before = _state(api, keys["official"], rid)
        r = _post(page, rid, action, **fields)
        assert r.status_code == 303, (action, r.text[:500])
        if action == "send_back":  # no longer escalated to the department: back to its list
            assert r.headers["location"] == f"/requests?done={action}&request={rid}"
        else:
            assert r.headers["location"] == f"/requests/{rid}?done={action}#done"
        after = _state(api, keys["official"], rid)
        assert after["status"] == status and after["version"] == before["version"] + 1, action
        event = after["history"][-1]
        assert event["action"] == action
        assert event["note"] == (fields.get("note") or fields.get("comment")), action
        confirmation = page.get(r.headers["location"]).text
        assert 'id="done"' in confirmation, action
    history = _state(api, keys["official"], rid)["history"]
    assert history[4]["details"] == {"department": "urban_management"}
    assert _state(api, keys["official"], rid)["assignment"]["member_id"] == world.members["A"]
    # A second request: rejected by an official.
    other = filed(api, keys["official"])[0]
    assert _post(official, other, "reject", note="重复诉求").status_code == 303
    assert _state(api, keys["official"], other)["status"] == "rejected"


def test_offered_actions_follow_role_and_status(
    app: Any, engine: Engine, keys: dict[str, str], cases: dict[str, int]
) -> None:
    def offered(key: str, rid: int) -> list[str]:
        text = browser(app, key).get(f"/requests/{rid}").text
        return re.findall(r'<details class="action card" data-action="([a-z_]+)"', text)

    assert offered(keys["official"], cases["received"]) == ["register", "reject", "reassign"]
    assert offered(keys["member"], cases["received"]) == []
    assert offered(keys["member"], cases["dispatched"]) == ["start", "escalate", "resolve"]
    # While escalated, the member may not resolve; the department resolves or sends back.
    assert offered(keys["member"], cases["escalated"]) == []
    assert offered(keys["department"], cases["escalated"]) == ["send_back", "resolve"]
    assert offered(new_key(engine, "planner"), cases["dispatched"]) == []


def test_csrf_token_is_required(
    app: Any, api: TestClient, keys: dict[str, str], cases: dict[str, int]
) -> None:
    page = browser(app, keys["official"])
    rid = cases["received"]
    form = _form(page, rid, "register")
    for token in (None, "x" * 43):
        data = {"version": form["version"]}
        if token:
            data["csrf_token"] = token
        r = page.post(f"/requests/{rid}/register", data=data, follow_redirects=False)
        assert r.status_code == 403, r.text[:300]
        assert "text/html" in r.headers["content-type"]
    assert _state(api, keys["official"], rid)["status"] == "received"
    assert _state(api, keys["official"], rid)["version"] == 1


def test_stale_version_is_a_409_page_keeping_what_was_typed(
    app: Any, api: TestClient, keys: dict[str, str], cases: dict[str, int], engine: Engine
) -> None:
    rid = cases["dispatched"]
    page = browser(app, keys["member"])
    form = _form(page, rid, "escalate")  # the member opens the page …
    act(api, keys["official"], rid, "start", note="同时有人处理")  # … someone acts first
    events = _events(engine, rid)
    data = {**form, "note": "我写的上报理由", "department": "civil_affairs"}
    r = page.post(f"/requests/{rid}/escalate", data=data, follow_redirects=False)
    assert r.status_code == 409
    assert "有人已经处理了这条诉求" in r.text  # someone else acted on this request; reload
    assert "我写的上报理由" in r.text  # what was typed is still in the form
    assert re.search(r'value="civil_affairs" selected', r.text)
    # Nothing changed, and the page offers the new version.
    now = _state(api, keys["official"], rid)
    assert now["status"] == "in_progress" and _events(engine, rid) == events
    assert f'name="version" value="{now["version"]}"' in r.text
    en = page.post(f"/requests/{rid}/escalate?lang=en", data=data, follow_redirects=False)
    assert "Someone else acted on this request; reload" in en.text


def _events(engine: Engine, rid: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(m.RequestEvent)
                .where(m.RequestEvent.request_id == rid)
            ).scalar_one()
        )


def test_refused_actions_are_pages_with_the_reason(
    app: Any, api: TestClient, keys: dict[str, str], cases: dict[str, int], engine: Engine
) -> None:
    page = browser(app, keys["member"])
    rid = cases["dispatched"]
    # A note is required: 422, the page says so.
    r = _post(page, rid, "escalate", note="  ")
    assert r.status_code == 422 and "text/html" in r.headers["content-type"]
    assert "这一操作需要填写说明" in r.text
    # An action the role may not take: 403 page.
    r = _post(browser(app, keys["official"]), rid, "start")  # allowed: a control
    assert r.status_code == 303
    version = _state(api, keys["official"], rid)["version"]
    r = page.post(
        f"/requests/{rid}/close",
        data={"csrf_token": _form(page, rid, "resolve")["csrf_token"], "version": str(version)},
        follow_redirects=False,
    )
    assert r.status_code == 403 and "text/html" in r.headers["content-type"]
    assert _state(api, keys["official"], rid)["version"] == version
    # An action not possible from the status (the form of a page opened earlier): 409, naming
    # the status it is in now, and nothing changed.
    official = browser(app, keys["official"])
    received = cases["received"]
    data = {**_form(official, received, "register"), "note": "核查通过"}
    r = official.post(f"/requests/{received}/close?lang=en", data=data, follow_redirects=False)
    assert r.status_code == 409
    assert "This action is not possible any more: the request is now “received”" in r.text
    assert "核查通过" in r.text  # kept: the close form is not offered, so shown apart
    assert _state(api, keys["official"], received)["version"] == 1


def test_another_members_request_is_403(
    app: Any, keys: dict[str, str], cases: dict[str, int]
) -> None:
    page = browser(app, keys["member_c"])  # member C: its grid's request only
    assert page.get(f"/requests/{cases['other_grid']}").status_code == 200
    rid = cases["dispatched"]  # member A's
    assert page.get(f"/requests/{rid}").status_code == 403
    token = csrf_token(page, f"/requests/{cases['other_grid']}")
    r = page.post(
        f"/requests/{rid}/start", data={"csrf_token": token, "version": "3"}, follow_redirects=False
    )
    assert r.status_code == 403


def test_another_communitys_request_is_refused(
    app: Any, engine: Engine, keys: dict[str, str], cases: dict[str, int]
) -> None:
    with engine.begin() as conn:
        q.insert_returning_ids(
            conn,
            m.Community,
            [
                {
                    "code": OTHER,
                    "name": "另一社区",
                    "boundary": q.geom_value(MultiPolygon([box(100.0, 30.0, 100.1, 30.1)])),
                    "created_at": m.utcnow(),
                }
            ],
        )
    for role in ("official", "admin"):
        page = browser(app, new_key(engine, role, community_code=OTHER))
        assert page.get(f"/requests/{cases['dispatched']}").status_code in (403, 404)
        assert ids_of(page.get("/requests").text) == []
        token = csrf_token(page, "/requests")
        r = page.post(
            f"/requests/{cases['received']}/register",
            data={"csrf_token": token, "version": "1"},
            follow_redirects=False,
        )
        assert r.status_code in (403, 404)


def test_anonymous_is_sent_to_sign_in(app: Any, cases: dict[str, int]) -> None:
    page = browser(app, None)
    rid = cases["received"]
    r = page.get(f"/requests/{rid}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/login?next=/requests/{rid}"
    r = page.get("/requests?status=open", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/requests")
    public = browser(app, None)
    assert public.get("/requests/999999", follow_redirects=False).status_code == 303

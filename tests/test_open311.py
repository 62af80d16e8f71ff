"""Open311 GeoReport v2 on both backends, read through a real client library (``georeport``
from PyPI, which uses ``requests`` against a live server on 127.0.0.1) in XML and JSON; POST
form-encoded as the spec defines (no installable client can POST)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
from georeport import GeoReport
from sqlalchemy import Engine, func, select

from geogrid.catalogue import ensure_default_catalogue
from geogrid.db import models as m
from geogrid.privacy import snap
from tests.lookup_factories import make_lookup_community
from tests.requests_factories import (
    IN_FIELD,
    IN_VACANT_FIELD,
    JUST_OUTSIDE,
    World,
    build_world,
    live_server,
    make_app,
    new_key,
    set_attributes,
)

SEVERITY = [
    {
        "code": "severity",
        "datatype": "singlevaluelist",
        "required": True,
        "description": "How bad is it?",
        "values": [{"key": "low", "name": "不严重"}, {"key": "high", "name": "严重"}],
    },
    {"code": "floors", "datatype": "number", "required": False, "description": "Floors hit"},
]


@pytest.fixture
def world(engine: Engine) -> World:
    w = build_world(engine)
    set_attributes(engine, "sewer_blocked", SEVERITY)
    return w


@pytest.fixture
def server(db_url: str, world: World) -> Iterator[str]:
    with live_server(make_app(db_url)) as url:
        yield url


@pytest.fixture
def key(engine: Engine, world: World) -> str:
    return new_key(engine, "public", name="open311 app")


def _post(server: str, fmt: str, data: dict[str, Any]) -> httpx.Response:
    """A spec-conformant POST: application/x-www-form-urlencoded."""
    return httpx.post(f"{server}/open311/v2/requests.{fmt}", data=data)


def _form(key: str, **extra: Any) -> dict[str, Any]:
    return {
        "api_key": key,
        "service_code": "sewer_blocked",
        "lat": str(IN_FIELD[1]),
        "long": str(IN_FIELD[0]),
        "attribute[severity]": "high",
        "description": "下水道堵塞",
        **extra,
    }


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_round_trip_through_a_client_library(server: str, key: str, world: World, fmt: str) -> None:
    client = GeoReport(f"{server}/open311/v2", output_format=fmt)
    services = client.get_service_list()
    codes = {s["service_code"] for s in services}
    assert {"sewer_blocked", "street_light", "hardship_subsidy"} <= codes
    sewer = next(s for s in services if s["service_code"] == "sewer_blocked")
    assert sewer["service_name"] == "下水道堵塞" and str(sewer["metadata"]).lower() == "true"
    assert sewer["group"] == "convenience"
    definition = client.get_service_definition("sewer_blocked")
    attrs = definition["attributes"]
    if fmt == "xml":  # xmltodict: one <attribute> per definition
        attrs = attrs["attribute"]
    severity = attrs[0]
    assert severity["code"] == "severity" and str(severity["required"]).lower() == "true"

    r = _post(server, fmt, _form(key, email="zhang@example.org", first_name="三"))
    assert r.status_code == 201, r.text
    if fmt == "json":
        created = r.json()[0]
    else:
        created = {el.tag: el.text for el in ET.fromstring(r.text).find("request")}  # type: ignore[union-attr]
    rid = created["service_request_id"]
    assert created["token"]

    one = client.get_service_request(rid)
    assert one["service_request_id"] == rid
    assert one["status"] == "open"
    assert one["service_code"] == "sewer_blocked"
    assert one["requested_datetime"].endswith("+08:00")
    assert one["expected_datetime"] is not None
    assert one["agency_responsible"] == "测试社区 001"
    # Public: blurred to the centre of its H3 cell (resolution 11), within ~30 m.
    lon, lat = snap(*IN_FIELD)
    assert (float(one["long"]), float(one["lat"])) == (round(lon, 6), round(lat, 6))
    assert abs(float(one["lat"]) - IN_FIELD[1]) < 0.0003
    text = str(one)
    assert "zhang@example.org" not in text and "张小明" not in text

    listed = client.get_service_requests()
    if fmt == "xml" and isinstance(listed, dict):
        listed = [listed]
    assert [x["service_request_id"] for x in listed] == [rid]
    by_id = client.get_service_requests(service_request_id=rid)
    assert by_id


def test_post_with_xml_answer_and_token(server: str, key: str) -> None:
    r = _post(server, "xml", _form(key))
    assert r.status_code == 201
    assert r.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(r.content)
    assert root.tag == "service_requests"
    token = root.findtext("request/token")
    rid = root.findtext("request/service_request_id")
    t = httpx.get(f"{server}/open311/v2/tokens/{token}.json").json()
    assert t == [{"service_request_id": rid, "token": token, "status": "open"}]
    assert httpx.get(f"{server}/open311/v2/tokens/nope.json").status_code == 404


def test_discovery_both_formats(server: str) -> None:
    j = httpx.get(f"{server}/open311/v2/discovery.json").json()
    assert j["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert j["endpoints"][0]["formats"] == ["text/xml", "application/json"]
    x = ET.fromstring(httpx.get(f"{server}/open311/v2/discovery.xml").content)
    assert [f.text for f in x.findall("endpoints/endpoint/formats/format")] == [
        "text/xml",
        "application/json",
    ]


def _error(r: httpx.Response, fmt: str) -> tuple[int, str]:
    if fmt == "json":
        (e,) = r.json()
        return int(e["code"]), str(e["description"])
    root = ET.fromstring(r.content)
    assert root.tag == "errors"
    return int(root.findtext("error/code") or 0), str(root.findtext("error/description"))


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"api_key": None}, 403, "api_key"),
        ({"api_key": "gg_00000000_wrong"}, 403, "api_key"),
        ({"service_code": "teleport"}, 404, "service_code"),
        ({"service_code": None}, 400, "service_code"),
        ({"lat": None, "long": None}, 400, "lat"),
        ({"lat": "north"}, 400, "lat"),
        ({"description": "堵" * 4001}, 400, "description"),
        ({"attribute[severity]": "extreme"}, 400, "attribute[severity]"),
        ({"attribute[severity]": None}, 400, "attribute[severity]"),
        ({"attribute[colour]": "red"}, 400, "attribute[colour]"),
        ({"attribute[severity": "high"}, 400, "attribute"),
        ({"lat": "24.5", "long": "115.5"}, 400, "outside the service area"),
    ],
)
def test_post_errors_follow_the_spec(
    server: str,
    key: str,
    engine: Engine,
    fmt: str,
    change: dict[str, Any],
    status: int,
    words: str,
) -> None:
    form = {k: v for k, v in {**_form(key), **change}.items() if v is not None}
    r = _post(server, fmt, form)
    assert r.status_code == status, r.text
    code, description = _error(r, fmt)
    assert code == status and words in description
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(m.Request)).scalar_one() == 0


def test_post_outside_every_grid_is_accepted_and_flagged(server: str, key: str) -> None:
    r = _post(server, "json", _form(key, lat=str(JUST_OUTSIDE[1]), long=str(JUST_OUTSIDE[0])))
    assert r.status_code == 201
    assert "outside every grid" in r.json()[0]["service_notice"]
    rid = r.json()[0]["service_request_id"]
    one = httpx.get(f"{server}/open311/v2/requests/{rid}.json").json()[0]
    assert one["agency_responsible"] == "测试社区"


def test_post_by_address_id_and_multivalue(server: str, key: str, engine: Engine) -> None:
    set_attributes(
        engine,
        "street_light",
        [{"code": "lamps", "datatype": "multivaluelist", "required": True,
          "values": [{"key": "a", "name": "A"}, {"key": "b", "name": "B"}]}],
    )  # fmt: skip
    form = {
        "api_key": key,
        "service_code": "street_light",
        "address_id": "T-00002",
        "attribute[lamps][]": ["a", "b"],
    }
    r = _post(server, "json", form)
    assert r.status_code == 201, r.text
    with engine.connect() as conn:
        row = conn.execute(
            select(m.Request.address_id, m.Request.attributes, m.Request.source)
        ).one()
    assert row == ("T-00002", {"lamps": ["a", "b"]}, "open311")


def test_get_requests_filters_and_errors(server: str, key: str, engine: Engine) -> None:
    ids = [_post(server, "json", _form(key)).json()[0]["service_request_id"] for _ in range(2)]
    other = _post(
        server,
        "json",
        {"api_key": key, "service_code": "street_light", "lat": str(IN_VACANT_FIELD[1]),
         "long": str(IN_VACANT_FIELD[0])},
    ).json()[0]["service_request_id"]  # fmt: skip
    base = f"{server}/open311/v2/requests.json"
    got = httpx.get(base, params={"service_code": "street_light"}).json()
    assert [x["service_request_id"] for x in got] == [other]
    got = httpx.get(base, params={"service_request_id": ",".join(ids)}).json()
    assert sorted(x["service_request_id"] for x in got) == sorted(ids)
    assert httpx.get(base, params={"status": "closed"}).json() == []
    assert len(httpx.get(base, params={"status": "open"}).json()) == 3
    # Outside the default window of 90 days: nothing.
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=200)).isoformat()
    older = (dt.datetime.now(dt.UTC) - dt.timedelta(days=150)).isoformat()
    assert httpx.get(base, params={"start_date": old, "end_date": older}).json() == []
    for params, words in [
        ({"status": "pending"}, "status"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"start_date": old}, None),
        ({"service_request_id": "1,x"}, "service_request_id"),
    ]:
        r = httpx.get(base, params=params)
        if words is None:
            assert r.status_code == 200
            continue
        assert r.status_code == 400, params
        assert words in r.json()[0]["description"]
    r = httpx.get(
        base,
        params={"start_date": "2017-07-01T00:00:00+08:00", "end_date": "2018-04-18T00:00:00+08:00"},
    )
    assert r.status_code == 400 and "90 days" in r.json()[0]["description"]
    assert httpx.get(f"{server}/open311/v2/requests/999999.xml").status_code == 404
    assert httpx.get(f"{server}/open311/v2/services/teleport.json").status_code == 404
    assert httpx.get(f"{server}/open311/v2/services.html").status_code == 404
    jur = httpx.get(base, params={"jurisdiction_id": "999"})
    assert jur.status_code == 404


def test_status_closed_and_notes_after_resolution(server: str, key: str, engine: Engine) -> None:
    from geogrid.access import Actor
    from geogrid.requests.workflow import ActionInput, act

    rid = int(_post(server, "json", _form(key)).json()[0]["service_request_id"])
    official = Actor(role=m.Role.OFFICIAL, label="official", key_id=1)
    with engine.begin() as conn:
        for v, (action, note) in enumerate(
            [("register", None), ("dispatch", None), ("resolve", "已疏通，谢谢反映")], start=1
        ):
            act(
                conn,
                request_id=rid,
                action=action,
                actor=official,
                params=ActionInput(version=v, note=note),
            )
    client = GeoReport(f"{server}/open311/v2", output_format="xml")
    one = client.get_service_request(str(rid))
    assert one["status"] == "closed" and one["status_notes"] == "已疏通，谢谢反映"


def test_address_string_is_resolved_by_the_lookup(db_url: str, engine: Engine) -> None:
    with engine.begin() as conn:
        community = make_lookup_community(conn)
        ensure_default_catalogue(conn)
    key = new_key(engine, "public")
    with live_server(make_app(db_url)) as server:
        r = _post(
            server,
            "json",
            {"api_key": key, "service_code": "street_light", "address_string": "长湖街5号"},
        )
        assert r.status_code == 201, r.text
        bad = _post(
            server,
            "json",
            {"api_key": key, "service_code": "street_light", "address_string": "火星路99号"},
        )
        assert bad.status_code == 400 and "address_string" in bad.json()[0]["description"]
    with engine.connect() as conn:
        row = conn.execute(select(m.Request.address_id, m.Request.member_id)).one()
    assert row == ("T-H-003", community.members["field_f1"])

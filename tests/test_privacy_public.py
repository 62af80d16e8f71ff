"""Residents' personal data stays out of what the public and officials see (PIPL: purpose and
the minimum necessary).

One request carries a phone number and an 18-digit ID number with a wrong check digit in its
description and in a note; a care request sits beside it. Without the personal-data right
neither number appears in any response — JSON, XML, CSV, map HTML, the default export — the
care request is nowhere public, and the public sees places blurred to their H3 cell and
addresses at street level. With the right, asked for and logged, the text is whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from geogrid.io.export import export_geopackage
from geogrid.io.readers import gdal_without_spatialite
from geogrid.privacy import PUBLIC_H3_RESOLUTION, scrub, snap
from tests.requests_factories import IN_FIELD, World, file_request, new_key

PHONE = "13800138000"
BAD_ID = "110101199003071239"  # 18 digits; the check digit should be 4
EMAIL = "li.si@example.cn"
SECRETS = (PHONE, BAD_ID, EMAIL, "138 0013 8000")


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"请联系 {PHONE}", "请联系 "),
        ("电话 138-0013-8000 或 +86 138 0013 8000", "电话 "),
        (f"身份证 {BAD_ID}，旧证 110101900307123", "身份证 "),
        ("证件 11010119900307123X", "证件 "),
        ("座机 0752-2345678", "座机 "),
        ("全角 １３８００１３８０００", "全角 "),
        (f"邮箱 {EMAIL}", "邮箱 "),
    ],
)
def test_scrub_finds_phones_ids_and_emails(text: str, kept: str) -> None:
    out = scrub(text)
    assert out is not None and out.startswith(kept)
    assert not any(ch.isdigit() for ch in out.replace("0752", ""))
    assert "@" not in out


def test_scrub_keeps_dates_house_numbers_and_counts() -> None:
    text = "2017年7月1日起，长湖街12号 3单元 1102 室，共 126 户，编号 20170701"
    assert scrub(text) == text


def _seed(client: TestClient, engine: Engine) -> dict[str, Any]:
    hotline = new_key(engine, "public", name="hotline app")
    official = new_key(engine, "official", community_code="441302011099")
    description = f"井盖松动，请回电 {PHONE}，身份证 {BAD_ID}，邮箱 {EMAIL}"
    r = file_request(client, hotline, description=description)
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    for version, action, note in (
        (1, "register", f"已电话联系 {PHONE}"),
        (2, "reject", f"已电话联系 {PHONE}，不属实"),  # a note addressed to the reporter
    ):
        r = client.post(
            f"/v1/requests/{rid}/{action}",
            json={"version": version, "note": note},
            headers={"X-API-Key": official},
        )
        assert r.status_code == 200, r.text
    care = _file_care(client, official)
    return {"id": rid, "care": care["id"], "hotline": hotline, "official": official}


def _file_care(client: TestClient, key: str) -> dict[str, Any]:
    """A care-programme request (关爱): an elderly person living alone needs home care."""
    r = file_request(client, key, category="elderly_care", description="独居老人需上门照料")
    assert r.status_code == 201, r.text
    return dict(r.json())


def _assert_clean(text: str, where: str) -> None:
    found = [s for s in SECRETS if s in text]
    assert found == [], f"{where} shows {found}"


def test_no_phone_or_id_without_the_right(
    client: TestClient, engine: Engine, tmp_path: Path
) -> None:
    seed = _seed(client, engine)
    rid, care = seed["id"], seed["care"]
    callers = {
        "anonymous": {},
        "public key": {"X-API-Key": seed["hotline"]},
        "official": {"X-API-Key": seed["official"]},
    }
    urls = [
        "/v1/requests?limit=500",
        f"/v1/requests/{rid}",
        "/open311/v2/requests.json",
        "/open311/v2/requests.xml",
        f"/open311/v2/requests/{rid}.json",
        f"/open311/v2/requests/{rid}.xml",
        "/v1/kpis?community=441302011099&format=csv&group_by=grid",
        "/maps/coverage?community=441302011099",
        "/maps/hotspots?community=441302011099",
    ]
    for who, headers in callers.items():
        for url in urls:
            r = client.get(url, headers=headers)
            assert r.status_code == 200, (who, url, r.text[:200])
            _assert_clean(r.text, f"{url} as {who}")
        for audience_url in (
            "/maps/coverage?community=441302011099&audience=official",
            "/maps/hotspots?community=441302011099&audience=official",
        ):
            r = client.get(audience_url, headers=headers)
            if who == "official":
                assert r.status_code == 200
            _assert_clean(r.text, f"{audience_url} as {who}")
    # Scrubbed, not dropped: the reader still sees that a number was there.
    seen = client.get(f"/v1/requests/{rid}", headers=callers["official"]).json()
    assert "[电话已隐藏]" in seen["description"] and "[证件号已隐藏]" in seen["description"]
    assert any("[电话已隐藏]" in (h["note"] or "") for h in seen["history"])
    # The default export.
    out = tmp_path / "export.gpkg"
    with engine.begin() as conn:
        export_geopackage(conn, out=out)
    with gdal_without_spatialite():
        for layer in ("requests", "households", "members"):
            frame = gpd.read_file(out, layer=layer, engine="pyogrio")
            _assert_clean(frame.to_csv(), f"the export's {layer}")
    # With the right, asked for: the whole text (and the read is logged).
    entitled = new_key(engine, "official", personal_data=True, name="书记")
    whole = client.get(
        f"/v1/requests/{rid}", params={"personal": "true"}, headers={"X-API-Key": entitled}
    ).json()
    assert PHONE in whole["description"] and BAD_ID in whole["description"]
    assert care  # seeded for the test below


def test_care_requests_are_never_public(client: TestClient, engine: Engine) -> None:
    seed = _seed(client, engine)
    care = seed["care"]
    for headers in ({}, {"X-API-Key": seed["hotline"]}):
        listed = client.get("/v1/requests?limit=500", headers=headers).json()
        assert care not in [i["id"] for i in listed["items"]]
        assert client.get(f"/v1/requests/{care}", headers=headers).status_code == 404
    assert str(care) not in [
        i["service_request_id"] for i in client.get("/open311/v2/requests.json").json()
    ]
    assert client.get(f"/open311/v2/requests/{care}.json").status_code == 404
    # Its scope sees it.
    official = {"X-API-Key": seed["official"]}
    assert client.get(f"/v1/requests/{care}", headers=official).status_code == 200


def test_the_care_request_s_token_holder_sees_its_status_only(
    client: TestClient, engine: Engine
) -> None:
    filed = _file_care(client, new_key(engine, "public", name="hotline app"))
    token, rid = filed["token"], filed["id"]
    answer = client.get(f"/open311/v2/tokens/{token}.json").json()
    assert answer == [{"service_request_id": str(rid), "token": token, "status": "open"}]
    assert client.get(f"/open311/v2/requests/{rid}.json").status_code == 404


def test_the_public_sees_the_cell_and_the_street(client: TestClient, engine: Engine) -> None:
    seed = _seed(client, engine)
    public = client.get(f"/v1/requests/{seed['id']}").json()["location"]
    lon, lat = snap(*IN_FIELD)
    assert (public["lon"], public["lat"]) == (round(lon, 6), round(lat, 6))
    assert "address_id" not in public
    scoped = client.get(
        f"/v1/requests/{seed['id']}", headers={"X-API-Key": seed["official"]}
    ).json()["location"]
    assert (scoped["lon"], scoped["lat"]) == (round(IN_FIELD[0], 7), round(IN_FIELD[1], 7))
    assert PUBLIC_H3_RESOLUTION == 11


def test_the_default_export_pseudonymises_address_ids_stably(
    engine: Engine, world: World, tmp_path: Path
) -> None:
    frames = []
    for name in ("one.gpkg", "two.gpkg"):
        with engine.begin() as conn:
            export_geopackage(conn, out=tmp_path / name)
        with gdal_without_spatialite():
            frames.append(gpd.read_file(tmp_path / name, layer="households", engine="pyogrio"))
            members = gpd.read_file(tmp_path / name, layer="members", engine="pyogrio")
        assert members.geometry.isna().all() or members.geometry.is_empty.all()
    one, two = frames
    assert list(one["address_id"]) == list(two["address_id"])  # stable across exports
    assert all(a.startswith("a-") and len(a) == 18 for a in one["address_id"])
    assert not set(one["address_id"]) & {"T-00000", "T-00001", "T-00002"}
    with engine.begin() as conn:
        export_geopackage(conn, out=tmp_path / "full.gpkg", include_personal=True)
    with gdal_without_spatialite():
        full = gpd.read_file(tmp_path / "full.gpkg", layer="households", engine="pyogrio")
    assert sorted(full["address_id"]) == ["T-00000", "T-00001", "T-00002"]


def test_cli_exports_keep_their_pseudonyms(
    engine: Engine, world: World, db_url: str, tmp_path: Path
) -> None:
    """Two ``geogrid export`` runs (each its own process's transaction) agree."""
    from typer.testing import CliRunner

    from api.cli import app

    ids = []
    for name in ("one.gpkg", "two.gpkg"):
        done = CliRunner().invoke(
            app, ["export", "--out", str(tmp_path / name), "--database", db_url]
        )
        assert done.exit_code == 0, done.output
        with gdal_without_spatialite():
            frame = gpd.read_file(tmp_path / name, layer="households", engine="pyogrio")
        ids.append(sorted(frame["address_id"]))
    assert ids[0] == ids[1] and all(a.startswith("a-") for a in ids[0])

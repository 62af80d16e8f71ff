"""``geogrid requests list`` (issue 15, item 7): the filters of ``GET /v1/requests``, the same
ids; and figures rounded for people in the CLI's tables while ``--json`` keeps full precision
(item 6)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from tests.requests_factories import (
    IN_FIELD,
    IN_GRID_NO_FIELD,
    IN_VACANT_FIELD,
    JUST_OUTSIDE,
    World,
    cli_app,
    file_request,
    make_app,
    new_key,
)

runner = CliRunner()
A = "441302011099"


def _run(db_url: str, *args: str) -> Result:
    return runner.invoke(cli_app(), [*args, "--database", db_url], env={"COLUMNS": "200"})


@pytest.fixture
def filed(db_url: str, world: World, engine: Engine) -> Iterator[tuple[TestClient, str]]:
    """Requests in three grids, outside them, of three categories, one care, at every stage
    from received to resolved; an admin key to list them through the API."""
    admin = new_key(engine, "admin")
    with TestClient(make_app(db_url)) as client:
        spots = [
            ("sewer_blocked", IN_FIELD),
            ("street_light", IN_GRID_NO_FIELD),
            ("street_light", IN_VACANT_FIELD),
            ("noise", JUST_OUTSIDE),
            ("elderly_care", IN_FIELD),
            ("sewer_blocked", IN_VACANT_FIELD),
        ]
        ids = []
        for code, (lon, lat) in spots:
            answer = file_request(client, admin, category=code, lon=lon, lat=lat)
            assert answer.status_code == 201, answer.text
            ids.append(answer.json()["id"])
        for rid, actions in (
            (ids[0], ["register", "dispatch", "start"]),
            (ids[1], ["register", "dispatch", "resolve"]),
            (ids[2], ["register"]),
        ):
            for action in actions:
                version = client.get(f"/v1/requests/{rid}", headers={"X-API-Key": admin})
                body = {"version": version.json()["version"], "note": "已处理"}
                answer = client.post(
                    f"/v1/requests/{rid}/{action}", json=body, headers={"X-API-Key": admin}
                )
                assert answer.status_code == 200, answer.text
        yield client, admin


FILTERS: list[dict[str, str]] = [
    {},
    {"status": "open"},
    {"status": "received,resolved"},
    {"category": "street_light"},
    {"category": "street_light,noise", "status": "open"},
    {"programme": "care"},
    {"community": A},
    {"grid": "441302011099002"},
    {"flag": "outside_grids"},
    {"overdue": "false"},
    {"from": "2000-01-01", "to": "2100-12-31"},
    {"to": "2001-01-01"},
    {"limit": "2", "offset": "1"},
]


def _options(filters: dict[str, str]) -> list[str]:
    out: list[str] = []
    for key, value in filters.items():
        if key == "overdue":
            out.append("--overdue" if value == "true" else "--not-overdue")
        else:
            out += [f"--{key}", value]
    return out


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(f) or "none")
def test_same_ids_as_the_api(
    db_url: str, filed: tuple[TestClient, str], filters: dict[str, str]
) -> None:
    client, admin = filed
    api = client.get("/v1/requests", params=filters, headers={"X-API-Key": admin})
    assert api.status_code == 200, api.text
    cli = _run(db_url, "requests", "list", "--json", *_options(filters))
    assert cli.exit_code == 0, cli.output
    page = json.loads(cli.stdout)
    assert [i["id"] for i in page["items"]] == [i["id"] for i in api.json()["items"]]
    assert page["total"] == api.json()["total"]


def test_member_filter(db_url: str, world: World, filed: tuple[TestClient, str]) -> None:
    client, admin = filed
    member = world.members["C"]
    api = client.get("/v1/requests", params={"member_id": member}, headers={"X-API-Key": admin})
    cli = _run(db_url, "requests", "list", "--json", "--member", str(member))
    ids = [i["id"] for i in json.loads(cli.stdout)["items"]]
    assert ids and ids == [i["id"] for i in api.json()["items"]]


def test_table_in_the_community_zone(db_url: str, filed: tuple[TestClient, str]) -> None:
    client, admin = filed
    items = client.get("/v1/requests", headers={"X-API-Key": admin}).json()["items"]
    shown = _run(db_url, "requests", "list", "--status", "open")
    assert shown.exit_code == 0, shown.output
    assert "requests: 5 of 5" in shown.stdout
    first = next(i for i in items if i["open"])
    # received_at is ISO with the community's offset (+08:00): the table shows that clock
    assert first["received_at"].endswith("+08:00")
    assert first["received_at"][:16].replace("T", " ") in shown.stdout
    assert "张小明" not in shown.stdout and "张*明" in shown.stdout  # masked, as the API
    zh = _run(db_url, "requests", "list", "--lang", "zh", "--limit", "1")
    assert "受理时间" in zh.stdout and "网格" in zh.stdout
    assert "--offset 1" in zh.stderr


def test_bad_filters_are_refused(db_url: str, world: World) -> None:
    bad = _run(db_url, "requests", "list", "--status", "pending")
    assert bad.exit_code == 1 and "unknown status" in bad.output
    assert _run(db_url, "requests", "list", "--limit", "0").exit_code == 1


# --- figures for people ----------------------------------------------------------------------

FRACTION = re.compile(r"\b0\.\d{3,}\b")


def test_kpi_table_in_percentages_json_in_fractions(
    db_url: str, filed: tuple[TestClient, str]
) -> None:
    table = _run(db_url, "kpi", "--community", A)
    assert table.exit_code == 0, table.output
    assert "%" in table.stdout and not FRACTION.search(table.stdout)
    data = json.loads(_run(db_url, "kpi", "--community", A, "--format", "json").stdout)
    rate = data["total"]["resolution_rate"]
    assert 0 < rate < 1
    assert f"{rate * 100:.1f}%" in table.stdout


def test_kpi_table_in_chinese(db_url: str, filed: tuple[TestClient, str]) -> None:
    en = _run(db_url, "kpi", "--community", A, "--group-by", "grid")
    assert en.exit_code == 0, en.output
    assert "Resolution rate" in en.stdout and "Total" in en.stdout and "解决率" not in en.stdout
    zh = _run(db_url, "kpi", "--community", A, "--group-by", "grid", "--lang", "zh")
    assert zh.exit_code == 0, zh.output
    for heading in ("解决率", "结案率", "合计", "按 网格"):
        assert heading in zh.stdout, zh.stdout
    assert "Resolution rate" not in zh.stdout
    # The language may come from the environment, as for every table command.
    env = runner.invoke(
        cli_app(),
        ["kpi", "--community", A, "--database", db_url],
        env={"COLUMNS": "200", "GEOGRID_LANG": "zh"},
    )
    assert env.exit_code == 0 and "解决率" in env.stdout
    listed = runner.invoke(
        cli_app(),
        ["requests", "list", "--limit", "1", "--database", db_url],
        env={"COLUMNS": "200", "GEOGRID_LANG": "zh"},
    )
    assert listed.exit_code == 0 and "诉求：" in listed.stdout


def test_summary_table_rounded(db_url: str, filed: tuple[TestClient, str]) -> None:
    table = _run(db_url, "summary", "--community", A)
    assert table.exit_code == 0, table.output
    data = json.loads(_run(db_url, "summary", "--community", A, "--json").stdout)
    rate = data["communities"][0]["requests"]["resolution_rate"]
    assert f"{rate * 100:.1f}%" in table.stdout and not FRACTION.search(table.stdout)


def test_plan_measure_deviation_in_percent(db_url: str, world: World) -> None:
    table = _run(db_url, "plan", "measure", "active", "--community", A)
    assert table.exit_code == 0, table.output
    data = json.loads(_run(db_url, "plan", "measure", "active", "--community", A, "--json").stdout)
    deviations = [g["deviation"] for g in data["grids"]]
    assert any(d != 0 for d in deviations)
    for d in deviations:
        shown = ("+" if d > 0 else "") + f"{d * 100:.1f}%"
        assert shown.replace("-0.0%", "0.0%") in table.stdout

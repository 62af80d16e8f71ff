"""The command line: db init, assign as a dry run unless --commit, summary, clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import Point
from sqlalchemy import Engine, insert
from typer.testing import CliRunner

from api.cli import app
from geogrid.db import models as m
from geogrid.db import queries as q
from geogrid.errors import GeogridError
from tests.factories import add_households, make_community

runner = CliRunner()


def test_db_init_creates_schema_and_catalogue(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'geogrid.sqlite'}"
    r = runner.invoke(app, ["db", "init", "--database", url])
    assert r.exit_code == 0, r.output
    assert "database ready" in r.output
    again = runner.invoke(app, ["db", "init", "--database", url])
    assert again.exit_code == 0
    assert "added 0 departments, 0 categories" in again.output


def test_commands_refuse_a_database_without_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    r = runner.invoke(app, ["assign", "--database", url])
    assert r.exit_code == 1
    assert "geogrid db init" in r.output


def test_assign_is_a_dry_run_without_commit(engine: Engine, db_url: str) -> None:
    with engine.begin() as conn:
        cid, plan_id, _ = make_community(conn)
        add_households(conn, cid, [(114.405, 23.105), (114.415, 23.115), (114.5, 23.5)])
    dry = runner.invoke(app, ["assign", "--database", db_url, "--json"])
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.stdout)
    assert report["households_in_grids"] == 2
    assert report["households_outside"] == 1
    assert report["outside_address_ids"] == ["T-00002"]
    assert "dry run" in dry.stderr
    with engine.connect() as conn:
        assert q.count(conn, m.HouseholdAssignment) == 0
    done = runner.invoke(app, ["assign", "--database", db_url, "--commit"])
    assert done.exit_code == 0, done.output
    with engine.connect() as conn:
        assert q.count(conn, m.HouseholdAssignment, m.HouseholdAssignment.plan_id == plan_id) == 2


def test_unknown_community_is_a_clear_error(engine: Engine, db_url: str) -> None:
    with engine.begin() as conn:
        make_community(conn)
    r = runner.invoke(app, ["assign", "--database", db_url, "--community", "000"])
    assert r.exit_code == 1
    assert "no community with code '000'" in r.stderr


def test_assign_commits_each_community_on_its_own(
    engine: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with engine.begin() as conn:
        first, first_plan, _ = make_community(conn)
        second, second_plan, _ = make_community(conn, code="441302011098")
        add_households(conn, first, [(114.405, 23.105)])
        conn.execute(
            insert(m.Household).values(
                community_id=second,
                address_id="T-second",
                size=1,
                geom=q.geom_value(Point(114.415, 23.115)),
            )
        )
    import geogrid.assign

    real = geogrid.assign.assign_community
    calls: list[int] = []

    def fail_on_the_second(conn: Any, *, community_id: int) -> Any:
        calls.append(community_id)
        if len(calls) == 2:
            raise GeogridError("the second community's assignment failed")
        return real(conn, community_id=community_id)

    monkeypatch.setattr(geogrid.assign, "assign_community", fail_on_the_second)
    failed = runner.invoke(app, ["assign", "--database", db_url, "--commit"])
    assert failed.exit_code == 1
    assert "1 of 2 communities assigned and committed" in failed.stderr
    assert "second community's assignment failed" in failed.stderr
    plans = {first: first_plan, second: second_plan}
    done, failing = plans[calls[0]], plans[calls[1]]
    with engine.connect() as conn:  # the first one's assignment stays, whole; not the other
        assert q.count(conn, m.HouseholdAssignment, m.HouseholdAssignment.plan_id == done)
        assert not q.count(conn, m.HouseholdAssignment, m.HouseholdAssignment.plan_id == failing)
    monkeypatch.setattr(geogrid.assign, "assign_community", real)
    again = runner.invoke(app, ["assign", "--database", db_url, "--commit", "--json"])
    assert again.exit_code == 0, again.output
    assert len(json.loads(again.stdout)["communities"]) == 2
    with engine.connect() as conn:
        assert q.count(conn, m.HouseholdAssignment, m.HouseholdAssignment.plan_id == second_plan)

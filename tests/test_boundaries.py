"""Every boundary file under ``boundaries/`` is listed with its provenance, and every plan
file validates against its community (the demo's, for ``441302011005``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from geogrid.demo.generate import COMMUNITY_CODE, DemoData
from geogrid.planning.store import read_plan_file
from geogrid.planning.validate import validate_plan

ROOT = Path(__file__).resolve().parents[1] / "boundaries"
PLAN_FILES = sorted((ROOT / COMMUNITY_CODE).glob("*.geojson"))


def test_every_boundary_file_is_listed_with_its_provenance() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    files = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*.geojson"))
    assert files, "no boundary files"
    for name in files:
        assert f"`{name}`" in readme, f"{name} is not listed in boundaries/README.md"


def test_the_demo_has_plan_files() -> None:
    assert [p.name for p in PLAN_FILES] == ["proposal-seed0.geojson", "v1-demo.geojson"]


@pytest.mark.parametrize("path", PLAN_FILES, ids=lambda p: p.name)
def test_plan_files_validate(path: Path, demo_data: DemoData) -> None:
    plan = read_plan_file(path)
    assert plan.problems == []
    report = validate_plan(
        plan.grids, demo_data.community["boundary"], community_code=COMMUNITY_CODE
    )
    assert report.valid, [p.message for p in report.problems]
    assert report.warnings == 0  # numbered by the rule

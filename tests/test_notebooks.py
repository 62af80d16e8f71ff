"""The planner's notebook runs top to bottom and is stored without outputs.

The notebook asserts its own key facts (valid plans, every proposed grid within the target,
the adopted plan holding the proposal's households), so a broken library fails it here. It
runs in a kernel of this interpreter: a ``python3`` kernelspec naming ``sys.executable`` is
written to a temporary ``JUPYTER_PATH``, which comes before every other kernel folder, so
neither a user's nor the system's kernels are used and none is installed anywhere.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

from geogrid.demo.generate import generate_demo
from tests.conftest import DEMO_TODAY

ROOT = Path(__file__).resolve().parent.parent
PLANNER = ROOT / "notebooks" / "planner.ipynb"
#: ReCom steps in the test run: enough to exercise the chain, few enough to stay quick.
STEPS = 20


def _substrings(text: str, lengths: set[int]) -> set[str]:
    """Every run of Chinese characters of the given lengths in ``text``."""
    out: set[str] = set()
    for run in re.findall(r"[\u4e00-\u9fff]+", text):
        for n in lengths:
            out.update(run[i : i + n] for i in range(len(run) - n + 1))
    return out


@pytest.mark.slow
def test_planner_notebook_runs_top_to_bottom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ipykernel.kernelspec import write_kernel_spec
    from nbclient import NotebookClient

    jupyter = tmp_path / "jupyter"
    write_kernel_spec(jupyter / "kernels" / "python3")
    out = tmp_path / "out"
    # The kernel inherits this environment.
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter))
    monkeypatch.setenv("GEOGRID_NOTEBOOK_OUT", str(out))
    monkeypatch.setenv("GEOGRID_NOTEBOOK_STEPS", str(STEPS))
    for name in ("GEOGRID_DATABASE_URL", "GEOGRID_NOTEBOOK_COMMIT", "GEOGRID_NOTEBOOK_COMMUNITY"):
        monkeypatch.delenv(name, raising=False)

    nb = nbformat.read(PLANNER, as_version=4)
    # The first cell learns which interpreter runs the kernel.
    nb.cells.insert(0, nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"))
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on failure

    assert nb.cells[0].outputs[0]["text"].strip() == sys.executable
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o["output_type"] == "error"]

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    draft = out / summary["draft_file"]
    plan_map = out / summary["map_file"]
    assert draft.suffix == ".geojson" and plan_map.name == "plan-map.html"
    doc = json.loads(draft.read_text(encoding="utf-8"))
    assert doc["geogrid"]["seed"] == summary["seed"]
    assert doc["geogrid"]["steps"] == STEPS
    page = plan_map.read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html")

    current, adopted = summary["plans"]["current"], summary["plans"]["adopted"]
    lo, hi = summary["target"]
    assert len(doc["features"]) == adopted["grids"] > current["grids"]
    assert adopted["in_target"] == adopted["grids"]
    assert lo <= adopted["min_households"] <= adopted["max_households"] <= hi
    assert adopted["households"] == current["households"]
    assert summary["committed"] is True

    # Personal data: no resident's or member's name, no household address id, anywhere.
    shown = "\n".join(
        [nbformat.writes(nb), page, draft.read_text(encoding="utf-8"), json.dumps(summary)]
    )
    # Folium writes its data as JSON with \uXXXX escapes: read them as the characters.
    shown = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), shown)
    demo = generate_demo(seed=20170701, today=DEMO_TODAY)
    names = {*demo.members["name"], *demo.households["head_name"].dropna()}
    assert not _substrings(shown, {len(n) for n in names}) & names
    assert not set(re.findall(r"[\w-]+", shown)) & set(demo.households["address_id"])


def test_planner_notebook_is_stored_without_outputs() -> None:
    nb = nbformat.read(PLANNER, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [], f"cell {cell.get('id')} is stored with outputs"
        assert cell.execution_count is None, f"cell {cell.get('id')} has an execution count"
        assert "execution" not in cell.metadata, f"cell {cell.get('id')} keeps run timings"
    assert not any(c.get("attachments") for c in nb.cells)

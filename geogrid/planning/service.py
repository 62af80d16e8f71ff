"""Planning jobs over the database shared by the CLI, the API and notebooks: propose a redraw
with its metrics against the active plan, and draw the plan map."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import folium
from sqlalchemy import Connection

from geogrid.budget import Budget
from geogrid.db import queries
from geogrid.planning.common import DEFAULT_TARGET
from geogrid.planning.diff import diff_plans
from geogrid.planning.files import write_plan_geojson
from geogrid.planning.metrics import measure_plan
from geogrid.planning.propose import propose_plan
from geogrid.planning.store import read_frames, resolve_plan

__all__ = ["plan_map_in_db", "propose_in_db"]


def propose_in_db(
    conn: Connection,
    *,
    community_id: int,
    target: tuple[int, int] | None = None,
    grids: int | None = None,
    seed: int = 0,
    steps: int | None = None,
    out: Path | None = None,
    progress: Callable[[str], None] | None = None,
    budget: Budget | None = None,
) -> dict[str, Any]:
    """Propose a redraw of the community; write it to ``out`` (GeoJSON) when given.

    Returns ``{"proposal", "current", "proposed", "file"}``: the proposal's report and the
    metrics (:func:`measure_plan`) of the active plan and of the proposal, same target.
    ``budget`` bounds the drawing and the metrics (:mod:`geogrid.budget`).
    """
    say = progress or (lambda _s: None)
    started = time.perf_counter()
    f = read_frames(conn, community_id=community_id)
    buildings = queries.buildings_frame(conn, community_id=community_id)
    streets = queries.streets_frame(conn, community_id=community_id)
    say(
        f"proposing for {f.community_code}: {len(f.households):,} households, "
        f"{len(buildings):,} buildings, {len(streets):,} streets, {len(f.active)} grids now"
    )
    proposal = propose_plan(
        f.boundary,
        buildings,
        f.households,
        community_code=f.community_code,
        community_name=f.community_name,
        streets=streets,
        current=f.active if len(f.active) else None,
        fields=f.fields if len(f.fields) else None,
        target=target,
        grids=grids,
        seed=seed,
        steps=steps,
        budget=budget,
    )
    say(f"drew {proposal.k} grids in {time.perf_counter() - started:.1f} s")
    rng = proposal.target or target or DEFAULT_TARGET
    kwargs: dict[str, Any] = {
        "households": f.households,
        "fields": f.fields,
        "open_requests": f.open_requests,
        "target": rng,
        "budget": budget,
    }
    current = measure_plan(f.active, **kwargs).to_dict() if len(f.active) else None
    proposed = measure_plan(proposal.grids, **kwargs).to_dict()
    summary = proposal.to_dict()
    summary["kept_share"] = (
        proposal.kept_households / proposal.households if proposal.households else 0.0
    )
    summary.pop("grids", None)
    written = None
    if out is not None:
        written = write_plan_geojson(
            out,
            proposal.grids,
            name=f"{f.community_code} proposal seed {seed}",
            provenance={
                "community_code": f.community_code,
                "generated_by": "geogrid plan propose",
                "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "method": proposal.method,
                "seed": seed,
                "target": list(rng),
                "based_on_plan": (
                    {"id": f.active_plan.id, "version": f.active_plan.version}
                    if f.active_plan is not None
                    else None
                ),
                "kept_share": round(summary["kept_share"], 4),
            },
        )
    return {
        "proposal": summary,
        "current": current,
        "proposed": proposed,
        "file": str(written) if written else None,
    }


def plan_map_in_db(
    conn: Connection,
    *,
    community_id: int,
    draft: str,
    against: str = "active",
    lang: str = "zh",
    tiles: str | None = "none",
    files: bool = True,
) -> folium.Map:
    """The plan map of ``draft`` over ``against`` (ids, vN, 'active'; files unless
    ``files=False``), crediting the community's data sources (OpenStreetMap, ODbL)."""
    from geogrid.maps.base import add_attribution
    from geogrid.maps.data import source_credits
    from geogrid.maps.plan import plan_map

    d = resolve_plan(conn, community_id=community_id, ref=draft, files=files)
    a = resolve_plan(conn, community_id=community_id, ref=against, files=files)
    f = read_frames(conn, community_id=community_id)
    m = plan_map(
        a.grids,
        d.grids,
        households=f.households[["geometry"]],
        fields=f.fields[["id", "geometry"]],
        # The diff's matching: a household moves only if its new grid descends from another.
        parents=diff_plans(a.grids, d.grids).parents,
        target=DEFAULT_TARGET,
        lang=lang,
        tiles=tiles,
        title=f"{f.community_code}: {d.label} / {a.label}",
    )
    add_attribution(m, source_credits(conn, community_ids=[community_id]))
    return m

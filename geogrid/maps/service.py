"""Maps from the database: read the frames (``geogrid.maps.data``), build the map, render it.

One function per map, used alike by ``GET /maps/…`` and ``geogrid map …`` so the served page
and the exported file are the same map. Parameters are validated here (``InvalidInput`` with
the field at fault), names are masked in ``data``, and the audience decides what is drawn.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import folium
import h3
import numpy as np
import pandas as pd
from markupsafe import Markup
from sqlalchemy import Connection

from geogrid.hotspots import DEFAULT_RESOLUTION, HotSpotResult, hotspots
from geogrid.maps import data
from geogrid.maps.base import add_attribution, context_of, data_value
from geogrid.maps.coverage import check_audience, check_measure, coverage_map
from geogrid.maps.hotspot import hotspot_map
from geogrid.maps.labels import PROGRAMMES, Lang, check_lang, pick, t
from geogrid.maps.tiles import MapSettings, tile_source
from geogrid.periods import EPOCH, Period, period, zone

__all__ = ["HotspotRequest", "build_coverage", "build_hotspots", "parse_codes"]

#: Public maps place requests at the centre of their H3 cell of this resolution (~25 m
#: edges): a request raised at a household's door (a hardship subsidy …) is not pinned to it.
PUBLIC_SNAP_RESOLUTION = 11


def parse_codes(value: str | Sequence[str] | None) -> list[str]:
    """``"a,b"`` or ``["a", "b,c"]`` → ``["a", "b", "c"]`` (blanks dropped)."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [c.strip() for item in items for c in str(item).split(",") if c.strip()]


def _names(scope: data.Scope, lang: Lang) -> Markup:
    """The communities' name(s) for a title: data values (``translate="no"``) in words."""
    c = scope.communities
    if len(c) == 1:
        row = c.iloc[0]
        return (
            data_value(row["name_en"] or row["name"]) if lang == "en" else (data_value(row["name"]))
        )
    district = next((v for v in c["district"] if v), "")
    words = f"{len(c)} {t('communities', lang)}"
    return (
        Markup("{} {}").format(data_value(district), words)
        if district
        else Markup("{}").format(words)
    )


def _plan_line(scope: data.Scope, lang: Lang, today: dt.date) -> Markup:
    plans = scope.plans
    if len(plans) == 1:
        p = plans.iloc[0]
        name = data_value(p["name"])
        quoted = Markup('"{}"' if lang == "en" else "「{}」").format(name)
        space = " " if lang == "en" else ""
        plan = Markup("{} v{}{}{}").format(t("plan", lang), int(p["version"]), space, quoted)
    else:
        versions = ", ".join(f"v{int(v)}" for v in sorted(set(plans["version"])))
        plan = Markup("{} {}").format(t("plan", lang), versions)
    return Markup("{} · {} {}").format(plan, t("as_of", lang), today.isoformat())


def _period_line(p: Period, lang: Lang) -> str:
    start = t("all_history", lang) if p.start == EPOCH else p.start.isoformat()
    return f"{t('period', lang)} {start} – {p.end.isoformat()}"


def build_coverage(
    conn: Connection,
    *,
    community: str | Sequence[str] | None = None,
    measure: str | None = None,
    date_from: str | dt.date | None = None,
    date_to: str | dt.date | None = None,
    audience: str | None = "public",
    lang: str | None = "zh",
    tiles: str | None = None,
    timezone: str = "Asia/Shanghai",
    settings: MapSettings | None = None,
) -> folium.Map:
    """The coverage map of one community, several (codes), or all of them (a district)."""
    measure_ = check_measure(measure)
    audience_ = check_audience(audience)
    lang_ = check_lang(lang)
    settings = settings or MapSettings.defaults()
    source = tile_source(tiles, lang=lang_, settings=settings)
    p = period(date_from, date_to, tz=timezone)
    scope = data.community_scope(conn, community_codes=parse_codes(community) or None, period=p)
    frames = data.coverage_frames(conn, scope=scope, include_members=audience_ == "official")
    today = dt.datetime.now(zone(timezone)).date()
    m = coverage_map(
        frames.grids,
        fields=frames.fields,
        uncovered=frames.uncovered,
        members=frames.members if audience_ == "official" else None,
        streets=frames.streets,
        boundary=scope.boundary,
        measure=measure_,
        audience=audience_,
        lang=lang_,
        tiles=source,
        title=Markup("{} · {}").format(_names(scope, lang_), t("coverage_title", lang_)),
        subtitle=[_plan_line(scope, lang_, today), _period_line(p, lang_)],
        synthetic=scope.synthetic,
        settings=settings,
    )
    add_attribution(m, data.source_credits(conn, community_ids=scope.community_ids))
    return m


@dataclass
class HotspotRequest:
    """The parameters of a hot-spot map (``GET /maps/hotspots``, ``geogrid map hotspots``)."""

    community: str | Sequence[str] | None = None
    date_from: str | dt.date | None = None
    date_to: str | dt.date | None = None
    status: str = "open"
    categories: Sequence[str] = ()
    programmes: Sequence[str] = ()
    unit: str = "h3"
    resolution: int = DEFAULT_RESOLUTION
    normalize: str = "households"
    min_households: float | str | None = None
    audience: str | None = "public"
    lang: str | None = "zh"
    tiles: str | None = None


def build_hotspots(
    conn: Connection,
    request: HotspotRequest,
    *,
    timezone: str = "Asia/Shanghai",
    settings: MapSettings | None = None,
    as_of: dt.datetime | None = None,
    request_url: str | None = None,
) -> tuple[folium.Map, HotSpotResult]:
    """The hot-spot map of open (or overdue) requests, and the statistics behind it.

    ``request_url`` (``{id}`` in it): on officials' maps, each request links to its page;
    public maps link nowhere (the public cannot open that page)."""
    from geogrid.errors import InvalidInput

    audience_ = check_audience(request.audience)
    lang_ = check_lang(request.lang)
    if request.status not in ("open", "overdue"):
        raise InvalidInput(
            f"status must be open or overdue, got {request.status!r}", field="status"
        )
    if request.unit not in ("h3", "grids"):
        raise InvalidInput(f"unit must be h3 or grids, got {request.unit!r}", field="unit")
    if request.normalize not in ("households", "none"):
        raise InvalidInput(
            f"normalize must be households or none, got {request.normalize!r}",
            field="normalize",
        )
    if not 6 <= int(request.resolution) <= 12:
        raise InvalidInput(
            f"resolution must be 6–12 (H3), got {request.resolution}", field="resolution"
        )
    settings = settings or MapSettings.defaults()
    source = tile_source(request.tiles, lang=lang_, settings=settings)
    p = period(request.date_from, request.date_to, tz=timezone)
    scope = data.community_scope(
        conn, community_codes=parse_codes(request.community) or None, period=p
    )
    categories = parse_codes(request.categories)
    programmes = parse_codes(request.programmes)
    if categories:
        data.check_categories(conn, categories)
    as_of = as_of or dt.datetime.now(dt.UTC)
    req = data.request_points(
        conn,
        community_ids=scope.community_ids,
        period=p,
        status=request.status,
        categories=categories,
        programmes=programmes,
        as_of=as_of,
    )
    homes = data.household_points(conn, community_ids=scope.community_ids)
    grids = data.grid_frame(conn, scope=scope)
    area = scope.boundary.geometry.union_all()
    result = hotspots(
        data.points_frame(req),
        data.points_frame(homes),
        unit=request.unit,  # type: ignore[arg-type]
        resolution=int(request.resolution),
        grids=grids,
        area=area,
        normalize=request.normalize,  # type: ignore[arg-type]
        min_households=request.min_households,  # type: ignore[arg-type]
    )
    received = pd.to_datetime(req["received_at"], utc=True)
    req["days_open"] = ((pd.Timestamp(as_of) - received).dt.total_seconds() // 86400).astype(
        "Int64"
    )
    if audience_ == "public":
        req = _snap(req, PUBLIC_SNAP_RESOLUTION)
    what = t("only_overdue" if request.status == "overdue" else "only_open", lang_)
    filters: list[str] = [what]
    if categories:
        filters.append(f"{t('category', lang_)}: {', '.join(categories)}")
    if programmes:
        filters.append(
            f"{t('programme', lang_)}: {', '.join(pick(PROGRAMMES, c, lang_) for c in programmes)}"
        )
    today = dt.datetime.now(zone(timezone)).date()
    m = hotspot_map(
        result,
        requests=req,
        grids=grids,
        boundary=scope.boundary,
        lang=lang_,
        tiles=source,
        title=Markup("{} · {}").format(_names(scope, lang_), t("hotspot_title", lang_)),
        subtitle=[
            _plan_line(scope, lang_, today),
            f"{_period_line(p, lang_)} · {' · '.join(filters)}",
            t("public" if audience_ == "public" else "official", lang_),
        ],
        synthetic=scope.synthetic,
        request_url=request_url if audience_ == "official" else None,
        settings=settings,
    )
    add_attribution(m, data.source_credits(conn, community_ids=scope.community_ids))
    ctx = context_of(m)
    assert ctx is not None
    ctx.meta["audience"] = audience_
    return m, result


def _snap(req: pd.DataFrame, resolution: int) -> pd.DataFrame:
    """Requests moved to the centre of their H3 cell (public maps)."""
    out = req.copy()
    if out.empty:
        return out
    centres = [
        h3.cell_to_latlng(h3.latlng_to_cell(lat, lon, resolution))
        for lon, lat in zip(out["lon"], out["lat"], strict=True)
    ]
    out["lat"] = np.array([c[0] for c in centres], dtype=float)
    out["lon"] = np.array([c[1] for c in centres], dtype=float)
    return out

"""``geogrid map …``: the maps of ``GET /maps/…`` as standalone HTML files (and PNG prints).

Registered by ``geogrid/cli.py`` (``app.add_typer(map_app, name="map")``). Heavy imports
(Folium, esda) happen inside the commands, so ``geogrid --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from geogrid.areas import area_codes
from geogrid.clikit import DistrictOpt, SubdistrictOpt, errors, open_engine, settings_for
from geogrid.clikit import err as _err
from geogrid.clikit import out as _out
from geogrid.errors import InvalidInput
from geogrid.settings import MapSettings

map_app = typer.Typer(
    help="Interactive maps (Folium/Leaflet) as standalone HTML files that work offline.",
    no_args_is_help=True,
)


DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database",
        envvar="GEOGRID_DATABASE_URL",
        help="SQLAlchemy URL (default sqlite:///var/geogrid.sqlite).",
        show_default=False,
    ),
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="HTML file to write (standalone: assets inlined).")
]
PngOpt = Annotated[
    Path | None,
    typer.Option("--png", help="Also render a PNG through headless Chromium (GEOGRID_CHROMIUM)."),
]
CommunityOpt = Annotated[
    str | None,
    typer.Option("--community", help="Community code(s), comma-separated (default: all)."),
]
FromOpt = Annotated[
    str | None, typer.Option("--from", help="First date, inclusive (default: all history).")
]
ToOpt = Annotated[str | None, typer.Option("--to", help="Last date, inclusive (default: today).")]
AudienceOpt = Annotated[
    str,
    typer.Option(
        "--audience", help="public (no personal data) or official (masked names, positions)."
    ),
]
LangOpt = Annotated[str, typer.Option("--lang", help="zh (default) or en.")]
TilesOpt = Annotated[
    str | None,
    typer.Option(
        "--tiles", help="none, osm, tianditu (GEOGRID_TIANDITU_KEY), amap (GCJ-02) or custom."
    ),
]


def _write(m: Any, out: Path | None, png: Path | None, settings: MapSettings) -> None:
    from geogrid.maps.base import render_html

    if out is None and png is None:
        raise InvalidInput("give --out FILE.html and/or --png FILE.png", field="out")
    page = render_html(m, assets="inline", assets_dir=settings.map_assets_dir)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
        _err.print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)", highlight=False)
    if png is not None:
        from geogrid.maps.png import render_png

        render_png(page, png, chromium=settings.chromium)
        _err.print(f"wrote {png}", highlight=False)


@map_app.command("coverage")
def coverage(
    out: OutOpt = None,
    png: PngOpt = None,
    community: CommunityOpt = None,
    subdistrict: SubdistrictOpt = None,
    district: DistrictOpt = None,
    measure: Annotated[
        str,
        typer.Option(help="households_per_member, visit_coverage or open_per_100."),
    ] = "households_per_member",
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    audience: AudienceOpt = "public",
    lang: LangOpt = "zh",
    tiles: TilesOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Grids coloured by a measure, fields per member, uncovered households (as GET
    /maps/coverage)."""
    from geogrid.maps.service import build_coverage

    with errors():
        settings = settings_for(database)
        engine = open_engine(database, settings=settings)
        with engine.connect() as conn:
            m = build_coverage(
                conn,
                community=area_codes(
                    conn, community=community, subdistrict=subdistrict, district=district
                ),
                measure=measure,
                date_from=date_from,
                date_to=date_to,
                audience=audience,
                lang=lang,
                tiles=tiles,
                timezone=settings.service.timezone,
                settings=settings.maps,
            )
        _write(m, out, png, settings.maps)


@map_app.command("hotspots")
def hotspots(
    out: OutOpt = None,
    png: PngOpt = None,
    community: CommunityOpt = None,
    subdistrict: SubdistrictOpt = None,
    district: DistrictOpt = None,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    status: Annotated[str, typer.Option(help="open, or overdue (open past the SLA).")] = "open",
    category: Annotated[
        list[str] | None, typer.Option(help="Category code (repeat, or comma-separated).")
    ] = None,
    programme: Annotated[
        list[str] | None,
        typer.Option(help="convenience, integration, care, mediation or safety (repeatable)."),
    ] = None,
    unit: Annotated[str, typer.Option(help="h3 (hexagons) or grids.")] = "h3",
    resolution: Annotated[int, typer.Option(help="H3 resolution (10 ≈ 66 m edges).")] = 10,
    normalize: Annotated[
        str, typer.Option(help="households (per 100 households) or none (counts).")
    ] = "households",
    min_households: Annotated[
        str | None,
        typer.Option(help="Floor of a feature's households: a number or 'median'."),
    ] = None,
    audience: AudienceOpt = "public",
    lang: LangOpt = "zh",
    tiles: TilesOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the statistics as JSON.")] = False,
    database: DatabaseOpt = None,
) -> None:
    """Gi* hot and cold spots of open (or overdue) requests (as GET /maps/hotspots)."""
    from geogrid.maps.service import HotspotRequest, build_hotspots

    with errors():
        floor: float | str | None = min_households
        if min_households not in (None, "median"):
            try:
                floor = float(str(min_households))
            except ValueError:
                raise InvalidInput(
                    f"--min-households must be a number or 'median', got {min_households!r}",
                    field="min_households",
                ) from None
        settings = settings_for(database)
        engine = open_engine(database, settings=settings)
        with engine.connect() as conn:
            m, result = build_hotspots(
                conn,
                HotspotRequest(
                    community=area_codes(
                        conn, community=community, subdistrict=subdistrict, district=district
                    ),
                    date_from=date_from,
                    date_to=date_to,
                    status=status,
                    categories=category or [],
                    programmes=programme or [],
                    unit=unit,
                    resolution=resolution,
                    normalize=normalize,
                    min_households=floor,
                    audience=audience,
                    lang=lang,
                    tiles=tiles,
                ),
                timezone=settings.service.timezone,
                settings=settings.maps,
            )
        _write(m, out, png, settings.maps)
        summary = result.summary()
        if as_json:
            sys.stdout.write(json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
        elif result.status == "ok":
            _out.print(
                f"{summary['features']} features, {summary['requests']} requests: "
                f"{summary['hot']} hot, {summary['cold']} cold (FDR-corrected)",
                highlight=False,
            )
        else:
            _out.print(f"no hot-spot statistics: {result.message}", highlight=False)


@map_app.command("assets")
def assets(
    force: Annotated[bool, typer.Option(help="Re-install even if present.")] = False,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Target folder (default GEOGRID_MAP_ASSETS_DIR).")
    ] = None,
) -> None:
    """Install Leaflet & co. from the npm registry into a checkout (scripts/setup.sh runs it)."""
    from geogrid.maps.assets import assets_dir, install_assets

    with errors():
        target = directory or assets_dir(settings_for(None).maps.map_assets_dir)
        versions = install_assets(target, force=force)
        listed = ", ".join(f"{k} {v}" for k, v in versions.items())
        _out.print(f"map assets ready in {target} ({listed})", highlight=False)

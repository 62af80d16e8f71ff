"""Words on the maps: English source strings (marked with ``N_``) whose Chinese is in the
Babel catalogue (``geogrid/locale/zh/LC_MESSAGES/maps.po``), shown in the viewer's language
with :func:`geogrid.i18n.translate` — one translation mechanism for pages, maps and the CLI.

:func:`t` takes a key of :data:`_TEXT` (the maps' own names for their words) and fills
``{name}`` placeholders; :func:`pick` labels a code (a member's kind, a programme, a status).
"""

from __future__ import annotations

from typing import Final

from geogrid.errors import InvalidInput
from geogrid.i18n import LANGS, N_, REQUEST_STATUS_NAMES, Lang, translate

__all__ = ["KINDS", "LANGS", "PROGRAMMES", "STATUSES", "Lang", "check_lang", "pick", "t"]

_TEXT: Final[dict[str, str]] = {
    "coverage_title": N_("Grid coverage map"),
    "hotspot_title": N_("Hot spots of unresolved requests"),
    "plan_title": N_("Boundary plan comparison"),
    "plan": N_("plan"),
    "as_of": N_("as of"),
    "period": N_("period"),
    "all_history": N_("all history"),
    "public": N_("public"),
    "official": N_("officials (names masked)"),
    "synthetic": N_("Demo data: places, people and requests are fictional"),
    "communities": N_("communities"),
    "no_data": N_("no data"),
    "layer_grids": N_("Grids"),
    "layer_grid_labels": N_("Grid codes and names"),
    "layer_fields": N_("Responsibility fields (per member)"),
    "layer_uncovered": N_("Households outside every field"),
    "layer_members": N_("Members' positions"),
    "layer_streets": N_("Streets"),
    "layer_boundary": N_("Community boundary"),
    "layer_hotspots": N_("Hot and cold spots (Gi*)"),
    "layer_heat": N_("Density of open requests"),
    "layer_requests": N_("Open requests (clustered)"),
    "layer_active": N_("Active plan's grids"),
    "layer_draft": N_("Draft plan's grids"),
    "layer_moved_households": N_("Households changing grid"),
    "layer_moved_fields": N_("Fields changing grid"),
    "households_per_member": N_("Households per member"),
    "visit_coverage": N_("Visit coverage"),
    "open_per_100": N_("Open requests per 100 households"),
    "grid_code": N_("Grid code"),
    "grid_name": N_("Grid name"),
    "community": N_("Community"),
    "households": N_("Households"),
    "residents": N_("Residents"),
    "members": N_("Members"),
    "lead_member": N_("Grid lead"),
    "branch": N_("Branch"),
    "fields": N_("Responsibility fields"),
    "fields_vacant": N_("Vacant fields"),
    "uncovered": N_("Households outside fields"),
    "open_requests": N_("Open requests"),
    "received": N_("Requests received"),
    "resolved": N_("Resolved"),
    "resolution_rate": N_("Resolution rate"),
    "visited": N_("Households visited"),
    "field": N_("Field"),
    "member": N_("Member"),
    "assigned": N_("held"),
    "vacant": N_("vacant"),
    "kind": N_("Kind"),
    "count": N_("Count"),
    "street": N_("Street"),
    "cell": N_("Cell"),
    "requests_in_cell": N_("Open requests"),
    "rate_per_100": N_("Per 100 households"),
    "z_score": N_("Gi* z-score"),
    "p_value": N_("p-value"),
    "confidence": N_("Confidence"),
    "hot": N_("Hot spot"),
    "cold": N_("Cold spot"),
    "not_significant": N_("Not significant"),
    "category": N_("Category"),
    "programme": N_("Programme"),
    "status": N_("Status"),
    "received_on": N_("Received on"),
    "days_open": N_("Days open"),
    "overdue": N_("Overdue"),
    "only_open": N_("open requests"),
    "only_overdue": N_("overdue open requests"),
    "unit_h3": N_("H3 hexagons (resolution {res})"),
    "unit_grids": N_("grids"),
    "fdr_note": N_("Getis-Ord Gi*, Benjamini-Hochberg false-discovery-rate corrected"),
    "too_few_features": N_(
        "Too few features ({n}; at least {min} are needed) for hot-spot statistics: counts "
        "only, no hot or cold spots"
    ),
    "too_few_requests": N_(
        "Too few requests ({n}; at least {min} are needed) for hot-spot statistics: counts "
        "only, no hot or cold spots"
    ),
    "no_variation": N_("Every feature has the same value: no hot or cold spots"),
    "outside_units": N_("{n} requests lie outside every grid"),
    "moved_from": N_("From grid"),
    "moved_to": N_("To grid"),
    # legends, popups and words for people
    "legend_layers": N_("On the map"),
    "yes": N_("yes"),
    "no": N_("no"),
    "request": N_("Request"),
    "grid": N_("Grid"),
    "open_request_page": N_("Open the request's page"),
    "hot_99": N_("Hot spot {p}: this cluster of unresolved requests is very unlikely to be chance"),
    "hot_95": N_("Hot spot {p}: this cluster of unresolved requests is unlikely to be chance"),
    "hot_90": N_("Hot spot {p}: this cluster of unresolved requests is probably not chance"),
    "cold_99": N_("Cold spot {p}: so few unresolved requests here is very unlikely to be chance"),
    "cold_95": N_("Cold spot {p}: so few unresolved requests here is unlikely to be chance"),
    "cold_90": N_("Cold spot {p}: so few unresolved requests here is probably not chance"),
    "not_significant_long": N_("Not significant: no cluster beyond chance"),
    "meaning": N_("What it means"),
    "no_requests_no_spot": N_(
        "Only cells with requests are coloured: a cell without requests is never a hot or cold spot"
    ),
    "heat_legend": N_(
        "Density of open requests (heat layer, off by default): where requests lie close "
        "together, blue sparse to red dense; not a hot or cold spot"
    ),
    "requests_legend": N_(
        "Open requests, clustered: the number in a circle is how many requests it groups"
    ),
    "requests_legend_overdue": N_("Overdue request"),
    "grid_outline": N_("Grid boundary, with its code and name"),
    "boundary_legend": N_("Community boundary"),
    "uncovered_public_legend": N_(
        "Households outside every field, counted per hexagon (the tooltip gives the number)"
    ),
    "uncovered_official_legend": N_(
        "Households outside every field: the number in an orange circle counts households, "
        "not requests"
    ),
    "uncovered_title": N_("{n} households outside every field"),
    "field_held_legend": N_("Responsibility field held by a member (dotted outline)"),
    "field_vacant_legend": N_("Vacant responsibility field (red dashes)"),
    "members_legend": N_("Members' positions (off by default; clustered)"),
    "streets_legend": N_("Street"),
    # plan
    "moved_really": N_("Households really changing grid (new territory): {n}"),
    "renumbered_grids": N_("Grids only renumbered (same territory, new code): {codes}"),
    "renumbered_legend": N_("Grid only renumbered: same territory, new code"),
    "renumbered_from": N_("Renumbered from"),
    "descends_from": N_("Within the active grid"),
    "recoded_households": N_(
        "Households whose grid code changes but who stay in their grid's territory "
        "(grids split or renumbered): {n}"
    ),
    "target_under": N_("Under {low} households"),
    "target_within": N_("{low}–{high} households (target)"),
    "target_over": N_("Over {high} households"),
    "target_heading": N_("Draft grids: households against the target"),
    "active_legend": N_("Active plan's grids (grey dashes)"),
}

KINDS: Final[dict[str, str]] = {
    "resident": N_("resident"),
    "registered_elsewhere": N_("registered elsewhere"),
    "duty_post": N_("duty post"),
    "new_org": N_("new organisation"),
    "stationed": N_("stationed"),
}

PROGRAMMES: Final[dict[str, str]] = {
    "convenience": N_("convenience"),
    "integration": N_("migrant integration"),
    "care": N_("special-population care"),
    "mediation": N_("dispute mediation"),
    "safety": N_("public safety"),
}

STATUSES: Final[dict[str, str]] = REQUEST_STATUS_NAMES


def check_lang(lang: str | None) -> Lang:
    value = (lang or "zh").strip().lower()
    if value in ("zh", "zh-cn", "cn"):
        return "zh"
    if value in ("en", "en-gb", "en-us"):
        return "en"
    raise InvalidInput(f"lang must be zh or en, got {lang!r}", field="lang")


def t(key: str, lang: Lang, **values: object) -> str:
    """The text ``key`` in ``lang``, with ``{name}`` placeholders filled."""
    text = translate(lang, _TEXT[key])
    return text.format(**values) if values else text


def pick(table: dict[str, str], key: str | None, lang: Lang) -> str:
    """A code's label from ``table`` in ``lang`` (the code itself when unknown)."""
    if key is None:
        return "–"
    source = table.get(key)
    return key if source is None else translate(lang, source)

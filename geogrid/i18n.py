"""One translation mechanism for pages, maps and the CLI: Babel catalogues, Chinese by default.

Source strings are English (``_("Sign in")``; ``N_`` marks one to translate later);
``geogrid/locale/zh/LC_MESSAGES/*.po`` hold their Chinese. The catalogue of a language is
every ``.po`` file of its folder read together (one file per area — ``web.po``, ``maps.po``,
``cli.po`` … — so that areas do not collide), at first use, straight from the ``.po`` text:
there is no compile step, for users or for the wheel.
English needs no catalogue: an English page shows the source strings.

``tests/test_i18n.py`` extracts every message from the Python code and the templates (Babel's
extractors, as ``pybabel extract`` would) and fails on one without its Chinese, so a Chinese page
never shows an untranslated English string, and an English page never a Chinese one.

Figures are formatted for people here too (:func:`percent`, :func:`number`, :func:`local_time`):
rates are fractions 0–1 in data and percentages only on screen (../shared/DESIGN.md).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Final, Literal

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations, Translations

from geogrid.errors import InvalidInput
from geogrid.periods import zone

__all__ = [
    "DEFAULT_LANG",
    "LANGS",
    "N_",
    "REQUEST_STATUS_NAMES",
    "Lang",
    "lang_of",
    "local_time",
    "number",
    "percent",
    "translate",
    "translations",
    "translator",
]

Lang = Literal["zh", "en"]
LANGS: Final[tuple[Lang, ...]] = ("zh", "en")
DEFAULT_LANG: Final[Lang] = "zh"
LOCALE_DIR: Final = Path(__file__).resolve().parent / "locale"
#: Babel's locale of each language (number formats: 15.1%, 12,100).
_BABEL_LOCALE: Final[dict[str, str]] = {"zh": "zh_Hans_CN", "en": "en"}


def N_(message: str) -> str:  # gettext's name: mark now, translate later
    """Mark ``message`` for the catalogue without translating it now (a label in a table
    that is translated when shown, with :func:`translate`)."""
    return message


#: Each request status (``geogrid.db.models.RequestStatus``) as people read it: one table for
#: the pages, the maps and the CLI.
REQUEST_STATUS_NAMES: Final[dict[str, str]] = {
    "received": N_("received"),
    "registered": N_("registered"),
    "dispatched": N_("dispatched"),
    "in_progress": N_("in progress"),
    "escalated": N_("escalated"),
    "resolved": N_("resolved"),
    "closed": N_("closed"),
    "rejected": N_("rejected"),
}


def lang_of(value: str | None, *, default: Lang = DEFAULT_LANG) -> Lang:
    """``value`` as a language of :data:`LANGS` (``zh-CN``, ``zh_Hans`` and ``en-GB`` too);
    ``default`` when empty; :class:`InvalidInput` for a language geogrid does not speak."""
    if not value:
        return default
    head = value.strip().lower().replace("_", "-").split("-", 1)[0]
    if head == "zh":
        return "zh"
    if head == "en":
        return "en"
    raise InvalidInput(f"unknown language {value!r}: use zh or en", field="lang")


def catalog(lang: Lang) -> Catalog:
    """Every message of ``lang``'s ``.po`` files in one catalogue (a later file wins a
    duplicate; ``tests/test_i18n.py`` refuses duplicates that disagree)."""
    merged = Catalog(locale=_BABEL_LOCALE[lang].split("_", 1)[0], domain="geogrid")
    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    for po in sorted(folder.glob("*.po")) if folder.is_dir() else []:
        with po.open("rb") as fh:
            part = read_po(fh, locale=merged.locale)
        for message in part:
            if message.id and message.string and not message.fuzzy:
                merged[message.id] = message
    return merged


@cache
def translations(lang: Lang) -> NullTranslations:
    """``lang``'s translations (gettext interface), read once per process."""
    if lang == "en":
        return NullTranslations()
    buffer = io.BytesIO()
    write_mo(buffer, catalog(lang))
    buffer.seek(0)
    return Translations(buffer, domain="geogrid")


def translate(lang: Lang, message: str) -> str:
    """``message`` (English source) in ``lang``: for a message marked with :func:`N_`
    elsewhere. Code that speaks one language at a time takes :func:`translator`'s ``_``."""
    return translations(lang).gettext(message)


def translator(lang: Lang) -> tuple[Callable[[str], str], Callable[[str, str, int], str]]:
    """``_, ngettext`` of ``lang``: ``_("Sign in")`` is what Babel's extractor finds."""
    t = translations(lang)
    return t.gettext, t.ngettext


def percent(value: float | None, lang: Lang = DEFAULT_LANG, *, digits: int = 1) -> str:
    """A rate 0–1 as a percentage for people: ``0.15144541`` → ``15.1%``; None → ``–``."""
    if value is None:
        return "–"
    pattern = "#,##0." + "0" * digits + "%" if digits else "#,##0%"
    return format_percent(value, format=pattern, locale=_BABEL_LOCALE[lang])


def number(value: float | int | None, lang: Lang = DEFAULT_LANG, *, digits: int = 0) -> str:
    """A count or measure for people: thousands grouped, ``digits`` decimals at most."""
    if value is None:
        return "–"
    pattern = "#,##0." + "#" * digits if digits else "#,##0"
    return format_decimal(value, format=pattern, locale=_BABEL_LOCALE[lang])


def local_time(value: dt.datetime | None, tz: str, *, seconds: bool = False) -> str:
    """An instant as people of the community read it: in the community's zone, to the minute
    (``2026-12-06 09:31``); naive values are UTC, as the database stores them."""
    if value is None:
        return "–"
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(zone(tz)).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")

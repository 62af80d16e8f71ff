"""The one translation mechanism (geogrid.i18n): every message has its Chinese, and figures
are formatted for people."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path

import pytest

from geogrid import i18n
from geogrid.errors import InvalidInput

ROOT = Path(__file__).resolve().parent.parent


def _messages_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("geogrid_messages", ROOT / "scripts/messages.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_message_has_chinese() -> None:
    script = _messages_script()
    found = list(script.extracted())
    # The extractor reads Python and templates alike (a broken one would pass vacuously).
    assert any(w.endswith(".py") for _, w, _ in found) and any(
        w.endswith(".html") for _, w, _ in found
    )
    gaps = script.missing()
    assert not gaps, "messages without Chinese (python scripts/messages.py):\n" + "\n".join(
        f"{w}:{line}: {t!r}" for t, w, line in gaps
    )


def test_catalogue_files_agree() -> None:
    """A message translated in two area files has one Chinese."""
    from babel.messages.pofile import read_po

    seen: dict[str, tuple[str, str]] = {}
    for po in sorted((i18n.LOCALE_DIR / "zh" / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as fh:
            for message in read_po(fh):
                if not message.id:
                    continue
                assert isinstance(message.id, str), f"{po.name}: plural forms are not used"
                if message.id in seen:
                    other, where = seen[message.id]
                    assert other == message.string, (
                        f"{message.id!r}: {other!r} in {where}, {message.string!r} in {po.name}"
                    )
                seen[message.id] = (str(message.string), po.name)
    assert len(seen) > 30


def test_translations() -> None:
    assert i18n.translate("zh", "Sign in") == "登录"
    assert i18n.translate("en", "Sign in") == "Sign in"
    _, _n = i18n.translator("zh")
    assert _("Dashboard") == "驾驶舱"
    # A message not in the catalogue is shown as written, never an error.
    assert i18n.translate("zh", "no such message") == "no such message"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("zh", "zh"), ("zh-CN", "zh"), ("zh_Hans", "zh"), ("en-GB", "en"), ("", "zh"), (None, "zh")],
)
def test_lang_of(value: str | None, expected: str) -> None:
    assert i18n.lang_of(value) == expected


def test_lang_of_refuses_others() -> None:
    with pytest.raises(InvalidInput, match="unknown language 'fr'"):
        i18n.lang_of("fr")


def test_figures_for_people() -> None:
    assert i18n.percent(0.15144541189733884) == "15.1%"
    assert i18n.percent(84 / 86, "en") == "97.7%"
    assert i18n.percent(1.0, digits=0) == "100%"
    assert i18n.percent(None) == "–"
    assert i18n.number(12100.4) == "12,100"
    assert i18n.number(3.14159, "en", digits=2) == "3.14"
    assert i18n.number(3.0, "en", digits=2) == "3"


def test_local_time_in_the_community_zone() -> None:
    utc = dt.datetime(2026, 12, 5, 23, 30, tzinfo=dt.UTC)
    assert i18n.local_time(utc, "Asia/Shanghai") == "2026-12-06 07:30"
    assert i18n.local_time(utc.replace(tzinfo=None), "Europe/Helsinki") == "2026-12-06 01:30"
    assert i18n.local_time(None, "Asia/Shanghai") == "–"

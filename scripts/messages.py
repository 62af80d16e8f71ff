"""The messages of geogrid's code and templates, against the Chinese catalogue.

    python scripts/messages.py            # list messages without Chinese (exit 1 if any)
    python scripts/messages.py --stub F   # also write them to F as .po entries to fill in

Extraction is Babel's, as ``pybabel extract`` does it: ``_``, ``N_`` and ``ngettext`` in the
Python of ``geogrid/`` and ``api/``, and the ``{{ _("…") }}`` / ``{% trans %}`` of the templates
(Jinja2's extractor). ``tests/test_i18n.py`` runs the same check.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.extract import extract_from_dir

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
METHODS = [
    ("**/vendor/**", "ignore"),
    ("**.py", "python"),
    ("**/templates/**.html", "jinja2"),
]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "false"}}


def extracted() -> Iterator[tuple[str, str, int]]:
    """(message, file, line) of every marked message."""
    for folder in ("geogrid", "api"):
        for filename, lineno, message, _comments, _context in extract_from_dir(
            ROOT / folder, METHODS, options_map=OPTIONS, keywords=KEYWORDS, strip_comment_tags=True
        ):
            for text in message if isinstance(message, tuple) else (message,):
                if text:
                    yield text, f"{folder}/{filename}", lineno


def missing() -> list[tuple[str, str, int]]:
    sys.path.insert(0, str(ROOT))
    from geogrid.i18n import catalog

    zh = catalog("zh")
    seen: set[str] = set()
    out = []
    for text, where, line in extracted():
        if text in seen:
            continue
        seen.add(text)
        message = zh.get(text)
        if message is None or not message.string:
            out.append((text, where, line))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stub", type=Path, help="write the missing messages here as .po")
    args = parser.parse_args()
    gaps = missing()
    for text, where, line in gaps:
        print(f"{where}:{line}: {text!r}")
    if args.stub:
        with args.stub.open("w", encoding="utf-8") as fh:
            for text, where, line in gaps:
                escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
                fh.write(f'#: {where}:{line}\nmsgid "{escaped}"\nmsgstr ""\n\n')
    print(f"{len(gaps)} message(s) without Chinese", file=sys.stderr)
    return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main())

"""A printable PNG of a map page, rendered by headless Chromium (no Python browser driver).

Chromium is the one configured (``GEOGRID_CHROMIUM``, passed down by the caller), else the
first of ``chromium``, ``chromium-browser``, ``google-chrome`` on the ``PATH`` (Debian:
``apt-get install chromium``). Chinese labels need a
CJK font (Debian: ``fonts-noto-cjk``). The page must be standalone (assets inlined): it is
opened from a temporary file, with the flags this kind of machine needs
(../shared/DESIGN.md, "Known traps").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from geogrid.errors import ConfigurationError

__all__ = ["find_chromium", "render_png"]

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium(configured: str | None = None) -> str:
    """The Chromium binary — ``configured`` (a path or a name on the PATH, from
    ``MapSettings.chromium``) or the first found — or :class:`ConfigurationError` saying how to
    get one."""
    if configured:
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return configured
        found = shutil.which(configured)
        if found:
            return found
        raise ConfigurationError(
            f"GEOGRID_CHROMIUM={configured!r} is not an executable", field="chromium"
        )
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise ConfigurationError(
        "no Chromium found for --png: install it (Debian: apt-get install chromium "
        "fonts-noto-cjk) or set GEOGRID_CHROMIUM",
        field="chromium",
    )


def render_png(
    page: str,
    out: Path,
    *,
    size: tuple[int, int] = (1600, 1100),
    wait_ms: int = 4000,
    chromium: str | None = None,
) -> Path:
    """Render the standalone HTML ``page`` to ``out`` (PNG) and return its path.

    ``wait_ms`` of virtual time lets the page's scripts draw the map (it does not wait for
    tiles from a slow server: use ``tiles=none`` for prints made offline).
    """
    binary = find_chromium(chromium)
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="geogrid-png-") as tmp:
        html = Path(tmp) / "map.html"
        html.write_text(page, encoding="utf-8")
        args = [
            binary,
            "--headless",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={tmp}/profile",
            f"--window-size={size[0]},{size[1]}",
            f"--virtual-time-budget={wait_ms}",
            f"--screenshot={out}",
            html.as_uri(),
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to sandbox as root (CI)
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
        except subprocess.TimeoutExpired:
            raise ConfigurationError(
                "Chromium took over 120 s to render the map", field="png"
            ) from None
        if done.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
            raise ConfigurationError(
                f"Chromium could not render the map (exit {done.returncode}): "
                f"{done.stderr.strip()[-400:]}",
                field="png",
            )
    return out

"""The wheel's build hook: the maps' browser assets go into the package.

Everything else is declared in ``pyproject.toml``. ``build_py`` fetches Leaflet and its plugins
from the npm registry, pinned by version and sha512 (``geogrid/maps/vendoring.py``, loaded by
path: the build has none of geogrid's dependencies), into ``geogrid/maps/vendor`` of the wheel,
so an installed geogrid serves working maps offline. It fails with the reason when the registry
cannot be reached. Editable installs skip it: ``scripts/setup.sh`` fills the checkout's folder.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _vendoring():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "_geogrid_vendoring", HERE / "geogrid" / "maps" / "vendoring.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class BuildPyWithAssets(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        vendoring = _vendoring()
        target = Path(self.build_lib) / "geogrid" / "maps" / "vendor"
        try:
            versions = vendoring.vendor(target)
        except vendoring.FetchError as exc:
            raise SystemExit(f"error: geogrid's build needs the map assets: {exc}") from None
        listed = ", ".join(f"{k} {v}" for k, v in versions.items())
        print(f"geogrid: map assets ({listed}) put into {target}")


setup(cmdclass={"build_py": BuildPyWithAssets})

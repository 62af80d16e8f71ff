"""The synthetic demo community, modelled on Jinyuan Community (金源社区), Huizhou.

:func:`generate_demo` builds it as plain frames (no database); ``geogrid.demo.load`` writes
them into one. Everything generated is fictional; see :mod:`geogrid.demo.generate`.
"""

from geogrid.demo.generate import DemoData, generate_demo

__all__ = ["DemoData", "generate_demo"]

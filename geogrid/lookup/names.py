"""Which communities' gazetteers may match an address exactly: their names in the text.

A gazetteer (``geogrid.lookup.address``) matches an address exactly only through a known name
(street, compound, alias) found in the canonical text; a community that knows none of the
text's names can answer only a fuzzy match, or nothing. :class:`NameRoutes` maps every
name of every community to the communities that know it, so an address is matched by the
few communities naming it instead of all ~1,000 of a city (~50 µs each, ~50 ms in all). Only
when no community knows a name of the text are all of them asked (the fuzzy path, slow and
rare: a misspelt name).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from geogrid.lookup.address import canonical_address

__all__ = ["NameRoutes"]

#: Shortest key a gazetteer keeps (``_Lexicon.add_name``: one character would match anything).
_MIN_KEY: int = 2


class NameRoutes:
    """Name key → positions of the communities knowing it (``names[p]``: community p's)."""

    def __init__(self, names: Sequence[Collection[str] | None]) -> None:
        routes: dict[str, list[int]] = {}
        for pos, keys in enumerate(names):
            for key in keys or ():
                routes.setdefault(key, []).append(pos)
        self._routes = {k: tuple(v) for k, v in routes.items()}
        self._first = {k[0] for k in self._routes}
        self._maxlen = max(map(len, self._routes), default=0)

    def communities(self, text: str) -> list[int] | None:
        """Positions (ascending) of the communities knowing a name in ``text``; None when
        none does (then every community must be asked)."""
        s = canonical_address(text)
        found: set[int] = set()
        routes, maxlen = self._routes, self._maxlen
        for i, ch in enumerate(s):
            if ch not in self._first:
                continue
            for end in range(i + _MIN_KEY, min(len(s), i + maxlen) + 1):
                hit = routes.get(s[i:end])
                if hit is not None:
                    found.update(hit)
        return sorted(found) if found else None

"""Point and address lookups over every community of a database, kept current.

:class:`LookupService` holds an index (``geogrid.lookup.index``) and an address gazetteer
(``geogrid.lookup.address``) for every community in the database and answers single
lookups and batches from them; it never queries the database per lookup
(``../shared/DESIGN.md``: set-based work in SQL, the hot lookup path from an in-memory
spatial index). A background thread (:class:`~geogrid.background.Poller`) reads the change
counters (``data_versions``, bumped by triggers on every table the indexes are built from)
once per ``poll_interval`` — one single-row read — and when a counter moved it builds new
indexes off the request path and swaps one reference. A change made by another process (the
CLI) is therefore answered within ``poll_interval`` + build time (≈ 1 s + tens of ms for a
community of the demo's size).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine

from geogrid import crs as gcrs
from geogrid.background import Poller
from geogrid.db import dialect, queries
from geogrid.errors import DatabaseNotReady, GeogridError, InvalidInput, NotFound
from geogrid.lookup.address import AddressMatch, Gazetteer
from geogrid.lookup.cells import Cells, IntArray
from geogrid.lookup.extents import Extents
from geogrid.lookup.frames import gazetteer_frames, read_frames
from geogrid.lookup.index import CellsFactory, LookupIndex
from geogrid.lookup.names import NameRoutes
from geogrid.lookup.places import CommunityInfo, GridInfo, PointLookup
from geogrid.lookup.points import check_point, convert_point, crs_kind, parse_point
from geogrid.lookup.result import LookupResult, match_dict, round_coord
from geogrid.lookup.store import CellsStore

__all__ = ["MAX_BATCH", "LookupService"]

log = logging.getLogger("geogrid.lookup")

#: Most items one batch may hold (``POST /v1/lookup/batch``).
MAX_BATCH: Final = 10_000


@dataclass(frozen=True)
class _CommunityState:
    info: CommunityInfo
    index: LookupIndex | None
    #: Why there is no index (no active plan, no grids), for the error.
    problem: str | None
    gazetteer: Gazetteer | None
    #: The community's change counters (spatial, gazetteer) this state was built at.
    versions: tuple[int, int] = (0, 0)


#: From this many communities with an index on, a lookup asks only those whose extent covers
#: the point (:class:`Extents`) and those knowing a name of the address (:class:`NameRoutes`);
#: below, it asks each in turn (as fast, and nothing to build).
_ROUTED_FROM: Final = 8
#: From as many communities on, each layer's bucket grid has at most this many cells a side
#: (instead of 256): ~1,000 communities × 3 layers at 256² cells would take ~7 GB and ~30
#: min to build; at 64² a lookup tests a few more polygons (~1 µs each) in mixed cells.
_CITY_CELLS_SIDE: Final = 64


@dataclass(frozen=True)
class _Scope:
    """The communities a lookup may answer from, with what finds the few that matter."""

    communities: tuple[_CommunityState, ...]
    indexed: tuple[_CommunityState, ...] = ()
    gazetteers: tuple[_CommunityState, ...] = ()
    extents: Extents | None = None
    routes: NameRoutes | None = None

    @classmethod
    def of(cls, communities: tuple[_CommunityState, ...], *, routed: bool) -> _Scope:
        indexed = tuple(s for s in communities if s.index is not None)
        gazetteers = tuple(s for s in communities if s.gazetteer is not None)
        routed = routed and len(indexed) >= _ROUTED_FROM
        extents = Extents([s.index.bounds for s in indexed if s.index]) if routed else None
        routes = (
            NameRoutes([s.gazetteer.name_keys() for s in gazetteers if s.gazetteer])
            if routed and len(gazetteers) >= _ROUTED_FROM
            else None
        )
        return cls(communities, indexed, gazetteers, extents, routes)

    def check(self) -> None:
        """:class:`NotFound` when no community of the scope has an index."""
        if not self.indexed:
            raise NotFound(
                self.communities[0].problem or "no active boundary plan", field="community"
            )

    def indexes(self) -> list[LookupIndex]:
        """Every index of the scope (:class:`NotFound` when none has one)."""
        self.check()
        return [s.index for s in self.indexed if s.index is not None]

    def indexes_at(self, lon: float, lat: float) -> list[LookupIndex]:
        """The indexes that may cover the WGS 84 point, in order."""
        if self.extents is None:
            return self.indexes()
        return [self.indexed[p].index for p in self.extents.candidates(lon, lat)]  # type: ignore[misc]

    def gazetteers_for(self, text: str) -> tuple[_CommunityState, ...]:
        """The communities whose gazetteer may match ``text``, in order."""
        if self.routes is None:
            return self.gazetteers
        found = self.routes.communities(text)
        if found is None:
            return self.gazetteers
        return tuple(self.gazetteers[p] for p in found)

    def outside(self, lon: float, lat: float) -> NotFound:
        """The error for a point outside every grid: the nearest grid of the scope."""
        best: tuple[float, LookupIndex, GridInfo] | None = None
        if self.extents is None:
            for index in self.indexes():
                grid, dist = index.nearest_grid(lon, lat)
                if best is None or dist < best[0]:
                    best = (dist, index, grid)
        else:
            # Nearest boxes first; a box farther than the best grid found cannot hold a
            # nearer one (its distance is a lower bound; 0.1 % + 1 m for the frame's error).
            for bound, p in self.extents.by_distance(lon, lat):
                if best is not None and bound > best[0] * 1.001 + 1.0:
                    break
                near = self.indexed[p].index
                assert near is not None
                grid, dist = near.nearest_grid(lon, lat)
                if best is None or dist < best[0]:
                    best = (dist, near, grid)
        assert best is not None
        return best[1].outside_error(lon, lat)


@dataclass(frozen=True)
class _State:
    versions: dict[str, int] = field(default_factory=dict)
    communities: tuple[_CommunityState, ...] = ()
    by_code: dict[str, _CommunityState] = field(default_factory=dict)
    built_at: float = 0.0
    whole: _Scope = field(default_factory=lambda: _Scope(()))
    #: Codes of the communities (re)built by the refresh that made this state.
    rebuilt: tuple[str, ...] = ()


class LookupService:
    """Point and address lookups over every community of a database, kept current.

    ``start()`` builds the indexes and starts the poller thread (``poll_interval`` seconds,
    default 1); ``stop()`` ends it. With ``shared_dir`` the point indexes' bucket grids are
    built once and mapped from files there by every process of a server
    (``geogrid.lookup.store``). ``freeze_gc`` (for servers) keeps the long-lived objects
    out of the garbage collector's reach (:func:`gc.freeze`, see :meth:`refresh`). Without
    ``start()`` (the CLI) call :meth:`refresh` yourself. Lookups never touch the database:
    they read the current snapshot, which :meth:`refresh` replaces in one assignment once a
    new one is fully built.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        poll_interval: float = 1.0,
        addresses: bool = True,
        freeze_gc: bool = False,
        shared_dir: Path | str | None = None,
    ) -> None:
        self.engine = engine
        #: Where the bucket grids are shared with the server's other processes (None: kept
        #: in this process only, as a single process needs).
        self.store = CellsStore(shared_dir) if shared_dir is not None else None
        self.addresses = addresses
        self.freeze_gc = freeze_gc
        self._state = _State()
        self._refresh_lock = threading.Lock()
        self._rebuilt_since_collect = 0
        self._poller = Poller(
            self._poll,
            interval=poll_interval,
            name="geogrid-lookup-poll",
            on_error=self._poll_failed,
        )
        self.last_error: str | None = None

    # --- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Build the indexes now (errors are logged, not raised) and start polling."""
        try:
            self.refresh(force=True)
        except Exception as exc:  # the database may not be ready yet: keep polling
            self.last_error = str(exc)
            log.warning("lookup indexes not built at start: %s", exc)
        self._poller.start()

    def stop(self) -> None:
        self._poller.stop()
        if self.freeze_gc:
            gc.unfreeze()  # hand everything back to the collector

    @property
    def poll_interval(self) -> float:
        """Seconds between two reads of the change counters (0: no poller thread)."""
        return self._poller.interval

    def _poll(self) -> None:
        self.refresh()
        if self.last_error is not None:
            log.info("lookup index refresh works again")
        self.last_error = None

    def _poll_failed(self, exc: Exception) -> None:
        # Keep serving the last good snapshot (the database may be down or restarting:
        # lookups go on from memory); log an error once, not once per poll.
        if str(exc) != self.last_error:
            log.warning("lookup index refresh failed: %s", exc)
        self.last_error = str(exc)

    @property
    def versions(self) -> dict[str, int]:
        """The change counters the current snapshot was built at."""
        return dict(self._state.versions)

    @property
    def communities(self) -> tuple[CommunityInfo, ...]:
        return tuple(c.info for c in self._state.communities)

    def index(self, community: str | None = None) -> LookupIndex:
        """The index of ``community`` (code; default: the only one)."""
        state = self._scope(community).communities[0]
        if state.index is None:
            raise NotFound(state.problem or "no active boundary plan", field="community")
        return state.index

    # --- refreshing --------------------------------------------------------------------------

    def refresh(self, *, force: bool = False) -> bool:
        """Rebuild what changed since the snapshot (one cheap read when nothing did).

        Returns whether a new snapshot was installed.
        """
        with self._refresh_lock:
            if not force:
                with self.engine.connect() as conn:
                    versions = queries.data_versions(conn)
                if versions == self._state.versions:
                    return False
            started = time.perf_counter()
            old_versions = self._state.versions
            new = self._build(self._state, force=force)
            first = not old_versions
            self._state = new  # one reference: readers see the old or the new, never a mix
            if self.freeze_gc:
                # The indexes and gazetteers are ~200,000 long-lived objects; a full
                # collection walks them all (~120 ms on the demo), which lands on a request
                # as a latency spike (p99 at 64 connections). Frozen objects are left out of
                # collections. On a rebuild the previous snapshot is unfrozen and collected
                # first — one pause per data change, on this thread — so none of it leaks.
                # A city holds ~100× the demo's objects (a full collection: seconds) and
                # rebuilds one community at a time: the replaced communities' objects are
                # freed by reference counting anyway; only cyclic garbage waits in the frozen
                # generation, and it is collected once a tenth of the communities (at least
                # one) was rebuilt since the last collection.
                self._rebuilt_since_collect += 0 if first else len(new.rebuilt)
                if not first and self._rebuilt_since_collect >= max(1, len(new.communities) // 10):
                    gc.unfreeze()
                    gc.collect()
                    self._rebuilt_since_collect = 0
                gc.freeze()
            log.info(
                "lookup indexes rebuilt at %s in %.0f ms",
                new.versions,
                (time.perf_counter() - started) * 1000,
            )
            return True

    def _build(self, old: _State, *, force: bool) -> _State:
        # One snapshot for the counters and every frame: a change committed meanwhile
        # shows as a newer counter at the next poll, never as a half-read plan.
        conn = dialect.snapshot(self.engine.connect())
        rebuilt: list[str] = []
        try:
            with conn.begin():
                versions = queries.data_versions(conn)
                counters = queries.community_versions(conn)
                states = []
                rows = queries.lookup_communities(conn)
                # A city: coarser bucket grids (module docstring of geogrid.lookup.cells).
                side = _CITY_CELLS_SIDE if len(rows) >= _ROUTED_FROM else None
                for row in rows:
                    info = CommunityInfo(
                        id=int(row.id),
                        code=str(row.code),
                        name=str(row.name),
                        prefixes=tuple(
                            str(p)
                            for p in (
                                *(row.province, row.city, row.district),
                                *(row.subdistrict, row.name),
                            )
                            if p
                        ),
                    )
                    counter = counters.get(info.id, (0, 0))
                    previous = old.by_code.get(info.code)
                    same = not force and previous is not None and previous.info == info
                    if same and previous is not None and previous.versions == counter:
                        states.append(previous)  # nothing of this community changed
                        continue
                    rebuilt.append(info.code)
                    keep_gazetteer = (
                        same
                        and previous is not None
                        and previous.versions[1] == counter[1]
                        and (previous.gazetteer is not None or not self.addresses)
                    )
                    states.append(
                        self._build_community(
                            conn,
                            info,
                            counter,
                            gazetteer=previous.gazetteer if keep_gazetteer and previous else None,
                            keep_gazetteer=keep_gazetteer,
                            replaces=previous.versions if previous else None,
                            side=side,
                        )
                    )
        finally:
            conn.close()
        communities = tuple(states)
        return _State(
            versions=versions,
            communities=communities,
            by_code={s.info.code: s for s in communities},
            built_at=time.time(),
            whole=_Scope.of(communities, routed=True),
            rebuilt=tuple(rebuilt),
        )

    def _build_community(
        self,
        conn: Connection,
        info: CommunityInfo,
        counter: tuple[int, int],
        *,
        gazetteer: Gazetteer | None,
        keep_gazetteer: bool,
        replaces: tuple[int, int] | None = None,
        side: int | None = None,
    ) -> _CommunityState:
        """One community's index (and gazetteer, unless kept) at ``counter``."""
        frames = read_frames(conn, info)
        index: LookupIndex | None = None
        problem: str | None = None
        cells: CellsFactory | None = None
        if self.store is not None:
            cells = self.store.factory(info.code, counter, replaces=replaces, max_side=side)
        elif side is not None:

            def cells(_layer: str, geoms: npt.NDArray[np.object_]) -> Cells:
                return Cells(geoms, max_side=side)

        try:
            index = LookupIndex.from_frames(frames, info, cells=cells)
        except NotFound as exc:
            problem = exc.message
        if self.addresses and not keep_gazetteer:
            gazetteer = Gazetteer.from_frames(
                **gazetteer_frames(conn, info, frames), prefixes=info.prefixes
            )
        return _CommunityState(info, index, problem, gazetteer, counter)

    # --- scope ---------------------------------------------------------------------------------

    def _scope(self, community: str | None) -> _Scope:
        state = self._state
        if community is not None:
            found = state.by_code.get(str(community))
            if found is None:
                raise NotFound(f"no community with code {community!r}", field="community")
            return _Scope.of((found,), routed=False)
        if not state.communities:
            if self.last_error and not state.versions:
                raise DatabaseNotReady(
                    "the lookup indexes could not be built: is the schema created "
                    "(`geogrid db init`)?"
                )
            raise NotFound("the database holds no community yet: import one or run `geogrid demo`")
        return state.whole

    # --- single lookups ------------------------------------------------------------------------

    def lookup(
        self,
        *,
        address: str | None = None,
        lon: Any = None,
        lat: Any = None,
        crs: Any = "wgs84",
        community: str | None = None,
    ) -> LookupResult:
        """Answer one address (``address``) or point (``lon``, ``lat`` in ``crs``).

        Raises :class:`InvalidInput` (a bad or missing parameter, named in ``field``),
        :class:`~geogrid.errors.CRSError` or :class:`NotFound` (no match; outside every grid,
        with the nearest grid).
        """
        name = gcrs.normalize_crs(crs if crs not in (None, "") else "wgs84", field="crs")
        has_point = lon is not None or lat is not None
        if address is not None and has_point:
            raise InvalidInput("give either address or lon and lat, not both", field="address")
        scope = self._scope(community)
        if address is not None:
            return self._lookup_address(address, name, scope)
        if not has_point:
            raise InvalidInput("give an address, or lon and lat", field="address")
        return self._lookup_point(lon, lat, name, scope)

    def _lookup_point(self, lon: Any, lat: Any, crs: str, scope: _Scope) -> LookupResult:
        scope.check()
        try:
            x, y, wgs_lon, wgs_lat = parse_point(lon, lat, crs)
        except InvalidInput as exc:
            raise self._with_swap_hint(exc, lon, lat, crs, scope) from None
        for index in scope.indexes_at(wgs_lon, wgs_lat):
            grid_pos, field_pos, building_pos = index.locate(wgs_lon, wgs_lat)
            if grid_pos >= 0:
                return LookupResult(
                    index.answer(grid_pos, field_pos, building_pos, wgs_lon, wgs_lat), crs, x, y
                )
        swapped = self._swapped_inside(lon, lat, crs, scope)
        if swapped is not None:
            raise InvalidInput(
                f"the point (lon {x}, lat {y}) is outside every grid, but with lon and lat "
                f"swapped it is inside {swapped.community.name} ({swapped.community.code}): "
                "are lon and lat swapped?",
                field="lon",
                details={"swapped_inside": _swap_dict(swapped)},
            )
        raise scope.outside(wgs_lon, wgs_lat)

    @staticmethod
    def _swapped_inside(lon: Any, lat: Any, crs: str, scope: _Scope) -> PointLookup | None:
        try:
            _, _, wgs_lon, wgs_lat = parse_point(lat, lon, crs)
        except (GeogridError, ValueError, TypeError):
            return None
        for index in scope.indexes_at(wgs_lon, wgs_lat):
            grid_pos, field_pos, building_pos = index.locate(wgs_lon, wgs_lat)
            if grid_pos >= 0:
                return index.answer(grid_pos, field_pos, building_pos, wgs_lon, wgs_lat)
        return None

    def _with_swap_hint(
        self, exc: InvalidInput, lon: Any, lat: Any, crs: str, scope: _Scope
    ) -> InvalidInput:
        swapped = self._swapped_inside(lon, lat, crs, scope)
        if swapped is None:
            return exc
        return InvalidInput(
            f"{exc.message}; with lon and lat swapped the point is inside "
            f"{swapped.community.name} ({swapped.community.code}): are they swapped?",
            field=exc.field,
            details={**exc.details, "swapped_inside": _swap_dict(swapped)},
        )

    def _lookup_address(self, text: Any, crs: str, scope: _Scope) -> LookupResult:
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("address is empty", field="address")
        best: tuple[_CommunityState, AddressMatch] | None = None
        failure: NotFound | None = None
        for state in scope.gazetteers_for(text):
            assert state.gazetteer is not None
            try:
                match = state.gazetteer.match(text)
            except NotFound as exc:
                failure = _merge_not_found(failure, exc)
                continue
            if best is None or float(match.confidence) > float(best[1].confidence):
                best = (state, match)
        if best is None:
            if failure is not None:
                raise failure
            raise NotFound("no address gazetteer is loaded", field="address")
        return self._answer_match(best[0], best[1], crs)

    def _answer_match(self, state: _CommunityState, match: AddressMatch, crs: str) -> LookupResult:
        index = state.index
        if index is None:
            raise NotFound(state.problem or "no active boundary plan", field="community")
        lon, lat = float(match.lon), float(match.lat)
        building_id = match.building_id
        grid_pos, field_pos, building_pos = index.locate(lon, lat)
        if grid_pos < 0:
            err = index.outside_error(lon, lat, field="address")
            err.details["match"] = match_dict(match, None)
            raise err
        place = index.answer(grid_pos, field_pos, building_pos, lon, lat, building_id=building_id)
        # A street-level answer (also a fuzzy one): say which grids the street crosses.
        street_id = match.street_id
        street_grids = (
            index.street_grids.get(street_id, ())
            if street_id is not None and match.building_id is None and match.household_id is None
            else None
        )
        candidate_grids = tuple(_grid_at(index, c.lon, c.lat) for c in match.candidates)
        rx, ry = (lon, lat) if gcrs.same_crs(crs, gcrs.WGS84) else gcrs.from_wgs84(lon, lat, crs)
        return LookupResult(place, crs, rx, ry, match, street_grids, candidate_grids)

    # --- batches -----------------------------------------------------------------------------

    def lookup_many(
        self,
        items: Sequence[Any],
        *,
        progress: Any = None,
        crs_check: Callable[[Any], str] | None = None,
    ) -> list[LookupResult | GeogridError]:
        """One answer or error per item, in order; one bad item never fails the others.

        Each item is a mapping with ``address`` or ``lon`` + ``lat``, and optionally ``crs``
        (default wgs84) and ``community``. Points are answered in bulk per CRS and
        community (:meth:`LookupIndex.lookup_points`), addresses with the gazetteer's
        ``match_many``. ``progress(n)`` is called with the number of items done.
        ``crs_check(name)`` gives an item's canonical CRS or raises (default:
        :func:`geogrid.crs.normalize_crs`, which takes any CRS; HTTP callers are held to an
        allow-list).
        """
        if len(items) > MAX_BATCH:
            raise InvalidInput(
                f"a batch holds at most {MAX_BATCH:,} items, got {len(items):,}", field="items"
            )
        out: list[LookupResult | GeogridError | None] = [None] * len(items)
        points: dict[tuple[str, str | None], list[tuple[int, Any, Any]]] = {}
        addresses: dict[str | None, list[tuple[int, str, str]]] = {}
        for i, item in enumerate(items):
            try:
                kind, payload = self._parse_item(item, crs_check)
            except GeogridError as exc:
                out[i] = exc
                continue
            if kind == "point":
                lon, lat, crs, community = payload
                points.setdefault((crs, community), []).append((i, lon, lat))
            else:
                text, crs, community = payload
                addresses.setdefault(community, []).append((i, text, crs))
        done = sum(1 for r in out if r is not None)
        for (crs, community), group in points.items():
            self._batch_points(group, crs, community, out)
            done += len(group)
            if progress:
                progress(done)
        for community, agroup in addresses.items():
            self._batch_addresses(agroup, community, out)
            done += len(agroup)
            if progress:
                progress(done)
        return [r if r is not None else GeogridError("no answer") for r in out]

    @staticmethod
    def _parse_item(
        item: Any, crs_check: Callable[[Any], str] | None
    ) -> tuple[str, tuple[Any, ...]]:
        if not isinstance(item, Mapping):
            raise InvalidInput(
                "each item must be an object with address, or lon and lat", field="items"
            )
        if crs_check is not None:
            crs = crs_check(item.get("crs"))
        else:
            crs = gcrs.normalize_crs(item.get("crs") or "wgs84", field="crs")
        community = item.get("community")
        community = None if community in (None, "") else str(community)
        address = item.get("address")
        has_point = item.get("lon") is not None or item.get("lat") is not None
        if address is not None and has_point:
            raise InvalidInput("give either address or lon and lat, not both", field="address")
        if address is not None:
            if not isinstance(address, str) or not address.strip():
                raise InvalidInput("address is empty", field="address")
            return "address", (address, crs, community)
        if not has_point:
            raise InvalidInput("give an address, or lon and lat", field="address")
        return "point", (item.get("lon"), item.get("lat"), crs, community)

    def _batch_points(
        self,
        group: list[tuple[int, Any, Any]],
        crs: str,
        community: str | None,
        out: list[LookupResult | GeogridError | None],
    ) -> None:
        try:
            scope = self._scope(community)
            scope.check()
        except GeogridError as exc:
            for i, _, _ in group:
                out[i] = exc
            return
        ok: list[tuple[int, float, float]] = []
        for i, lon, lat in group:
            try:
                x, y = check_point(lon, lat, crs)
                if crs_kind(crs) != "lonlat":
                    convert_point(x, y, crs)  # the range is checked after conversion
                ok.append((i, x, y))
            except InvalidInput as exc:
                out[i] = self._with_swap_hint(exc, lon, lat, crs, scope)
        if not ok:
            return
        pos = np.asarray([i for i, _, _ in ok], dtype=np.int64)
        xs = np.asarray([x for _, x, _ in ok], dtype=np.float64)
        ys = np.asarray([y for _, _, y in ok], dtype=np.float64)
        wgs_lons, wgs_lats = (
            (xs, ys) if gcrs.same_crs(crs, gcrs.WGS84) else gcrs.to_wgs84(xs, ys, crs)
        )
        found = np.zeros(len(ok), dtype=bool)

        def answer(index: LookupIndex, todo: IntArray) -> None:
            res = index.lookup_points(wgs_lons[todo], wgs_lats[todo])
            for j in np.flatnonzero(res.found):
                k = int(todo[j])
                place = res.get(int(j))
                assert place is not None
                out[int(pos[k])] = LookupResult(place, crs, float(xs[k]), float(ys[k]))
            found[todo[res.found]] = True

        if scope.extents is None:
            for index in scope.indexes():
                todo = np.flatnonzero(~found)
                if not len(todo):
                    break
                answer(index, todo)
        else:
            # Each community asked for the points its extent covers, in the scope's order
            # (the first community covering a point answers, as in the loop above).
            owner, box = scope.extents.candidates_many(wgs_lons, wgs_lats)
            starts = np.flatnonzero(np.diff(box, prepend=-1))
            for a, b in zip(starts.tolist(), [*starts[1:].tolist(), len(box)], strict=True):
                todo = owner[a:b][~found[owner[a:b]]]
                if len(todo):
                    covering = scope.indexed[int(box[a])].index
                    assert covering is not None
                    answer(covering, todo)
        raw = {i: (lon, lat) for i, lon, lat in group}
        for kk in np.flatnonzero(~found):
            k, i = int(kk), int(pos[kk])
            swapped = self._swapped_inside(*raw[i], crs, scope)
            if swapped is not None:
                out[i] = InvalidInput(
                    "the point is outside every grid, but with lon and lat swapped it is "
                    f"inside {swapped.community.name} ({swapped.community.code}): "
                    "are lon and lat swapped?",
                    field="lon",
                    details={"swapped_inside": _swap_dict(swapped)},
                )
            else:
                out[i] = scope.outside(float(wgs_lons[k]), float(wgs_lats[k]))

    def _batch_addresses(
        self,
        group: list[tuple[int, str, str]],
        community: str | None,
        out: list[LookupResult | GeogridError | None],
    ) -> None:
        try:
            scope = self._scope(community)
        except GeogridError as exc:
            for i, _, _ in group:
                out[i] = exc
            return
        gazetteers = scope.gazetteers
        if len(gazetteers) != 1:
            # Several communities (or none): item by item picks the best community.
            for i, text, crs in group:
                try:
                    out[i] = self._lookup_address(text, crs, scope)
                except GeogridError as exc:
                    out[i] = exc
            return
        state = gazetteers[0]
        assert state.gazetteer is not None
        matches = state.gazetteer.match_many([t for _, t, _ in group])
        for (i, _, crs), match in zip(group, matches, strict=True):
            if isinstance(match, GeogridError):
                out[i] = match
                continue
            try:
                out[i] = self._answer_match(state, match, crs)
            except GeogridError as exc:
                out[i] = exc


def _grid_at(index: LookupIndex, lon: float, lat: float) -> GridInfo | None:
    grid_pos = index.locate(lon, lat)[0]
    return index.grids[grid_pos] if grid_pos >= 0 else None


def _swap_dict(p: PointLookup) -> dict[str, Any]:
    return {
        "community": p.community.code,
        "grid": p.grid.code,
        "lon": round_coord(p.lon),
        "lat": round_coord(p.lat),
    }


def _merge_not_found(a: NotFound | None, b: NotFound) -> NotFound:
    if a is None:
        return b
    sa = list(a.details.get("suggestions", []))
    sb = list(b.details.get("suggestions", []))
    return NotFound(a.message, field=a.field, details={**a.details, "suggestions": sa + sb})

"""Coordinate reference systems: the one module of geogrid that knows them.

geogrid stores WGS 84 (EPSG:4326) / CGCS2000 (EPSG:4490) longitude/latitude and converts only at
the edges — input files and points, map display. The two datums agree to well under a metre
(CGCS2000 is aligned with ITRF97 at epoch 2000.0, WGS 84 with ITRF to a few centimetres), far
below what grid governance can resolve, so they are treated as equal: no datum shift is applied
between them (PROJ itself only knows a "ballpark" null transformation for that pair).

Chinese web maps use obfuscated variants of WGS 84 that no EPSG code describes:

* **GCJ-02** ("Mars coordinates", 火星坐标): Amap (高德), Tencent; offsets of about 450–600 m.
* **BD-09**: Baidu; GCJ-02 with a further ~1 km shift.

Their formulas are not published; the ones here are the widely used reverse-engineered versions
(eviltransform, https://github.com/googollee/eviltransform, and "coordtransform",
https://github.com/wandergis/coordtransform). GCJ-02 → WGS 84 has no closed form, so it is
solved by iteration. Like those implementations, the GCJ-02 step leaves points outside mainland
China's bounding box (lon 72.004–137.8347, lat 0.8293–55.8271, from eviltransform) unchanged.

Names accepted everywhere (case-insensitive; spaces, hyphens and underscores ignored) are listed
in :data:`CRS_HELP`; :func:`normalize_crs` maps them onto the canonical names.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Collection
from typing import Any, Final, Protocol, TypeAlias, TypeVar, cast, overload

import numpy as np
import numpy.typing as npt
import pyproj
import shapely
from geopandas import GeoDataFrame, GeoSeries
from pyproj.exceptions import CRSError as ProjCRSError
from shapely.geometry.base import BaseGeometry

from geogrid.errors import CRSError, InvalidInput

__all__ = [
    "ACCEPTED_CRS_NAMES",
    "BD09",
    "CGCS2000",
    "CRS_HELP",
    "GCJ02",
    "HTTP_CRS_HELP",
    "WGS84",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "check_lonlat",
    "finite_number",
    "frame_from_wgs84",
    "frame_to_wgs84",
    "from_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "normalize_crs",
    "same_crs",
    "to_wgs84",
    "transform_geometry",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

FloatArray: TypeAlias = npt.NDArray[np.float64]
G = TypeVar("G", bound=BaseGeometry)

# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------

WGS84: Final = "wgs84"
CGCS2000: Final = "cgcs2000"
GCJ02: Final = "gcj02"
BD09: Final = "bd09"

#: Canonical names, for docs and CLI help; ``EPSG:NNNN`` stands for any code pyproj knows.
ACCEPTED_CRS_NAMES: Final[tuple[str, ...]] = (WGS84, CGCS2000, GCJ02, BD09, "EPSG:NNNN")

#: One-line description of every accepted spelling, for error messages and ``--crs`` help.
# The named CRSs and their spellings, shared by both help texts below.
_NAMES_HELP: Final = (
    "wgs84 (EPSG:4326, 4326, WGS 84), cgcs2000 (EPSG:4490, 4490, CGCS 2000), "
    "gcj02 (GCJ-02, gcj, mars: Amap/Tencent), bd09 (BD-09, baidu), "
)
CRS_HELP: Final = (
    _NAMES_HELP + "or any EPSG:NNNN code known to PROJ (e.g. EPSG:4547, EPSG:32650, EPSG:3857)"
)

#: The same for HTTP callers, who may not name an arbitrary EPSG code (:func:`allowed_crs`).
HTTP_CRS_HELP: Final = (
    _NAMES_HELP + "or an EPSG:NNNN code on the service's list (GEOGRID_CRS_EPSG; by default "
    "EPSG:3857, the CGCS2000 Gauss-Krüger zones EPSG:4491–4554 and the UTM zones "
    "EPSG:32601–32660, 32701–32760)"
)

# Keys are lower-case with spaces, hyphens and underscores removed (see _alias_key).
_ALIASES: Final[dict[str, str]] = {
    "wgs84": WGS84,
    "wgs1984": WGS84,
    "crs84": WGS84,
    "ogc:crs84": WGS84,
    "cgcs2000": CGCS2000,
    "gcj02": GCJ02,
    "gcj": GCJ02,
    "mars": GCJ02,
    "bd09": BD09,
    "bd09ll": BD09,  # Baidu's own name for BD-09 longitude/latitude (coordtype=bd09ll)
    "baidu": BD09,
}
_EPSG_NAMES: Final[dict[int, str]] = {4326: WGS84, 4490: CGCS2000}
_EPSG_RE: Final = re.compile(r"^(?:epsg:{0,2})?(\d+)$")
_SEPARATORS_RE: Final = re.compile(r"[\s\-_]+")

#: Canonical names whose coordinates are plain WGS 84 longitude/latitude (taken as equal).
_LONLAT_EQUAL: Final = frozenset({WGS84, CGCS2000})
#: CRS label a frame in each canonical CRS carries (GCJ-02/BD-09 can only be labelled WGS 84).
_LABEL: Final[dict[str, str]] = {
    WGS84: "EPSG:4326",
    CGCS2000: "EPSG:4490",
    GCJ02: "EPSG:4326",
    BD09: "EPSG:4326",
}


class _UnknownCRS(ValueError):
    """Internal: why a name was refused (turned into :class:`CRSError` with a field)."""


def normalize_crs(name: str | int | pyproj.CRS | None, *, field: str = "crs") -> str:
    """Canonical name of a CRS: ``wgs84``, ``cgcs2000``, ``gcj02``, ``bd09`` or ``EPSG:NNNN``.

    Accepts the aliases in :data:`CRS_HELP` (case-insensitive, spaces/hyphens/underscores
    ignored), bare EPSG numbers, ``EPSG:NNNN``, a :class:`pyproj.CRS`, or any WKT / authority
    string pyproj understands. EPSG:4326 becomes ``wgs84`` and EPSG:4490 ``cgcs2000``. WGS 84
    and CGCS2000 stay distinct names but are treated as equal (they agree to well under a
    metre); see :func:`same_crs`. Only horizontal CRSs (geographic or projected) are accepted.

    Raises :class:`CRSError` (with ``field``) for anything else, listing the accepted names.
    """
    if name is None:
        raise CRSError(f"no CRS given; accepted: {CRS_HELP}", field=field)
    try:
        if isinstance(name, pyproj.CRS):
            return _name_of_pyproj(name)
        if isinstance(name, bool) or not isinstance(name, str | int):
            raise _UnknownCRS(f"a CRS must be a name or an EPSG code, not {type(name).__name__}")
        return _normalize_cached(name)
    except _UnknownCRS as exc:
        raise CRSError(f"{exc}; accepted: {CRS_HELP}", field=field) from None


def same_crs(a: str, b: str) -> bool:
    """Whether two canonical names denote the same coordinates (WGS 84 ≡ CGCS2000)."""
    return a == b or (a in _LONLAT_EQUAL and b in _LONLAT_EQUAL)


# --- what HTTP callers may name ---------------------------------------------------------------
#
# A new PROJ string costs ~65 ms to parse, even when it is then refused, and the first use of
# an EPSG code 9–40 ms: a client cycling through them held the CPU (1,000 distinct strings in
# one batch took 70 s; issue 14). HTTP callers may therefore name only the aliases and EPSG
# codes of an allow-list, checked here without pyproj; each allowed code is parsed once per
# process (``_name_of_epsg`` is cached by code), and :func:`prepare` does that work, so a
# server can run it off its event loop when :func:`is_prepared` says it has not been done.

_PREPARED: set[str] = set()


def parse_epsg_list(spec: str) -> frozenset[int]:
    """``"4326,4490,4491-4554"`` → the codes; a malformed part raises :class:`InvalidInput`."""
    codes: set[int] = set()
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        low, dash, high = part.partition("-")
        if not low.isdecimal() or (dash and not high.isdecimal()) or int(high or low) < int(low):
            raise InvalidInput(f"not an EPSG code or range: {part!r}", field="crs_epsg")
        codes.update(range(int(low), int(high or low) + 1))
    return frozenset(codes)


def allowed_crs(name: Any, *, epsg: Collection[int], field: str = "crs") -> str:
    """The canonical name of ``name`` if an HTTP caller may use it: an alias of
    :data:`HTTP_CRS_HELP`, or an EPSG code in ``epsg`` (4326 and 4490 always). Never parses PROJ
    or WKT; an empty or missing name is WGS 84. Else :class:`CRSError` naming ``field``."""
    if name is None or name == "":
        return WGS84
    if isinstance(name, bool) or not isinstance(name, str | int):
        raise CRSError(
            f"{field} must be a name or an EPSG code; accepted: {HTTP_CRS_HELP}", field=field
        )
    if isinstance(name, int):
        code = name
    else:
        key = _alias_key(name[:64])
        if key in _ALIASES:
            return _ALIASES[key]
        if not (m := _EPSG_RE.match(key)) or len(name) > 64:
            raise CRSError(
                f"unknown CRS {_short(name)}: give a name or EPSG:NNNN; accepted: {HTTP_CRS_HELP}",
                field=field,
            )
        code = int(m.group(1))
    if code in _EPSG_NAMES:
        return _EPSG_NAMES[code]
    if code not in epsg:
        raise CRSError(
            f"EPSG:{code} is not among the CRSs this service accepts: {HTTP_CRS_HELP}",
            field=field,
        )
    return f"EPSG:{code}"


def is_prepared(name: str) -> bool:
    """Whether :func:`prepare` has run for the canonical ``name`` (using it costs no parse)."""
    return name in _PREPARED or name in _LONLAT_EQUAL or name in _TO_WGS84


def prepare(name: str) -> str:
    """Parse the canonical ``name`` and build its transformer to WGS 84 (cached): the costly
    part of a CRS's first use, done once."""
    canonical = normalize_crs(name)
    if canonical not in _LONLAT_EQUAL and canonical not in _TO_WGS84:
        _transformer(canonical, True)
    _PREPARED.add(canonical)
    return canonical


@functools.lru_cache(maxsize=256)
def _normalize_cached(name: str | int) -> str:
    if isinstance(name, int):
        return _name_of_epsg(name, str(name))
    key = _alias_key(name)
    if key in _ALIASES:
        return _ALIASES[key]
    if m := _EPSG_RE.match(key):
        return _name_of_epsg(int(m.group(1)), name)
    if not name.strip():
        raise _UnknownCRS("empty CRS name")
    try:
        crs = pyproj.CRS.from_user_input(name)
    except ProjCRSError:
        raise _UnknownCRS(f"unknown CRS {_short(name)}") from None
    return _name_of_pyproj(crs)


def _alias_key(name: str) -> str:
    return _SEPARATORS_RE.sub("", name.strip().lower())


def _name_of_epsg(code: int, original: str) -> str:
    if code in _EPSG_NAMES:
        return _EPSG_NAMES[code]
    crs = _epsg_crs(code)
    if crs is None:
        raise _UnknownCRS(f"unknown CRS {_short(original)} (no such EPSG code)")
    _require_horizontal(crs, f"EPSG:{code}")
    return f"EPSG:{code}"


@functools.lru_cache(maxsize=1024)
def _epsg_crs(code: int) -> pyproj.CRS | None:
    """EPSG:``code`` parsed once (9–40 ms), None if there is no such code: written ``4491``,
    ``epsg:4491`` or ``EPSG::4491``, it is one code, not three parses."""
    try:
        return pyproj.CRS.from_epsg(code)
    except ProjCRSError:
        return None


def _name_of_pyproj(crs: pyproj.CRS) -> str:
    for known, canonical in _EPSG_NAMES.items():
        # ignore_axis_order: OGC:CRS84 (lon, lat) is EPSG:4326 (lat, lon) for our purposes.
        if crs.equals(_pyproj_crs(known), ignore_axis_order=True):
            return canonical
    code = crs.to_epsg()
    if code is None:
        raise _UnknownCRS(
            f"CRS {_short(crs.name)} has no EPSG code; reproject to EPSG:4490 or EPSG:4326"
        )
    _require_horizontal(crs, f"EPSG:{code}")
    return _EPSG_NAMES.get(code, f"EPSG:{code}")


def _require_horizontal(crs: pyproj.CRS, label: str) -> None:
    if not (crs.is_geographic or crs.is_projected):
        raise _UnknownCRS(f"{label} ({crs.name}) is not a horizontal (2D map) CRS")


@functools.lru_cache(maxsize=8)
def _pyproj_crs(code: int) -> pyproj.CRS:
    return pyproj.CRS.from_epsg(code)


# --------------------------------------------------------------------------------------------
# GCJ-02 and BD-09 (vectorised cores on float64 arrays)
# --------------------------------------------------------------------------------------------

# GCJ-02 constants as published by eviltransform / coordtransform: the Krasovsky 1940 ellipsoid
# (semi-major axis a, first eccentricity squared ee) on which the offsets are computed.
_GCJ_A: Final = 6378245.0
_GCJ_EE: Final = 0.00669342162296594323
# BD-09 constant (coordtransform): x_pi = pi * 3000 / 180.
_X_PI: Final = math.pi * 3000.0 / 180.0
# out_of_china() bounding box of eviltransform (inclusive).
_CHINA_LON: Final = (72.004, 137.8347)
_CHINA_LAT: Final = (0.8293, 55.8271)
# Inversions stop when the forward transform matches within this, or after _MAX_ITERATIONS.
_TOLERANCE_DEG: Final = 1e-9  # ~0.1 mm
_MAX_ITERATIONS: Final = 20


def _in_china(lon: FloatArray, lat: FloatArray) -> npt.NDArray[np.bool_]:
    """Inside eviltransform's out_of_china() box (NaN is outside)."""
    return (
        (lon >= _CHINA_LON[0])
        & (lon <= _CHINA_LON[1])
        & (lat >= _CHINA_LAT[0])
        & (lat <= _CHINA_LAT[1])
    )


def _gcj02_delta(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 offset (dlon, dlat) in degrees at a WGS 84 point, ignoring the China box.

    transformlat/transformlng and the metre→degree scaling of coordtransform (index.js) and
    eviltransform (delta()): the polynomial+sine terms give a pseudo-offset in metres, divided
    by the meridional radius of curvature M = a(1-e²)/(1-e²sin²φ)^1.5 (latitude) and by the
    radius of the parallel N·cosφ = a·cosφ/(1-e²sin²φ)^0.5 (longitude).
    """
    x = lon - 105.0
    y = lat - 35.0
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * np.sqrt(np.abs(x))
        + common
        + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * np.sqrt(np.abs(x))
        + common
        + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    rad = np.radians(lat)
    magic = 1.0 - _GCJ_EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_GCJ_A * (1.0 - _GCJ_EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_GCJ_A / sqrt_magic * np.cos(rad) * np.pi)
    return dlon, dlat


def _gcj02_shift(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """WGS 84 → GCJ-02 without the China box (the function the inversion solves)."""
    dlon, dlat = _gcj02_delta(lon, lat)
    return lon + dlon, lat + dlat


def _invert(
    forward: Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]],
    target_lon: FloatArray,
    target_lat: FloatArray,
    lon: FloatArray,
    lat: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Solve ``forward(lon, lat) == target`` by fixed-point iteration from a first guess.

    The offsets vary slowly (derivatives below ~1e-2), so x ← x − (forward(x) − target)
    contracts the error by that factor per step: 3–5 steps reach the 1e-9° tolerance over
    the whole China box. NaN inputs stay NaN and do not hold the loop.
    """
    for _ in range(_MAX_ITERATIONS):
        f_lon, f_lat = forward(lon, lat)
        err_lon, err_lat = f_lon - target_lon, f_lat - target_lat
        lon, lat = lon - err_lon, lat - err_lat
        if not (
            (np.abs(err_lon) > _TOLERANCE_DEG).any() or (np.abs(err_lat) > _TOLERANCE_DEG).any()
        ):
            break
    return lon, lat


def _wgs84_to_gcj02(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    inside = _in_china(lon, lat)
    g_lon, g_lat = _gcj02_shift(lon, lat)
    return np.where(inside, g_lon, lon), np.where(inside, g_lat, lat)


def _gcj02_to_wgs84(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    # The box is tested on the GCJ-02 input, as eviltransform's gcj2wgs does.
    inside = _in_china(lon, lat)
    out_lon, out_lat = np.array(lon, dtype=np.float64), np.array(lat, dtype=np.float64)
    if inside.any():
        g_lon, g_lat = lon[inside], lat[inside]
        dlon, dlat = _gcj02_delta(g_lon, g_lat)  # naive inverse: subtract the offset at g
        w_lon, w_lat = _invert(_gcj02_shift, g_lon, g_lat, g_lon - dlon, g_lat - dlat)
        out_lon[inside], out_lat[inside] = w_lon, w_lat
    return out_lon, out_lat


def _gcj02_to_bd09(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    # coordtransform gcj02tobd09: a small polar perturbation plus a constant shift.
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd09_to_gcj02(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    # coordtransform bd09togcj02 is only an approximate inverse (round trip off by up to ~2e-6°,
    # ~0.2 m); it is the first guess, refined until gcj02→bd09 reproduces the input.
    x, y = lon - 0.0065, lat - 0.006
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return _invert(_gcj02_to_bd09, lon, lat, z * np.cos(theta), z * np.sin(theta))


def _wgs84_to_bd09(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _gcj02_to_bd09(*_wgs84_to_gcj02(lon, lat))


def _bd09_to_wgs84(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _gcj02_to_wgs84(*_bd09_to_gcj02(lon, lat))


# --------------------------------------------------------------------------------------------
# Public converters: Python floats in → floats out; arrays (or lists) in → float64 arrays out
# --------------------------------------------------------------------------------------------

_Core: TypeAlias = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]


class LonLatFunction(Protocol):
    """A lon/lat converter: floats give floats, array-likes give float64 arrays (broadcast)."""

    @overload
    def __call__(self, lon: float, lat: float) -> tuple[float, float]: ...
    @overload
    def __call__(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]: ...


def _as_arrays(lon: Any, lat: Any) -> tuple[FloatArray, FloatArray, bool]:
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    scalar = x.ndim == 0 and y.ndim == 0
    # Cores work on arrays of at least one dimension (0-d arithmetic yields numpy scalars).
    x, y = np.broadcast_arrays(np.atleast_1d(x), np.atleast_1d(y))
    return x, y, scalar


def _as_output(lon: Any, lat: Any, scalar: bool) -> tuple[Any, Any]:
    lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    if scalar:
        return float(lon.reshape(-1)[0]), float(lat.reshape(-1)[0])
    return lon, lat


def _lonlat_function(core: _Core) -> LonLatFunction:
    @functools.wraps(core)
    def convert(lon: Any, lat: Any) -> Any:
        x, y, scalar = _as_arrays(lon, lat)
        return _as_output(*core(x, y), scalar)

    return cast(LonLatFunction, convert)


@_lonlat_function
def wgs84_to_gcj02(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """WGS 84 → GCJ-02 (Amap/Tencent). Points outside China's box are returned unchanged."""
    return _wgs84_to_gcj02(lon, lat)


@_lonlat_function
def gcj02_to_wgs84(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 → WGS 84, solved by iteration (error ≪ 1 cm); outside China's box unchanged."""
    return _gcj02_to_wgs84(lon, lat)


@_lonlat_function
def gcj02_to_bd09(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 → BD-09 (Baidu). Applied everywhere, as coordtransform does."""
    return _gcj02_to_bd09(lon, lat)


@_lonlat_function
def bd09_to_gcj02(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """BD-09 → GCJ-02, the exact inverse of :func:`gcj02_to_bd09` (iterated to 1e-9°)."""
    return _bd09_to_gcj02(lon, lat)


@_lonlat_function
def wgs84_to_bd09(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """WGS 84 → BD-09 through GCJ-02 (the GCJ-02 step skips points outside China)."""
    return _wgs84_to_bd09(lon, lat)


@_lonlat_function
def bd09_to_wgs84(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """BD-09 → WGS 84 through GCJ-02 (the GCJ-02 step skips points outside China)."""
    return _bd09_to_wgs84(lon, lat)


_TO_WGS84: Final[dict[str, _Core]] = {GCJ02: _gcj02_to_wgs84, BD09: _bd09_to_wgs84}
_FROM_WGS84: Final[dict[str, _Core]] = {GCJ02: _wgs84_to_gcj02, BD09: _wgs84_to_bd09}


@functools.lru_cache(maxsize=512)  # > the HTTP allow-list (188 codes): no thrashing
def _transformer(code: str, to_wgs84: bool) -> pyproj.Transformer:
    """Cached EPSG:code ↔ EPSG:4326 transformer, x=lon/easting (pyproj ≥ 3.1 is thread-safe)."""
    src, dst = (code, "EPSG:4326") if to_wgs84 else ("EPSG:4326", code)
    return pyproj.Transformer.from_crs(src, dst, always_xy=True)


def _core_to_wgs84(x: FloatArray, y: FloatArray, name: str) -> tuple[FloatArray, FloatArray]:
    if name in _LONLAT_EQUAL:
        return x, y
    if name in _TO_WGS84:
        return _TO_WGS84[name](x, y)
    lon, lat = _transformer(name, True).transform(x, y)
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def _core_from_wgs84(lon: FloatArray, lat: FloatArray, name: str) -> tuple[FloatArray, FloatArray]:
    if name in _LONLAT_EQUAL:
        return lon, lat
    if name in _FROM_WGS84:
        return _FROM_WGS84[name](lon, lat)
    x, y = _transformer(name, False).transform(lon, lat)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def _convert(x: FloatArray, y: FloatArray, src: str, dst: str) -> tuple[FloatArray, FloatArray]:
    """Canonical ``src`` → canonical ``dst``, through WGS 84."""
    if same_crs(src, dst):
        return x, y
    return _core_from_wgs84(*_core_to_wgs84(x, y, src), dst)


@overload
def to_wgs84(lon: float, lat: float, crs: str | int | pyproj.CRS) -> tuple[float, float]: ...
@overload
def to_wgs84(
    lon: npt.ArrayLike, lat: npt.ArrayLike, crs: str | int | pyproj.CRS
) -> tuple[FloatArray, FloatArray]: ...
def to_wgs84(lon: Any, lat: Any, crs: str | int | pyproj.CRS) -> tuple[Any, Any]:
    """Coordinates in ``crs`` (anything :func:`normalize_crs` accepts) → WGS 84 lon/lat.

    For EPSG codes ``lon``/``lat`` are x/y in that CRS (easting/northing when projected).
    Floats give floats, array-likes give float64 arrays.
    """
    name = normalize_crs(crs)
    x, y, scalar = _as_arrays(lon, lat)
    return _as_output(*_core_to_wgs84(x, y, name), scalar)


@overload
def from_wgs84(lon: float, lat: float, crs: str | int | pyproj.CRS) -> tuple[float, float]: ...
@overload
def from_wgs84(
    lon: npt.ArrayLike, lat: npt.ArrayLike, crs: str | int | pyproj.CRS
) -> tuple[FloatArray, FloatArray]: ...
def from_wgs84(lon: Any, lat: Any, crs: str | int | pyproj.CRS) -> tuple[Any, Any]:
    """WGS 84 lon/lat → coordinates (x, y) in ``crs``; the inverse of :func:`to_wgs84`."""
    name = normalize_crs(crs)
    x, y, scalar = _as_arrays(lon, lat)
    return _as_output(*_core_from_wgs84(x, y, name), scalar)


# --------------------------------------------------------------------------------------------
# Geometries and frames
# --------------------------------------------------------------------------------------------


def _transform_geoms(geoms: Any, src: str, dst: str) -> Any:
    """shapely.transform over a geometry or an array of them; Z values are kept as they are."""

    def fn(coords: FloatArray) -> FloatArray:
        out = coords.copy()
        out[:, 0], out[:, 1] = _convert(coords[:, 0], coords[:, 1], src, dst)
        return out

    # include_z=True keeps each geometry's dimensionality (2D geometries stay 2D).
    return shapely.transform(geoms, fn, include_z=True)


def transform_geometry(geom: G, src: str | int | pyproj.CRS, dst: str | int | pyproj.CRS) -> G:
    """A shapely geometry converted from ``src`` to ``dst`` (any accepted CRSs, via WGS 84).

    Vertex by vertex; edges are not densified. That suits community-scale shapes: the GCJ-02
    offset varies by at most a few metres per kilometre and bends a 1 km straight edge by under
    10 cm (about 2 m at 5 km); projections distort such edges even less.
    """
    s = normalize_crs(src, field="src")
    d = normalize_crs(dst, field="dst")
    if same_crs(s, d):
        return geom
    return cast(G, _transform_geoms(geom, s, d))


def _declared_crs(gdf: GeoDataFrame) -> str | None:
    return None if gdf.crs is None else normalize_crs(gdf.crs, field="crs")


def _with_geometry(gdf: GeoDataFrame, geoms: Any, epsg: str) -> GeoDataFrame:
    name = gdf.geometry.name
    return gdf.set_geometry(GeoSeries(geoms, index=gdf.index, crs=epsg, name=name))


def frame_to_wgs84(gdf: GeoDataFrame, crs: str | int | pyproj.CRS | None = None) -> GeoDataFrame:
    """A copy of ``gdf`` in WGS 84 (crs EPSG:4326), for storage.

    ``crs`` (e.g. from ``--crs``) says what the coordinates are when the frame cannot: a
    GeoDataFrame can carry no GCJ-02/BD-09 CRS, so those come only through ``crs``. Since
    GeoJSON is WGS 84 by definition, a frame read from a GCJ-02 GeoJSON file declares
    EPSG:4326 (or CRS84): ``crs`` gcj02/bd09 may therefore override a declared WGS 84/CGCS2000.
    Any other disagreement is a :class:`CRSError` naming both; so is a frame with no CRS and no
    ``crs``. WGS 84 and CGCS2000 count as agreeing (no shift between them). A declared CRS
    without an EPSG code (a local grid) is converted by PROJ when ``crs`` is not given.
    """
    requested = None if crs is None else normalize_crs(crs, field="crs")
    try:
        declared = _declared_crs(gdf)
    except CRSError:
        if requested is None and (gdf.crs.is_projected or gdf.crs.is_geographic):
            # A horizontal CRS with no EPSG code (e.g. a city's local grid in a .prj file):
            # geogrid has no name for it, but PROJ can still convert it.
            return gdf.to_crs("EPSG:4326")
        raise
    if requested is None and declared is None:
        raise CRSError(f"the data declares no CRS; pass --crs (one of: {CRS_HELP})", field="crs")
    if (
        requested is not None
        and declared is not None
        and not (
            same_crs(requested, declared) or (requested in _TO_WGS84 and declared in _LONLAT_EQUAL)
        )
    ):
        raise CRSError(
            f"CRS conflict: the data declares {declared} but --crs says {requested}; "
            "drop --crs or fix the file's CRS",
            field="crs",
        )
    src = cast(str, requested or declared)
    geoms = gdf.geometry.to_numpy()
    if src not in _LONLAT_EQUAL:
        geoms = _transform_geoms(geoms, src, WGS84)
    return _with_geometry(gdf, geoms, "EPSG:4326")


def frame_from_wgs84(gdf: GeoDataFrame, crs: str | int | pyproj.CRS) -> GeoDataFrame:
    """A copy of a WGS 84 frame in ``crs``, for display (e.g. overlays on Amap's GCJ-02 tiles).

    A frame declaring another CRS is first brought to WGS 84 by :func:`frame_to_wgs84`; one
    declaring none is refused. For gcj02/bd09 the result is labelled EPSG:4326, the only
    label such coordinates can carry (as in a GCJ-02 GeoJSON file; Folium's GeoJson
    reprojects to EPSG:4326, a no-op then); ``attrs["geogrid_crs"]`` records the real one.
    Never store such a frame.
    """
    target = normalize_crs(crs, field="crs")
    declared = _declared_crs(gdf)
    if declared is None:
        raise CRSError("the data declares no CRS; expected WGS 84 (EPSG:4326)", field="crs")
    if declared not in _LONLAT_EQUAL:
        gdf = frame_to_wgs84(gdf)
    geoms = gdf.geometry.to_numpy()
    if target not in _LONLAT_EQUAL:
        geoms = _transform_geoms(geoms, WGS84, target)
    out = _with_geometry(gdf, geoms, _LABEL.get(target, target))
    out.attrs["geogrid_crs"] = target
    return out


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def check_lonlat(
    lon: object, lat: object, *, lon_field: str = "lon", lat_field: str = "lat"
) -> tuple[float, float]:
    """``(lon, lat)`` as finite floats in range (lon −180..180, lat −90..90).

    Numbers and numeric strings are accepted; anything else raises :class:`InvalidInput`
    naming the field and the value (with a hint when the two look swapped).
    """
    x = finite_number(lon, lon_field)
    y = finite_number(lat, lat_field)
    if not -180.0 <= x <= 180.0:
        raise InvalidInput(
            f"{lon_field} must be between -180 and 180 degrees, got {x!r}", field=lon_field
        )
    if not -90.0 <= y <= 90.0:
        hint = " (are longitude and latitude swapped?)" if -90.0 <= x <= 90.0 else ""
        raise InvalidInput(
            f"{lat_field} must be between -90 and 90 degrees, got {y!r}{hint}", field=lat_field
        )
    return x, y


def finite_number(value: object, field: str) -> float:
    """``value`` as a finite float: a number or numeric string, not a bool, NaN or infinity.

    Else :class:`InvalidInput` naming ``field`` and the value (cut at 60 characters). The
    number rules of :func:`check_lonlat` without its degree ranges (for projected CRSs).
    """
    if isinstance(value, bool):
        raise InvalidInput(f"{field} must be a number, got {value!r}", field=field)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInput(f"{field} must be a number, got {_short(value)}", field=field) from None
    if not math.isfinite(number):
        raise InvalidInput(f"{field} must be a finite number, got {_short(value)}", field=field)
    return number


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"

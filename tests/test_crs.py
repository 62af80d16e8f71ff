"""geogrid.crs: CRS names, GCJ-02/BD-09 conversions, geometries, frames, lon/lat checks.

No database. Reference values come from the test suites of the two de-facto implementations:
googollee/eviltransform (python/test.py) and wandergis/coordtransform (test/app.js).
"""

from __future__ import annotations

import math

import numpy as np
import pyproj
import pytest
import shapely
from geopandas import GeoDataFrame
from shapely.geometry import Point, Polygon

from geogrid import crs as gc
from geogrid.errors import CRSError, InvalidInput

GEOD = pyproj.Geod(ellps="WGS84")
HUIZHOU = (114.40, 23.10)


def metres(lon1: object, lat1: object, lon2: object, lat2: object) -> np.ndarray:
    """Geodesic distance(s) in metres on WGS 84."""
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


def china_grid() -> tuple[np.ndarray, np.ndarray]:
    """A 60 × 40 grid of points over mainland China (and some sea), WGS 84."""
    lon, lat = np.meshgrid(np.linspace(74.0, 134.0, 60), np.linspace(18.0, 53.0, 40))
    return lon.ravel(), lat.ravel()


# --------------------------------------------------------------------------------------------
# normalize_crs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("EPSG:4326", "wgs84"),
        ("epsg:4326", "wgs84"),
        ("4326", "wgs84"),
        (4326, "wgs84"),
        ("wgs84", "wgs84"),
        ("WGS 84", "wgs84"),
        ("wgs-84", "wgs84"),
        (" WGS_84 ", "wgs84"),
        ("OGC:CRS84", "wgs84"),
        ("urn:ogc:def:crs:EPSG::4326", "wgs84"),
        ("EPSG:4490", "cgcs2000"),
        ("4490", "cgcs2000"),
        (4490, "cgcs2000"),
        ("cgcs2000", "cgcs2000"),
        ("CGCS 2000", "cgcs2000"),
        ("gcj02", "gcj02"),
        ("GCJ-02", "gcj02"),
        ("gcj", "gcj02"),
        ("Mars", "gcj02"),
        ("bd09", "bd09"),
        ("BD-09", "bd09"),
        ("baidu", "bd09"),
        ("EPSG:3857", "EPSG:3857"),
        ("3857", "EPSG:3857"),
        (3857, "EPSG:3857"),
        ("epsg:4547", "EPSG:4547"),
        ("EPSG:32650", "EPSG:32650"),
    ],
)
def test_normalize_crs_aliases(name: str | int, expected: str) -> None:
    assert gc.normalize_crs(name) == expected


def test_normalize_crs_accepts_pyproj_objects_and_wkt() -> None:
    assert gc.normalize_crs(pyproj.CRS.from_epsg(4547)) == "EPSG:4547"
    assert gc.normalize_crs(pyproj.CRS.from_epsg(4326)) == gc.WGS84
    assert gc.normalize_crs(pyproj.CRS.from_epsg(4490).to_wkt()) == gc.CGCS2000
    assert gc.normalize_crs(pyproj.CRS.from_epsg(32650).to_wkt()) == "EPSG:32650"


def test_constants() -> None:
    assert (gc.WGS84, gc.CGCS2000, gc.GCJ02, gc.BD09) == ("wgs84", "cgcs2000", "gcj02", "bd09")
    for name in (gc.WGS84, gc.CGCS2000, gc.GCJ02, gc.BD09):
        assert name in gc.ACCEPTED_CRS_NAMES
        assert gc.normalize_crs(name) == name
    assert gc.same_crs(gc.WGS84, gc.CGCS2000)
    assert not gc.same_crs(gc.WGS84, gc.GCJ02)


@pytest.mark.parametrize(
    "name",
    [
        None,
        "",
        "foo",
        "EPSG:9999999",
        "EPSG:4978",  # geocentric
        "EPSG:5773",  # vertical (EGM96 height)
        True,
        1.5,
        "+proj=tmerc +lon_0=114.5 +k=1 +x_0=500000 +ellps=GRS80",  # no EPSG code
    ],
)
def test_normalize_crs_errors_list_accepted_names(name: object) -> None:
    with pytest.raises(CRSError) as err:
        gc.normalize_crs(name, field="src")  # type: ignore[arg-type]
    assert err.value.field == "src"
    for accepted in ("wgs84", "cgcs2000", "gcj02", "bd09", "EPSG:"):
        assert accepted in err.value.message


def test_normalize_crs_default_field() -> None:
    with pytest.raises(CRSError) as err:
        gc.normalize_crs("klingon")
    assert err.value.field == "crs"
    assert "'klingon'" in err.value.message


# --------------------------------------------------------------------------------------------
# GCJ-02 / BD-09 converters
# --------------------------------------------------------------------------------------------


def test_reference_values_of_eviltransform() -> None:
    # googollee/eviltransform python/test.py TESTS: (wgsLat, wgsLng, gcjLat, gcjLng).
    cases = [
        (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
        (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
        (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
    ]
    w_lat, w_lon, g_lat, g_lon = (np.array(col) for col in zip(*cases, strict=True))
    lon, lat = gc.wgs84_to_gcj02(w_lon, w_lat)
    np.testing.assert_allclose(lon, g_lon, rtol=0, atol=1e-9)
    np.testing.assert_allclose(lat, g_lat, rtol=0, atol=1e-9)
    lon, lat = gc.gcj02_to_wgs84(g_lon, g_lat)
    np.testing.assert_allclose(lon, w_lon, rtol=0, atol=1e-9)
    np.testing.assert_allclose(lat, w_lat, rtol=0, atol=1e-9)


def test_reference_values_of_coordtransform() -> None:
    # wandergis/coordtransform test/app.js, input (116.404, 39.915).
    lon, lat = gc.wgs84_to_gcj02(116.404, 39.915)
    assert lon == pytest.approx(116.41024449916938, abs=1e-9)
    assert lat == pytest.approx(39.91640428150164, abs=1e-9)
    lon, lat = gc.gcj02_to_bd09(116.404, 39.915)
    assert lon == pytest.approx(116.41036949371029, abs=1e-9)
    assert lat == pytest.approx(39.92133699351021, abs=1e-9)
    # coordtransform's bd09togcj02 is an approximate inverse (~0.1 m off); ours is exact.
    lon, lat = gc.bd09_to_gcj02(116.404, 39.915)
    assert lon == pytest.approx(116.39762729119315, abs=1e-6)
    assert lat == pytest.approx(39.90865673957631, abs=1e-6)
    assert gc.gcj02_to_bd09(lon, lat) == pytest.approx((116.404, 39.915), abs=1e-9)


def test_gcj02_round_trip_over_china() -> None:
    lon, lat = china_grid()
    g_lon, g_lat = gc.wgs84_to_gcj02(lon, lat)
    assert np.all(metres(lon, lat, g_lon, g_lat) > 1.0)  # every grid point is shifted
    w_lon, w_lat = gc.gcj02_to_wgs84(g_lon, g_lat)
    assert np.abs(w_lon - lon).max() < 1e-7
    assert np.abs(w_lat - lat).max() < 1e-7
    assert metres(lon, lat, w_lon, w_lat).max() < 1e-3  # well under 1 cm


def test_bd09_round_trip_over_china() -> None:
    lon, lat = china_grid()
    b_lon, b_lat = gc.wgs84_to_bd09(lon, lat)
    w_lon, w_lat = gc.bd09_to_wgs84(b_lon, b_lat)
    assert np.abs(w_lon - lon).max() < 1e-7
    assert np.abs(w_lat - lat).max() < 1e-7
    g_lon, g_lat = gc.wgs84_to_gcj02(lon, lat)
    back_lon, back_lat = gc.bd09_to_gcj02(*gc.gcj02_to_bd09(g_lon, g_lat))
    assert np.abs(back_lon - g_lon).max() < 1e-7
    assert np.abs(back_lat - g_lat).max() < 1e-7


def test_offset_near_huizhou() -> None:
    g_lon, g_lat = gc.wgs84_to_gcj02(*HUIZHOU)
    assert 500.0 < metres(*HUIZHOU, g_lon, g_lat) < 650.0
    assert g_lon > HUIZHOU[0] and g_lat < HUIZHOU[1]  # east and south, as seen on Amap
    b_lon, b_lat = gc.wgs84_to_bd09(*HUIZHOU)
    assert 1000.0 < metres(*HUIZHOU, b_lon, b_lat) < 1500.0


def test_forward_is_self_consistent() -> None:
    lon, lat = china_grid()
    b1 = gc.wgs84_to_bd09(lon, lat)
    b2 = gc.gcj02_to_bd09(*gc.wgs84_to_gcj02(lon, lat))
    np.testing.assert_array_equal(b1, b2)
    # The offset is smooth: 0.01° (~1 km) apart, offsets differ by metres, not hundreds.
    g1 = np.subtract(gc.wgs84_to_gcj02(lon, lat), (lon, lat))
    g2 = np.subtract(gc.wgs84_to_gcj02(lon + 0.01, lat), (lon + 0.01, lat))
    assert np.abs(g1 - g2).max() < 1e-4


@pytest.mark.parametrize(
    ("lon", "lat"),
    [(0.0, 0.0), (151.21, -33.87), (-0.13, 51.51), (139.69, 35.69), (100.0, 60.0), (60.0, 30.0)],
)
def test_out_of_china_unchanged_by_gcj02(lon: float, lat: float) -> None:
    assert gc.wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert gc.gcj02_to_wgs84(lon, lat) == (lon, lat)
    # The BD-09 step still applies (as coordtransform does); it is undone exactly.
    assert gc.bd09_to_wgs84(*gc.wgs84_to_bd09(lon, lat)) == pytest.approx((lon, lat), abs=1e-9)


def test_mixed_in_and_out_of_china_array() -> None:
    lon = np.array([114.4, 0.0, 151.21])
    lat = np.array([23.1, 0.0, -33.87])
    g_lon, g_lat = gc.wgs84_to_gcj02(lon, lat)
    assert g_lon[0] != lon[0]
    np.testing.assert_array_equal(g_lon[1:], lon[1:])
    np.testing.assert_array_equal(g_lat[1:], lat[1:])


def test_kinds_scalars_arrays_and_nan() -> None:
    lon, lat = gc.wgs84_to_gcj02(114.4, 23.1)
    assert type(lon) is float and type(lat) is float
    lon_a, lat_a = gc.wgs84_to_gcj02([114.4, 114.5], 23.1)  # list, broadcast scalar
    assert isinstance(lon_a, np.ndarray) and lon_a.shape == (2,) and lat_a.dtype == np.float64
    assert lon_a[0] == lon
    grid = np.full((2, 3), 114.4)
    assert gc.gcj02_to_wgs84(grid, grid * 0 + 23.1)[0].shape == (2, 3)
    nan_lon, nan_lat = gc.gcj02_to_wgs84([math.nan, 114.4], [23.1, math.nan])
    assert np.isnan(nan_lon[0]) and np.isnan(nan_lat[1])
    # Inputs are never modified.
    src = np.array([114.4, 114.5])
    gc.gcj02_to_wgs84(src, np.array([23.1, 23.2]))
    np.testing.assert_array_equal(src, [114.4, 114.5])


# --------------------------------------------------------------------------------------------
# to_wgs84 / from_wgs84
# --------------------------------------------------------------------------------------------


def test_epsg3857_round_trip() -> None:
    lon, lat = china_grid()
    x, y = gc.from_wgs84(lon, lat, "EPSG:3857")
    assert x.max() > 1.4e7  # metres, easting first (always_xy)
    back_lon, back_lat = gc.to_wgs84(x, y, 3857)
    np.testing.assert_allclose(back_lon, lon, atol=1e-9)
    np.testing.assert_allclose(back_lat, lat, atol=1e-9)
    # Spot value: Web Mercator easting is R·λ.
    x0, _ = gc.from_wgs84(*HUIZHOU, "EPSG:3857")
    assert x0 == pytest.approx(6378137.0 * math.radians(HUIZHOU[0]), abs=1e-3)


def test_cgcs2000_gauss_kruger_round_trip() -> None:
    x, y = gc.from_wgs84(*HUIZHOU, "EPSG:4547")  # CGCS2000 3-degree GK, CM 114E
    assert 530_000 < x < 550_000 and 2_550_000 < y < 2_560_000
    assert gc.to_wgs84(x, y, "EPSG:4547") == pytest.approx(HUIZHOU, abs=1e-9)


def test_to_and_from_wgs84_for_every_named_crs() -> None:
    lon, lat = HUIZHOU
    assert gc.to_wgs84(lon, lat, "wgs84") == (lon, lat)
    assert gc.to_wgs84(lon, lat, "EPSG:4490") == (lon, lat)  # CGCS2000 taken equal to WGS 84
    assert gc.from_wgs84(lon, lat, "cgcs2000") == (lon, lat)
    assert gc.from_wgs84(lon, lat, "GCJ-02") == gc.wgs84_to_gcj02(lon, lat)
    assert gc.from_wgs84(lon, lat, "baidu") == gc.wgs84_to_bd09(lon, lat)
    assert gc.to_wgs84(*gc.wgs84_to_gcj02(lon, lat), "mars") == pytest.approx(HUIZHOU, abs=1e-9)
    assert gc.to_wgs84(*gc.wgs84_to_bd09(lon, lat), "bd09") == pytest.approx(HUIZHOU, abs=1e-9)
    with pytest.raises(CRSError):
        gc.to_wgs84(lon, lat, "nonsense")


# --------------------------------------------------------------------------------------------
# Geometries and frames
# --------------------------------------------------------------------------------------------


def square(lon: float = HUIZHOU[0], lat: float = HUIZHOU[1], size: float = 0.01) -> Polygon:
    return Polygon([(lon, lat), (lon + size, lat), (lon + size, lat + size), (lon, lat + size)])


def test_transform_geometry_polygon() -> None:
    poly = square()
    shifted = gc.transform_geometry(poly, "wgs84", "gcj02")
    assert isinstance(shifted, Polygon) and shifted.is_valid
    assert len(shifted.exterior.coords) == len(poly.exterior.coords)
    moved = metres(poly.centroid.x, poly.centroid.y, shifted.centroid.x, shifted.centroid.y)
    assert 500.0 < moved < 650.0
    assert shifted.area == pytest.approx(poly.area, rel=1e-3)  # a shift, not a distortion
    back = gc.transform_geometry(shifted, gc.GCJ02, gc.WGS84)
    assert shapely.equals_exact(back, poly, tolerance=1e-9)
    via_bd = gc.transform_geometry(gc.transform_geometry(poly, 4326, "bd09"), "bd09", "gcj02")
    assert shapely.equals_exact(via_bd, shifted, tolerance=1e-9)
    projected = gc.transform_geometry(poly, "cgcs2000", "EPSG:4547")
    geodesic_area = abs(GEOD.geometry_area_perimeter(poly)[0])  # ~1.13 km²
    assert projected.is_valid and projected.area == pytest.approx(geodesic_area, rel=1e-3)
    assert gc.transform_geometry(poly, "wgs84", "EPSG:4490") is poly  # taken as equal


def test_transform_geometry_keeps_z_and_names_fields() -> None:
    point = Point(114.4, 23.1, 42.0)
    moved = gc.transform_geometry(point, "wgs84", "gcj02")
    assert moved.has_z and moved.z == 42.0
    assert not gc.transform_geometry(Point(114.4, 23.1), "wgs84", "gcj02").has_z
    with pytest.raises(CRSError) as err:
        gc.transform_geometry(point, "wgs84", "nowhere")
    assert err.value.field == "dst"


def frame(crs: str | None) -> GeoDataFrame:
    return GeoDataFrame(
        {"name": ["a", "b"]},
        geometry=[square(), Point(114.42, 23.12)],
        crs=crs,
        index=[10, 20],
    )


def test_frame_to_wgs84_conflict_names_both() -> None:
    gdf = frame(None).set_crs("EPSG:4326").to_crs("EPSG:3857")
    with pytest.raises(CRSError) as err:
        gc.frame_to_wgs84(gdf, "EPSG:4547")
    assert err.value.field == "crs"
    assert "EPSG:3857" in err.value.message and "EPSG:4547" in err.value.message


def test_frame_to_wgs84_missing_crs() -> None:
    with pytest.raises(CRSError) as err:
        gc.frame_to_wgs84(frame(None))
    assert "declares no CRS" in err.value.message and "--crs" in err.value.message
    assert err.value.field == "crs"


def test_frame_to_wgs84_gcj02() -> None:
    gcj = frame(None)
    gcj = gcj.set_geometry([gc.transform_geometry(g, "wgs84", "gcj02") for g in gcj.geometry])
    expected = frame("EPSG:4326")
    # Declared nowhere, or declared WGS 84 as a GeoJSON file read by geopandas always is.
    for src in (gcj, gcj.set_crs("EPSG:4326")):
        out = gc.frame_to_wgs84(src, "GCJ-02")
        assert out.crs == pyproj.CRS.from_epsg(4326)
        assert list(out.columns) == ["name", "geometry"] and list(out.index) == [10, 20]
        for got, want in zip(out.geometry, expected.geometry, strict=True):
            assert shapely.equals_exact(got, want, tolerance=1e-9)
    assert src.geometry.iloc[1].x != expected.geometry.iloc[1].x  # input untouched


def test_frame_to_wgs84_other_crs() -> None:
    wgs = frame("EPSG:4326")
    merc = wgs.to_crs("EPSG:3857")
    for src, crs in (
        (merc, None),
        (merc, "EPSG:3857"),
        (merc.set_crs(None, allow_override=True), 3857),
    ):
        out = gc.frame_to_wgs84(src, crs)
        assert out.crs == pyproj.CRS.from_epsg(4326)
        assert out.geom_equals_exact(wgs, tolerance=1e-9).all()
    # CGCS2000 and WGS 84 agree: no conflict, no shift, relabelled EPSG:4326.
    out = gc.frame_to_wgs84(frame("EPSG:4490"), "wgs84")
    assert out.crs == pyproj.CRS.from_epsg(4326) and out.geom_equals(wgs).all()
    # A local grid without an EPSG code is converted by PROJ.
    local = pyproj.CRS("+proj=tmerc +lat_0=0 +lon_0=114.5 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80")
    out = gc.frame_to_wgs84(wgs.to_crs(local))
    assert out.crs == pyproj.CRS.from_epsg(4326)
    assert out.geom_equals_exact(wgs, tolerance=1e-9).all()


def test_frame_from_wgs84_for_amap_tiles() -> None:
    wgs = frame("EPSG:4326")
    gcj = gc.frame_from_wgs84(wgs, "gcj02")
    assert gcj.crs == pyproj.CRS.from_epsg(4326)  # the only label GCJ-02 can carry
    assert gcj.attrs["geogrid_crs"] == "gcj02"
    moved = metres(wgs.geometry.iloc[1].x, wgs.geometry.iloc[1].y, *gcj.geometry.iloc[1].coords[0])
    assert 500.0 < moved < 650.0
    back = gc.frame_to_wgs84(gcj, "gcj02")
    assert back.geom_equals_exact(wgs, tolerance=1e-9).all()
    merc = gc.frame_from_wgs84(wgs, "EPSG:3857")
    assert merc.crs == pyproj.CRS.from_epsg(3857)
    assert gc.frame_from_wgs84(merc, "wgs84").geom_equals_exact(wgs, tolerance=1e-9).all()
    with pytest.raises(CRSError):
        gc.frame_from_wgs84(frame(None), "gcj02")


# --------------------------------------------------------------------------------------------
# check_lonlat
# --------------------------------------------------------------------------------------------


def test_check_lonlat_accepts() -> None:
    assert gc.check_lonlat(114.4, 23.1) == (114.4, 23.1)
    assert gc.check_lonlat("114.4", " 23.1 ") == (114.4, 23.1)
    assert gc.check_lonlat(np.float32(180.0), -90) == (180.0, -90.0)
    assert all(type(v) is float for v in gc.check_lonlat(114, 23))


@pytest.mark.parametrize(
    ("lon", "lat", "field", "shown"),
    [
        ("abc", 23.1, "lon", "'abc'"),
        (None, 23.1, "lon", "None"),
        (True, 23.1, "lon", "True"),
        (math.nan, 23.1, "lon", "nan"),
        (114.4, "inf", "lat", "'inf'"),
        (180.5, 23.1, "lon", "180.5"),
        (114.4, -90.01, "lat", "-90.01"),
        (114.4, [23.1], "lat", "[23.1]"),
    ],
)
def test_check_lonlat_errors_name_field_and_value(
    lon: object, lat: object, field: str, shown: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        gc.check_lonlat(lon, lat)
    assert err.value.field == field
    assert err.value.message.startswith(field)
    assert shown in err.value.message


def test_check_lonlat_custom_fields_and_swap_hint() -> None:
    with pytest.raises(InvalidInput) as err:
        gc.check_lonlat(23.1, 114.4, lon_field="x", lat_field="y")
    assert err.value.field == "y"
    assert "swapped" in err.value.message
    with pytest.raises(InvalidInput) as err:
        gc.check_lonlat("east", 23.1, lon_field="longitude")
    assert err.value.field == "longitude" and "'east'" in err.value.message

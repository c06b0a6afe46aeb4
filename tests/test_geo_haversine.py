"""Haversine family: properties against pyproj.Geod on the sphere and on WGS84, plus edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geo.earth import EARTH_RADIUS_KM, WGS84_MAX_CURVATURE_RADIUS_KM, WGS84_MIN_CURVATURE_RADIUS_KM
from geo.haversine import cross_track_distance_km, destination_point, distance_km, initial_bearing_deg
from geo.validation import check_lat, wrap_lon
from vesselwatch.errors import InputError

SPHERE = Geod(a=EARTH_RADIUS_KM * 1000.0, b=EARTH_RADIUS_KM * 1000.0)
WGS84 = Geod(ellps="WGS84")

lons = st.floats(-180.0, 180.0, allow_nan=False)
lats = st.floats(-90.0, 90.0, allow_nan=False)
points = st.tuples(lons, lats)


@settings(max_examples=300, deadline=None)
@given(points, points)
def test_distance_matches_geod_on_the_sphere(p1, p2):
    (lon1, lat1), (lon2, lat2) = p1, p2
    _, _, metres = SPHERE.inv(lon1, lat1, lon2, lat2)
    # the asin form loses up to ~0.2 m only within metres of the antipode
    assert abs(float(distance_km(lon1, lat1, lon2, lat2)) - metres / 1000.0) < 1e-3


@settings(max_examples=300, deadline=None)
@given(points, points)
def test_sphere_and_wgs84_differ_within_the_documented_bound(p1, p2):
    (lon1, lat1), (lon2, lat2) = p1, p2
    sphere_km = float(distance_km(lon1, lat1, lon2, lat2))
    _, _, metres = WGS84.inv(lon1, lat1, lon2, lat2)
    ratio_low = WGS84_MIN_CURVATURE_RADIUS_KM / EARTH_RADIUS_KM
    ratio_high = WGS84_MAX_CURVATURE_RADIUS_KM / EARTH_RADIUS_KM
    assert sphere_km * ratio_low - 1e-6 <= metres / 1000.0 <= sphere_km * ratio_high + 1e-6
    assert abs(metres / 1000.0 - sphere_km) <= 0.0057 * sphere_km + 1e-6


@settings(max_examples=200, deadline=None)
@given(lons, st.floats(-89.0, 89.0), st.floats(0.0, 359.999), st.floats(0.001, 19000.0))
def test_destination_point_matches_geod_and_round_trips(lon, lat, bearing, km):
    out_lon, out_lat = destination_point(lon, lat, bearing, km)
    ref_lon, ref_lat, _ = SPHERE.fwd(lon, lat, bearing, km * 1000.0)
    assert float(distance_km(out_lon, out_lat, ref_lon, ref_lat)) < 1e-6
    assert abs(float(distance_km(lon, lat, out_lon, out_lat)) - km) < 1e-5
    assert -180.0 <= float(out_lon) < 180.0


@settings(max_examples=200, deadline=None)
@given(st.tuples(lons, st.floats(-85.0, 85.0)), st.tuples(lons, st.floats(-85.0, 85.0)))
def test_initial_bearing_matches_geod(p1, p2):
    (lon1, lat1), (lon2, lat2) = p1, p2
    km = float(distance_km(lon1, lat1, lon2, lat2))
    if km < 1e-3 or km > 20000.0:  # the bearing is ill-conditioned at coincident/antipodal points
        return
    azimuth, _, _ = SPHERE.inv(lon1, lat1, lon2, lat2)
    diff = (float(initial_bearing_deg(lon1, lat1, lon2, lat2)) - azimuth + 180.0) % 360.0 - 180.0
    assert abs(diff) < 1e-6


@settings(max_examples=200, deadline=None)
@given(points, points, points)
def test_cross_track_is_bounded_by_distance_and_signed_by_side(p, a, b):
    (lon, lat), (lon1, lat1), (lon2, lat2) = p, a, b
    if float(distance_km(lon1, lat1, lon2, lat2)) < 1e-3:
        return
    xtd = float(cross_track_distance_km(lon, lat, lon1, lat1, lon2, lat2))
    assert abs(xtd) <= float(distance_km(lon, lat, lon1, lat1)) + 1e-6
    assert abs(xtd) <= EARTH_RADIUS_KM * np.pi / 2 + 1e-6


def test_cross_track_side_and_degenerate_path():
    assert cross_track_distance_km(10, -1, 0, 0, 20, 0) > 0  # right of an eastward path
    assert cross_track_distance_km(10, 1, 0, 0, 20, 0) < 0
    assert np.isnan(cross_track_distance_km(10, 1, 5, 5, 5, 5))


def test_edge_cases_poles_antimeridian_identical_antipodes():
    assert distance_km(0.0, 90.0, 137.0, 90.0) < 1e-9
    assert distance_km(12.3, -45.6, 12.3, -45.6) == 0.0
    assert distance_km(180.0, 10.0, -180.0, 10.0) == 0.0
    assert abs(distance_km(179.9, 0.0, -179.9, 0.0) - distance_km(0.0, 0.0, 0.2, 0.0)) < 1e-9
    assert abs(distance_km(0.0, 0.0, 180.0, 0.0) - np.pi * EARTH_RADIUS_KM) < 1e-6
    assert abs(distance_km(0.0, 90.0, 0.0, -90.0) - np.pi * EARTH_RADIUS_KM) < 1e-6
    tiny = distance_km(0.0, 0.0, 1e-9, 0.0)
    assert abs(tiny - np.radians(1e-9) * EARTH_RADIUS_KM) < 1e-18


def test_broadcasting_shapes():
    d = distance_km(np.zeros((3, 1)), 0.0, np.arange(4.0), np.zeros(4))
    assert d.shape == (3, 4)
    lon, lat = destination_point(np.zeros(5), 0.0, 90.0, np.arange(5.0))
    assert lon.shape == lat.shape == (5,)


@pytest.mark.parametrize(
    "bad_lat, rows",
    [([0.0, 91.0, 3.0], "[1]"), ([np.nan, 0.0, -90.5], "[0, 2]"), ([np.inf], "[0]")],
)
def test_invalid_latitudes_name_rows(bad_lat, rows):
    with pytest.raises(InputError, match="lat must be finite and within"):
        distance_km(0.0, bad_lat, 0.0, 0.0)
    with pytest.raises(InputError) as info:
        check_lat(bad_lat)
    assert rows in str(info.value)


def test_invalid_longitudes_and_other_inputs():
    with pytest.raises(InputError, match=r"lon must be finite; bad values at rows \[1\]"):
        distance_km([0.0, np.nan], 0.0, 0.0, 0.0)
    with pytest.raises(InputError, match="distance_km"):
        destination_point(0.0, 0.0, 0.0, -1.0)
    with pytest.raises(InputError, match="bearing_deg"):
        destination_point(0.0, 0.0, np.nan, 1.0)


def test_wrap_lon_range_and_identity():
    values = np.array([-540.0, -180.0, -179.999, 0.0, 179.999, 180.0, 359.0, 721.5, -180.00000000000003])
    wrapped = wrap_lon(values)
    assert ((wrapped >= -180.0) & (wrapped < 180.0)).all()
    assert np.allclose(np.cos(np.radians(wrapped)), np.cos(np.radians(values)))
    assert np.allclose(np.sin(np.radians(wrapped)), np.sin(np.radians(values)))
    inside = np.array([-180.0, -12.25, 179.75])
    assert np.array_equal(wrap_lon(inside), inside)

"""ProtectedAreas: inside, boundary distance and heading-ray entry on the sphere."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Polygon

from geo.areas import ProtectedAreas
from geo.haversine import destination_point, distance_km, initial_bearing_deg
from vesselwatch.errors import InputError


def disc(lon, lat, radius_km, n=720):
    """A polygon approximating a spherical disc (vertices exactly radius_km from the centre)."""
    x, y = destination_point(lon, lat, np.linspace(0, 360, n, endpoint=False), radius_km)
    return Polygon(np.column_stack([x, y]))


centres = st.sampled_from([(0.0, 0.0), (179.9, 10.0), (-180.0, -30.0), (45.0, 89.8), (-100.0, -89.9)])


@settings(max_examples=15, deadline=None)
@given(centres, st.integers(0, 2**32 - 1))
def test_disc_inside_and_boundary_distance(centre, seed):
    rng = np.random.default_rng(seed)
    areas = ProtectedAreas([disc(*centre, 50.0)])
    bearing, r = rng.uniform(0, 360, 200), rng.uniform(0, 100, 200)
    lon, lat = destination_point(centre[0], centre[1], bearing, r)
    inside = areas.contains(lon, lat)[:, 0]
    clear = np.abs(r - 50.0) > 0.05  # the polygon's edges sag at most ~5 m inside the circle
    assert np.array_equal(inside[clear], (r < 50.0)[clear])
    d = areas.boundary_distance_km(lon, lat)[:, 0]
    assert np.abs(d - np.abs(r - 50.0)).max() < 0.01


@settings(max_examples=15, deadline=None)
@given(centres, st.floats(55.0, 90.0), st.floats(-40.0, 40.0))
def test_ray_entry_matches_marching_along_the_ray(centre, start_km, offset_deg):
    areas = ProtectedAreas([disc(*centre, 50.0)])
    lon, lat = destination_point(centre[0], centre[1], 77.0, start_km)
    heading = (initial_bearing_deg(lon, lat, *centre) + offset_deg) % 360.0
    hit = areas.ray_entry(lon, lat, heading, lookahead_km=100.0)
    steps = np.arange(0.0, 100.0, 0.005)
    mx, my = destination_point(lon, lat, heading, steps)
    marched = areas.contains(mx, my)[:, 0]
    if marched.any():
        first = steps[np.argmax(marched)]
        assert hit.enters[0, 0]
        assert abs(hit.distance_km[0, 0] - first) < 0.006
        assert distance_km(lon, lat, hit.lon[0, 0], hit.lat[0, 0]) == pytest.approx(hit.distance_km[0, 0], abs=1e-6)
    elif hit.enters[0, 0]:  # a grazing contact between two marching steps
        assert areas.boundary_distance_km(hit.lon[0, 0], hit.lat[0, 0])[0, 0] < 1e-3


def test_inside_start_short_lookahead_heading_away_and_holes():
    outer = disc(10.0, 10.0, 100.0)
    hole = disc(10.0, 10.0, 30.0)
    ring = Polygon(outer.exterior.coords, [hole.exterior.coords])
    other = disc(12.0, 10.0, 10.0)
    areas = ProtectedAreas([ring, MultiPolygon([other, disc(-170.0, 0.0, 10.0)])], ids=["ring", "pair"])
    assert areas.contains([10.0, 10.0, 12.0, -170.0], [10.0, 9.5, 10.0, 0.0]).tolist() == [
        [False, False], [True, False], [False, True], [False, True]]
    hit = areas.ray_entry([10.0, 10.0], [10.0, 9.5], 90.0, lookahead_km=50.0)
    assert hit.distance_km[1, 0] == 0.0 and hit.enters[1, 0]  # starts inside
    assert hit.enters[0, 0] and abs(hit.distance_km[0, 0] - 30.0) < 0.01  # leaves the hole into the ring
    short = areas.ray_entry(10.0, 10.0, 90.0, lookahead_km=20.0)
    assert not short.enters[0, 0] and np.isinf(short.distance_km[0, 0]) and np.isnan(short.lon[0, 0])
    away = areas.ray_entry(-170.0, 0.05, 0.0, lookahead_km=20.0)
    assert away.enters[0, 1] and away.distance_km[0, 1] == 0.0


def test_validation():
    with pytest.raises(InputError, match="no protected areas"):
        ProtectedAreas([])
    with pytest.raises(InputError, match="extends"):
        ProtectedAreas([Polygon([(-170, -80), (170, -80), (170, 80), (-170, 80)])])
    areas = ProtectedAreas([disc(0.0, 0.0, 10.0)])
    with pytest.raises(InputError, match=r"rows \[1\]"):
        areas.contains([0.0, 0.0], [0.0, -95.0])
    with pytest.raises(InputError, match="heading_deg"):
        areas.ray_entry(0.0, 0.0, np.nan, lookahead_km=10.0)
    with pytest.raises(InputError, match="lookahead_km"):
        areas.ray_entry(0.0, 0.0, 0.0, lookahead_km=-1.0)


def test_from_file(tmp_path):
    import geopandas as gpd

    frame = gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=[disc(0, 0, 10), disc(1, 1, 10)], crs="EPSG:4326")
    frame.to_file(tmp_path / "areas.geojson", driver="GeoJSON")
    areas = ProtectedAreas.from_file(tmp_path / "areas.geojson", id_column="name")
    assert areas.ids.tolist() == ["a", "b"] and areas.contains(1.0, 1.0).tolist() == [[False, True]]

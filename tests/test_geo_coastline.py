"""CoastlineIndex: exact segment distance vs brute force, tiles, chunks, zero-length segments, poles."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.coastline import CoastlineIndex, LineChunk, arc_angle, point_to_arc, read_line_chunks
from geo.earth import EARTH_RADIUS_KM
from geo.haversine import distance_km
from geo.unit_vectors import to_unit_vectors
from vesselwatch.errors import InputError

DATA = "data/naturalearth"


def segments_of(chunks):
    """All segments (a, b) of the chunks; isolated single vertices as zero-length segments."""
    a_parts, b_parts = [], []
    for chunk in chunks:
        xyz = to_unit_vectors(chunk.lon, chunk.lat)
        start = np.asarray(chunk.line_start)
        valid = ~start[1:]
        a_parts += [xyz[:-1][valid]]
        b_parts += [xyz[1:][valid]]
        lone = np.flatnonzero(start & np.r_[start[1:], True])
        a_parts += [xyz[lone]]
        b_parts += [xyz[lone]]
    return np.concatenate(a_parts), np.concatenate(b_parts)


def brute_force_km(lon, lat, a, b):
    q = to_unit_vectors(lon, lat)
    return np.array([point_to_arc(q[i], a, b)[0].min() for i in range(q.shape[0])]) * EARTH_RADIUS_KM


def random_lines(rng, n_lines, centre_lon=0.0, centre_lat=0.0, spread=20.0):
    lons, lats, starts = [], [], []
    for _ in range(n_lines):
        m = int(rng.integers(1, 30))
        lon0, lat0 = centre_lon + rng.uniform(-spread, spread), centre_lat + rng.uniform(-spread, spread)
        lon = lon0 + np.cumsum(rng.normal(0, 0.5, m))
        lat = np.clip(lat0 + np.cumsum(rng.normal(0, 0.5, m)), -90, 90)
        if m > 3:  # repeated vertices: zero-length segments
            lon[2], lat[2] = lon[1], lat[1]
        lons.append(lon)
        lats.append(lat)
        starts.append(np.r_[True, np.zeros(m - 1, bool)])
    return LineChunk(np.concatenate(lons), np.concatenate(lats), np.concatenate(starts))


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([(0.0, 0.0), (180.0, 0.0), (0.0, 88.0), (-170.0, -85.0)]))
def test_matches_brute_force_anywhere(seed, centre):
    rng = np.random.default_rng(seed)
    chunk = random_lines(rng, 12, *centre)
    index = CoastlineIndex.from_chunks([chunk], tile_level=int(rng.integers(0, 4)), max_segment_km=float(rng.choice([5.0, 50.0, 1e4])))
    lon = centre[0] + rng.uniform(-40, 40, 60)
    lat = np.clip(centre[1] + rng.uniform(-40, 40, 60), -90, 90)
    result = index.query(lon, lat)
    expected = brute_force_km(lon, lat, *segments_of([chunk]))
    assert np.abs(result.distance_km - expected).max() < 1e-6  # 1 mm
    # the nearest coast point is at the reported distance
    assert np.abs(distance_km(lon, lat, result.lon, result.lat) - result.distance_km).max() < 1e-6


def test_point_to_arc_against_dense_sampling():
    rng = np.random.default_rng(5)
    a = to_unit_vectors(rng.uniform(-180, 180, 30), rng.uniform(-80, 80, 30))
    b = a + rng.normal(0, 0.05, a.shape)
    b /= np.linalg.norm(b, axis=1)[:, None]
    q = a + rng.normal(0, 0.05, a.shape)
    q /= np.linalg.norm(q, axis=1)[:, None]
    angle, point = point_to_arc(q, a, b)
    t = np.linspace(0, 1, 20001)[:, None, None]
    theta = np.arccos(np.clip((a * b).sum(1), -1, 1))[None, :, None]
    samples = (np.sin((1 - t) * theta) * a + np.sin(t * theta) * b) / np.sin(theta)
    sampled = np.arccos(np.clip((samples * q).sum(-1), -1, 1)).min(axis=0)
    assert (sampled >= angle - 1e-12).all()
    assert ((sampled - angle) * EARTH_RADIUS_KM < 1e-3).all()  # within 1 m of a 20001-point sampling
    assert np.allclose(arc_angle(q, a, b), angle, atol=1e-12)


def test_zero_length_segments_are_points_not_false_zero():
    chunk = LineChunk(np.array([10.0, 10.0, 10.0]), np.array([20.0, 20.0, 20.0]), np.array([True, False, False]))
    index = CoastlineIndex.from_chunks([chunk])
    result = index.query([10.0, 11.0], [20.0, 20.0])
    assert result.distance_km[0] == 0.0
    assert abs(result.distance_km[1] - distance_km(11.0, 20.0, 10.0, 20.0)) < 1e-9
    q = to_unit_vectors(0.0, 0.0)
    angle, _ = point_to_arc(q, to_unit_vectors(5.0, 5.0), to_unit_vectors(5.0, 5.0))
    assert angle > 0.1


def test_antimeridian_and_pole_segments():
    chunk = LineChunk(np.array([170.0, -170.0, 0.0, 180.0]), np.array([60.0, 60.0, 85.0, 85.0]),
                      np.array([True, False, True, False]))
    index = CoastlineIndex.from_chunks([chunk], tile_level=3)
    result = index.query([180.0, 0.0, 90.0], [59.0, 90.0, 89.0])
    expected = brute_force_km(np.array([180.0, 0.0, 90.0]), np.array([59.0, 90.0, 89.0]), *segments_of([chunk]))
    assert np.abs(result.distance_km - expected).max() < 1e-9
    # the 0 -> 180 arc at lat 85 runs over the north pole
    assert result.distance_km[1] == pytest.approx(0.0, abs=1e-6)


def test_natural_earth_50m_file_chunked_matches_brute_force():
    path = f"{DATA}/ne_50m_coastline.json.gz"
    whole = list(read_line_chunks(path))
    small = list(read_line_chunks(path, chunk_vertices=5000))
    assert len(small) > 5 and sum(len(c) for c in small) == sum(len(c) for c in whole)
    index = CoastlineIndex.from_file(path, chunk_vertices=5000, workers=2)
    rng = np.random.default_rng(11)
    lon, lat = rng.uniform(-180, 180, 40), np.degrees(np.arcsin(rng.uniform(-1, 1, 40)))
    expected = brute_force_km(lon, lat, *segments_of(whole))
    got = index.query(lon, lat, workers=2, chunk_size=7)
    assert np.abs(got.distance_km - expected).max() < 1e-3  # < 1 m
    assert index.n_segments >= sum(len(c) - int(c.line_start.sum()) for c in whole)


def test_validation_and_empty_input(tmp_path):
    chunk = LineChunk(np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.array([True, False]))
    index = CoastlineIndex.from_chunks([chunk])
    with pytest.raises(InputError, match=r"rows \[1\]"):
        index.query([0.0, 0.0], [0.0, 100.0])
    with pytest.raises(InputError, match="no vertices"):
        CoastlineIndex.from_chunks([])
    with pytest.raises(InputError, match="does not exist"):
        CoastlineIndex.from_file(tmp_path / "nope.geojson")
    with pytest.raises(InputError, match="coastline lat"):
        CoastlineIndex.from_chunks([LineChunk(np.array([0.0]), np.array([np.nan]), np.array([True]))])

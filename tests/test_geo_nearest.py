"""PlatformIndex: identical to the brute force (ties included), k nearest, max_km, WGS84, loaders."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geo.haversine import distance_km
from geo.nearest import PlatformIndex, brute_force_nearest
from vesselwatch.errors import InputError

WGS84 = Geod(ellps="WGS84")


def assert_identical_to_brute_force(index, lon, lat, plon, plat):
    result = index.query(lon, lat)
    for i in range(len(lon)):
        d_min, rows = brute_force_nearest(lon[i], lat[i], plon, plat)
        assert result.distance_km[i] == d_min, i
        assert np.array_equal(result.tied_index(i), rows), (i, result.tied_index(i), rows)
    return result


# platforms on a coarse grid, with duplicates: plenty of exact ties and equidistant sets
grid_lon = st.integers(-8, 8).map(lambda v: v * 22.5)
grid_lat = st.integers(-4, 4).map(lambda v: v * 22.5)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(grid_lon, grid_lat), min_size=1, max_size=40),
    st.lists(st.tuples(grid_lon.map(lambda v: v / 2), grid_lat.map(lambda v: v / 2)), min_size=1, max_size=30),
)
def test_grid_platforms_with_ties_match_brute_force(platforms, queries):
    plon, plat = np.array(platforms, dtype=float).T
    qlon, qlat = np.array(queries, dtype=float).T
    index = PlatformIndex(plon, plat)
    assert_identical_to_brute_force(index, qlon, qlat, index.lon, index.lat)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 300), st.booleans())
def test_clustered_random_platforms_match_brute_force(seed, n, clustered):
    rng = np.random.default_rng(seed)
    if clustered:
        centre_lon, centre_lat = rng.uniform(-180, 180, 3), rng.uniform(-70, 70, 3)
        pick = rng.integers(0, 3, n)
        plon = centre_lon[pick] + rng.normal(0, 0.2, n)
        plat = np.clip(centre_lat[pick] + rng.normal(0, 0.2, n), -90, 90)
    else:
        plon, plat = rng.uniform(-180, 180, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    dup = rng.integers(0, n, n // 5)
    plon[dup[: len(dup) // 2]] = plon[dup[len(dup) // 2 : 2 * (len(dup) // 2)]]
    plat[dup[: len(dup) // 2]] = plat[dup[len(dup) // 2 : 2 * (len(dup) // 2)]]
    index = PlatformIndex(plon, plat)
    qlon = np.concatenate([rng.uniform(-180, 180, 150), index.lon[:20] + rng.normal(0, 0.05, min(20, n))])
    qlat = np.clip(np.concatenate([rng.uniform(-90, 90, 150), index.lat[:20] + rng.normal(0, 0.05, min(20, n))]), -90, 90)
    assert_identical_to_brute_force(index, qlon, qlat, index.lon, index.lat)


def test_adversarial_poles_antimeridian_duplicates_rings():
    ring_lon = np.arange(-180.0, 180.0, 15.0)
    plon = np.concatenate([ring_lon, ring_lon, [179.99, -179.99, 179.99, 0.0, 0.0, 10.0, 10.0]])
    plat = np.concatenate([np.full(24, 80.0), np.full(24, -60.0), [0.0, 0.0, 0.0, 90.0, -90.0, 5.0, 5.0]])
    index = PlatformIndex(plon, plat)
    qlon = np.array([0.0, 77.0, -180.0, 180.0, 179.999, 0.0, 10.0, 0.0, 12.5, -120.0])
    qlat = np.array([90.0, 90.0, 0.0, 0.0, 0.0, -90.0, 5.0, 85.0, -89.0, -60.0])
    result = assert_identical_to_brute_force(index, qlon, qlat, index.lon, index.lat)
    assert result.tie_count[6] == 2  # exact duplicate platforms at (10, 5)
    assert result.tied_index(4).tolist() == [48, 50]  # duplicates at 179.99 seen across the antimeridian
    assert result.distance_km[0] == 0.0 and result.tied_index(0).tolist() == [51]


def test_equidistant_ring_around_a_query_matches_brute_force():
    # 72 platforms on a small circle: the brute force decides which are exactly tied
    bearings = np.arange(0.0, 360.0, 5.0)
    from geo.haversine import destination_point

    plon, plat = destination_point(3.0, 50.0, bearings, 25.0)
    index = PlatformIndex(plon, plat)
    assert_identical_to_brute_force(index, np.array([3.0, 3.0001]), np.array([50.0, 50.0]), index.lon, index.lat)


def test_k_nearest_and_max_km_against_brute_force():
    rng = np.random.default_rng(7)
    plon, plat = rng.uniform(-10, 10, 200), rng.uniform(-10, 10, 200)
    plon[:10] = plon[10:20]
    plat[:10] = plat[10:20]
    index = PlatformIndex(plon, plat, ids=[f"P{i}" for i in range(200)])
    qlon, qlat = rng.uniform(-12, 12, 50), rng.uniform(-12, 12, 50)
    result = index.query(qlon, qlat, k=5, max_km=150.0)
    for i in range(50):
        d = distance_km(qlon[i], qlat[i], index.lon, index.lat)
        order = np.lexsort((np.arange(200), d))
        order = order[d[order] <= 150.0][:5]
        assert np.array_equal(result.k_index[i, : order.size], order)
        assert np.array_equal(result.k_distance_km[i, : order.size], d[order])
        assert (result.k_index[i, order.size :] == -1).all()
        if order.size:
            assert result.distance_km[i] == d.min()
            assert np.array_equal(result.tied_index(i), np.flatnonzero(d == d.min()))
        else:
            assert np.isinf(result.distance_km[i]) and result.tie_count[i] == 0
    assert result.tied_ids(0).dtype.kind == "U"
    k1 = index.query(qlon, qlat, max_km=150.0)
    assert np.array_equal(k1.distance_km, result.distance_km)
    assert np.array_equal(k1.tie_index, result.tie_index)


def test_ellipsoidal_nearest_matches_brute_force_geod():
    rng = np.random.default_rng(3)
    # north-south vs east-west neighbours: the sphere and the ellipsoid disagree on which is nearer
    rlon, rlat = rng.uniform(-5, 5, 300), rng.uniform(-5, 5, 300)
    rlat = np.where((np.abs(rlon) < 1.5) & (np.abs(rlat) < 1.5), rlat + 3.0, rlat)  # keep the origin clear
    plon = np.concatenate([rlon, [0.0, 1.0, 0.0]])
    plat = np.concatenate([rlat, [1.0, 0.0, 1.0]])
    index = PlatformIndex(plon, plat)
    qlon = np.concatenate([rng.uniform(-6, 6, 60), [0.0]])
    qlat = np.concatenate([rng.uniform(-6, 6, 60), [0.0]])
    result = index.query(qlon, qlat, ellipsoidal=True, k=3)
    for i in range(qlon.size):
        _, _, metres = WGS84.inv(np.full(plon.size, qlon[i]), np.full(plon.size, qlat[i]), plon, plat)
        km = np.asarray(metres) / 1000.0
        assert result.distance_km[i] == km.min()
        assert np.array_equal(result.tied_index(i), np.flatnonzero(km == km.min()))
        assert np.array_equal(result.k_index[i], np.lexsort((np.arange(plon.size), km))[:3])
    # at the equator one degree of latitude is shorter than one of longitude on WGS84
    assert result.tied_index(qlon.size - 1).tolist() == [300, 302]
    sphere = index.query(0.0, 0.0)
    assert sphere.tied_index(0).tolist() == [300, 301, 302]


def test_loaders_csv_boem_style_geojson_gpkg(tmp_path):
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import Point

    frame = pd.DataFrame({
        "COMPLEX_ID_NUM": [10, 11, 12],
        "STRUCTURE_NAME": ["A", "B", "C"],
        "LATITUDE": [28.1, 28.2, 28.1],
        "LONGITUDE": [-90.1, -90.2, -90.1],
    })
    frame.to_csv(tmp_path / "platstruc.csv", index=False)
    index = PlatformIndex.from_file(tmp_path / "platstruc.csv")
    result = index.query(-90.1, 28.1)
    assert result.tied_ids(0).tolist() == [10, 12]

    frame.rename(columns={"LATITUDE": "Latitude", "LONGITUDE": "Longitude"}).to_csv(tmp_path / "b.csv", index=False)
    assert len(PlatformIndex.from_file(tmp_path / "b.csv", id_column="STRUCTURE_NAME")) == 3

    frame.rename(columns={"LATITUDE": "lat_wgs", "LONGITUDE": "lon_wgs"}).to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(InputError, match="c.csv: no longitude column"):
        PlatformIndex.from_file(tmp_path / "c.csv")
    custom = PlatformIndex.from_file(tmp_path / "c.csv", lon_column="lon_wgs", lat_column="lat_wgs")
    assert custom.query(-90.2, 28.2).tied_index(0).tolist() == [1]

    gdf = gpd.GeoDataFrame({"name": ["A", "B"]}, geometry=[Point(1, 2), Point(3, 4)], crs="EPSG:4326")
    gdf.to_file(tmp_path / "p.geojson", driver="GeoJSON")
    gdf.to_crs("EPSG:3857").to_file(tmp_path / "p.gpkg", driver="GPKG")
    for name in ("p.geojson", "p.gpkg"):
        loaded = PlatformIndex.from_file(tmp_path / name, id_column="name")
        assert loaded.query(3.0, 4.0).tied_ids(0).tolist() == ["B"]
        assert abs(loaded.lon[0] - 1.0) < 1e-9 and abs(loaded.lat[0] - 2.0) < 1e-9
    with pytest.raises(InputError, match="does not exist"):
        PlatformIndex.from_file(tmp_path / "missing.csv")


def test_validation_errors_name_rows():
    with pytest.raises(InputError, match=r"platform lat .*rows \[1\]"):
        PlatformIndex([0.0, 1.0], [0.0, 95.0])
    index = PlatformIndex([0.0], [0.0])
    with pytest.raises(InputError, match=r"rows \[0, 2\]"):
        index.query([0.0, 0.0, 0.0], [np.nan, 0.0, -91.0])
    with pytest.raises(InputError, match="k must be"):
        index.query(0.0, 0.0, k=0)
    with pytest.raises(InputError, match="empty"):
        PlatformIndex([], [])
    assert index.query(540.0, 0.0).distance_km[0] == pytest.approx(20015.114, abs=1e-3)


def test_kd_tree_fallback_leaves_are_exact_too():
    # a shallow quadtree with one candidate per leaf leaves crowded cells to the k-d tree fallback
    rng = np.random.default_rng(21)
    plon = np.round(rng.uniform(-20, 20, 400), 1)
    plat = np.round(rng.uniform(-20, 20, 400), 1)
    index = PlatformIndex(plon, plat, max_candidates=1, max_level=3)
    assert (index._leaf_count < 0).any()
    qlon = np.round(rng.uniform(-25, 25, 300), 2)
    qlat = np.round(rng.uniform(-25, 25, 300), 2)
    assert_identical_to_brute_force(index, qlon, qlat, index.lon, index.lat)


def test_wider_fetches_in_steps_build_the_same_leaves(monkeypatch):
    # fields of 400 platforms: far from them a cell's ball holds a whole field, more than 48 and 128 sites
    import geo.nearest as nearest

    rng = np.random.default_rng(5)
    centre_lon, centre_lat = np.array([-40.0, 10.0, 120.0]), np.array([20.0, -35.0, 5.0])
    pick = np.repeat(np.arange(3), 400)
    plon, plat = centre_lon[pick] + rng.normal(0, 0.3, pick.size), centre_lat[pick] + rng.normal(0, 0.2, pick.size)
    fetched: list[int] = []
    cap_candidates = PlatformIndex._cap_candidates
    monkeypatch.setattr(PlatformIndex, "_cap_candidates",
                        lambda self, c, r, m, k: fetched.append(k) or cap_candidates(self, c, r, m, k))
    stepped = PlatformIndex(plon, plat)
    assert {128, 512} <= set(fetched)  # both wider steps were needed
    monkeypatch.setattr(nearest, "_CELL_K_WIDER", (512,))
    direct = PlatformIndex(plon, plat)
    for name in ("_leaf_start", "_leaf_count", "_leaf_cands"):
        np.testing.assert_array_equal(getattr(stepped, name), getattr(direct, name))
    qlon, qlat = rng.uniform(-180, 180, 300), np.degrees(np.arcsin(rng.uniform(-1, 1, 300)))
    assert_identical_to_brute_force(stepped, qlon, qlat, stepped.lon, stepped.lat)

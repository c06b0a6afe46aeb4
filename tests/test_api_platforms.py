"""Nearest platform over HTTP: every tie with its distance, batches in one call, bad coordinates refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from api_fixtures import api_client, assert_problem, make_resources, make_store
from geo.nearest import brute_force_nearest


@pytest.fixture(scope="module")
def resources(tmp_path_factory):
    return make_resources(tmp_path_factory.mktemp("reference"))


@pytest.fixture(scope="module")
def client(resources):
    with api_client(make_store(), resources) as client:
        yield client


def test_get_returns_every_tied_platform_with_distance(client, resources):
    body = client.get("/platforms/nearest", params={"lat": 0.0, "lon": 0.0}).json()
    expected_km, rows = brute_force_nearest(0.0, 0.0, resources.platforms.lon, resources.platforms.lat)
    assert [p["platform_id"] for p in body["platforms"]] == ["P-M", "P-N"]  # mirror images tie
    assert body["distance_km"] == pytest.approx(expected_km, rel=1e-12)
    assert all(p["distance_km"] == body["distance_km"] for p in body["platforms"])
    shared = client.get("/platforms/nearest", params={"lat": 52.3, "lon": 3.1}).json()
    assert [p["platform_id"] for p in shared["platforms"]] == ["P-A", "P-B"]  # one site, two structures
    assert shared["platforms"][1]["name"] == "Alpha B"


def test_get_across_the_antimeridian_and_k_nearest(client):
    body = client.get("/platforms/nearest", params={"lat": 0.0, "lon": -179.99}).json()
    assert [p["platform_id"] for p in body["platforms"]] == ["P-W"]
    assert body["distance_km"] == pytest.approx(0.09 * 111.195, rel=1e-3)
    k3 = client.get("/platforms/nearest", params={"lat": 0.0, "lon": -179.99, "k": 3}).json()
    ids = [p["platform_id"] for p in k3["k_nearest"]]
    assert ids[:2] == ["P-W", "P-E"] and len(ids) == 3
    assert [p["distance_km"] for p in k3["k_nearest"]] == sorted(p["distance_km"] for p in k3["k_nearest"])
    far = client.get("/platforms/nearest", params={"lat": -60.0, "lon": 100.0, "max_km": 10}).json()
    assert far["distance_km"] is None and far["platforms"] == []


@pytest.mark.parametrize("params, field", [
    ({"lat": 91, "lon": 0}, "lat"),
    ({"lat": -90.5, "lon": 0}, "lat"),
    ({"lat": "NaN", "lon": 0}, "lat"),
    ({"lat": 0, "lon": "nan"}, "lon"),
    ({"lat": 0, "lon": "inf"}, "lon"),
    ({"lat": 0, "lon": 181}, "lon"),
    ({"lat": "north", "lon": 0}, "lat"),
    ({"lon": 0}, "lat"),
    ({"lat": 0, "lon": 0, "k": 0}, "k"),
    ({"lat": 0, "lon": 0, "max_km": -1}, "max_km"),
])
def test_get_bad_coordinates_are_problems_naming_the_field(client, params, field):
    assert_problem(client.get("/platforms/nearest", params=params), 400, field)


def test_post_batch_matches_the_index_point_by_point(client, resources):
    rng = np.random.default_rng(7)
    points = np.column_stack([rng.uniform(-180, 180, 500), rng.uniform(-89, 89, 500)])
    points[:3] = [[0.0, 0.0], [3.1, 52.3], [-179.99, 0.0]]
    body = client.post("/platforms/nearest", json={"points": points.tolist()}).json()
    assert body["count"] == 500
    assert body["platform_ids"][:3] == [["P-M", "P-N"], ["P-A", "P-B"], ["P-W"]]
    for i in rng.choice(500, 25, replace=False):
        expected_km, rows = brute_force_nearest(points[i, 0], points[i, 1], resources.platforms.lon,
                                                resources.platforms.lat)
        assert body["distance_km"][i] == pytest.approx(expected_km, rel=1e-12)
        assert body["platform_ids"][i] == resources.platforms.platform_id[rows].tolist()


def test_post_accepts_100k_points_in_one_request(client):
    rng = np.random.default_rng(1)
    points = np.column_stack([rng.uniform(-180, 180, 100_000), rng.uniform(-90, 90, 100_000)]).round(5)
    response = client.post("/platforms/nearest", content=json.dumps({"points": points.tolist()}),
                           headers={"content-type": "application/json"})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 100_000 and len(body["platform_ids"]) == 100_000
    assert np.isfinite(body["distance_km"]).all()


@pytest.mark.parametrize("body, status, field", [
    ({"points": [[0, 91]]}, 422, "points.0.1"),
    ({"points": [[0, 0], [200, 0]]}, 422, "points.1.0"),
    ({"points": [[0]]}, 422, "points.0"),
    ({"points": [[0, 0], "x"]}, 422, "points.1"),
    ({"points": "everywhere"}, 422, "points"),
    ({"pts": [[0, 0]]}, 422, "points"),
    ({"points": [[0, 0]], "max_km": -3}, 422, "max_km"),
    ({"points": [[0, 0]], "colour": 1}, 422, "colour"),
])
def test_post_bad_points_are_problems_naming_the_entry(client, body, status, field):
    assert_problem(client.post("/platforms/nearest", json=body), status, field)


def test_post_nan_and_broken_json_and_too_many_points(client):
    nan = client.post("/platforms/nearest", content='{"points": [[NaN, 0]]}',
                      headers={"content-type": "application/json"})
    assert_problem(nan, 400, "body")
    assert_problem(client.post("/platforms/nearest", content="{", headers={"content-type": "application/json"}), 400)
    too_many = {"points": [[0, 0]] * 100_001}
    assert_problem(client.post("/platforms/nearest", json=too_many), 413, "points")


def test_concurrent_single_point_queries_share_one_index_call(resources):
    import asyncio

    from api.nearest_batcher import NearestBatcher

    calls = []

    class CountingIndex:
        def query(self, lon, lat):
            calls.append(len(lon))
            return resources.platform_index.query(lon, lat)

    async def many():
        batcher = NearestBatcher(CountingIndex())
        points = [(0.0, 0.0), (3.1, 52.3), (-179.99, 0.0)] * 10
        return points, await asyncio.gather(*(batcher.nearest(lon, lat) for lon, lat in points))

    points, answers = asyncio.run(many())
    assert calls == [30]  # thirty requests, one vectorized call
    for (lon, lat), (distance, rows) in zip(points, answers):
        expected_km, expected_rows = brute_force_nearest(lon, lat, resources.platforms.lon, resources.platforms.lat)
        assert distance == expected_km and rows.tolist() == expected_rows.tolist()

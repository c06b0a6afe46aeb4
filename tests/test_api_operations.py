"""Operations: health, metrics, API keys, CORS, request-size limits and queueing products."""

from __future__ import annotations

import os

import pytest

from api_fixtures import api_client, assert_problem, make_resources, make_store, write_band_folder
from pipeline.inbox import find_products

KEY = "test-key-1234"


@pytest.fixture(scope="module")
def resources(tmp_path_factory):
    return make_resources(tmp_path_factory.mktemp("reference"))


def test_health_reports_contents_and_what_is_missing(resources):
    with api_client(make_store(), resources) as client:
        body = client.get("/health").json()
    assert (body["scenes"], body["detections"], body["alerts"], body["platforms"]) == (2, 5, 2, 7)
    assert body["status"] == "degraded" and "heading-model" in body["unavailable"]


def test_metrics_count_requests_per_route_template(resources):
    with api_client(make_store(), resources) as client:
        for lat in (1, 2, 3):
            client.get("/platforms/nearest", params={"lat": lat, "lon": 0})
        client.get("/platforms/nearest", params={"lat": 99, "lon": 0})
        text = client.get("/metrics").text
    assert 'vesselwatch_http_requests_total{method="GET",route="/platforms/nearest",status="200"} 3.0' in text
    assert 'route="/platforms/nearest",status="400"} 1.0' in text
    assert "vesselwatch_http_request_duration_seconds_bucket" in text


def test_writes_need_the_key_and_reads_are_keyed_by_setting(resources, tmp_path):
    product = write_band_folder(tmp_path / "S2_PRODUCT")
    with api_client(make_store(), resources, api_key=KEY, var_dir=tmp_path / "var") as client:
        assert_problem(client.post("/scenes", json={"path": str(product)}), 401, "X-API-Key")
        assert_problem(client.post("/scenes", json={"path": str(product)}, headers={"X-API-Key": "wrong"}), 403)
        assert client.get("/collections/detections/items").status_code == 200  # reads open by default
    with api_client(make_store(), resources, api_key=KEY, api_read_requires_key=True) as client:
        missing = assert_problem(client.get("/collections/detections/items"), 401, "X-API-Key")
        assert "key" in missing["detail"]
        assert_problem(client.get("/platforms/nearest", params={"lat": 0, "lon": 0}), 401)
        ok = client.get("/collections/detections/items", headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200
        assert client.get("/health").status_code == 200  # liveness stays open
    with api_client(make_store(), resources) as client:  # no key configured: writes disabled
        assert_problem(client.post("/scenes", json={"path": str(product)}, headers={"X-API-Key": "x"}), 403)


def test_post_scenes_links_the_product_into_the_monitor_inbox(resources, tmp_path):
    product = write_band_folder(tmp_path / "S2_PRODUCT")
    var = tmp_path / "var"
    with api_client(make_store(), resources, api_key=KEY, var_dir=var) as client:
        headers = {"X-API-Key": KEY}
        first = client.post("/scenes", json={"path": str(product)}, headers=headers)
        assert first.status_code == 202, first.text
        assert first.json()["status"] == "queued"
        again = client.post("/scenes", json={"path": str(product)}, headers=headers)
        assert again.status_code == 200 and again.json()["status"] == "already-queued"
        assert find_products(var / "inbox") == [product.resolve()]  # what the monitor flow will pick up
        assert os.path.islink(var / "inbox" / "S2_PRODUCT")
        assert_problem(client.post("/scenes", json={"path": str(tmp_path / "nothing")}, headers=headers), 422, "path")
        assert_problem(client.post("/scenes", json={"path": "relative/x"}, headers=headers), 422, "path")
        empty = tmp_path / "empty"
        empty.mkdir()
        assert_problem(client.post("/scenes", json={"path": str(empty)}, headers=headers), 422, "path")
        assert_problem(client.post("/scenes", json={}, headers=headers), 422, "path")
        listed = client.get("/scenes").json()["scenes"]
        assert [s["scene_id"] for s in listed] == ["A", "B"]


def test_cors_by_setting(resources):
    origin = "https://ops.example.org"
    with api_client(make_store(), resources, api_cors_origins=[origin]) as client:
        allowed = client.get("/collections", headers={"Origin": origin})
        assert allowed.headers["access-control-allow-origin"] == origin
        other = client.get("/collections", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        preflight = client.options("/platforms/nearest", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST"})
        assert preflight.status_code == 200
    with api_client(make_store(), resources) as client:
        assert "access-control-allow-origin" not in client.get("/", headers={"Origin": origin}).headers


def test_oversized_bodies_are_413_problems_before_parsing(resources):
    with api_client(make_store(), resources, api_max_upload_bytes=1000) as client:
        big = {"points": [[0.0, 0.0]] * 200}
        assert_problem(client.post("/platforms/nearest", json=big), 413, "body")

        def chunks():  # no Content-Length: counted while streaming
            for _ in range(20):
                yield b"x" * 100

        streamed = client.post("/platforms/nearest", content=chunks(), headers={"content-type": "application/json"})
        assert_problem(streamed, 413, "body")

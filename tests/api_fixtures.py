"""Shared builders for the API tests: a small store, reference layers and an app around them."""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from fastapi.testclient import TestClient

from api.app import create_app
from api.resources import Resources
from pipeline.reference import load_platforms, load_protected_areas
from pipeline.store import AlertRecord, DetectionRecord, SceneRecord, Store
from vesselwatch.settings import Settings

T0 = datetime(2024, 5, 1, 10, 56, 31, tzinfo=timezone.utc)
T1 = datetime(2024, 6, 1, 10, 56, 31, tzinfo=timezone.utc)

PLATFORMS_CSV = """platform_id,name,lon,lat
P-A,Alpha A,3.09,52.305
P-B,Alpha B,3.09,52.305
P-C,Charlie,3.45,52.15
P-E,East,179.9,0.0
P-W,West,-179.9,0.0
P-M,Mirror,1.0,0.0
P-N,Mirror twin,-1.0,0.0
"""


def write_reference(folder: Path) -> tuple[Path, Path]:
    """A platform register with ties (shared site, mirror images) and areas, one across 180°."""
    platforms = folder / "platforms.csv"
    platforms.write_text(PLATFORMS_CSV)
    areas = folder / "areas.geojson"
    areas.write_text(json.dumps({
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"WDPAID": 555, "NAME": "North Sea reserve", "MARINE": "2"},
             "geometry": {"type": "Polygon", "coordinates": [[[3.0, 52.0], [3.5, 52.0], [3.5, 52.4], [3.0, 52.4],
                                                              [3.0, 52.0]]]}},
            {"type": "Feature", "properties": {"WDPAID": 777, "NAME": "Dateline reserve", "MARINE": "2"},
             "geometry": {"type": "Polygon", "coordinates": [[[179.0, -1.0], [181.0, -1.0], [181.0, 1.0],
                                                              [179.0, 1.0], [179.0, -1.0]]]}},
        ],
    }))
    return platforms, areas


def make_resources(folder: Path, heading_model=None) -> Resources:
    platforms_path, areas_path = write_reference(folder)
    resources = Resources.from_platforms(load_platforms(platforms_path), areas=load_protected_areas(areas_path),
                                         heading_model=heading_model)
    if heading_model is None:
        resources.unavailable["heading-model"] = "not loaded in this test"
    return resources


def _detection(scene: str, n: int, lon: float, lat: float, when: datetime, **extra) -> DetectionRecord:
    return DetectionRecord(detection_id=f"{scene}/{n}", scene_id=scene, lon=lon, lat=lat, row=64.0 + n,
                           col=64.0 + n, length_m=40.0 + n, width_m=8.0, score=0.9, acquired=when, **extra)


def make_store(url: str = "sqlite://") -> Store:
    """Scene A (North Sea, May) with 3 detections and 2 alerts; scene B (dateline, June) with 2."""
    store = Store.connect(url)
    a = [
        _detection("A", 0, 3.10, 52.30, T0, heading_deg=45.0, heading_uncertainty_deg=5.0, heading_ambiguous=False),
        _detection("A", 1, 3.20, 52.20, T0, heading_deg=float("nan")),
        _detection("A", 2, 4.50, 53.00, T0),
    ]
    alerts = [
        AlertRecord(alert_id="A/0/555", scene_id="A", detection_id="A/0", area_id="555", kind="inside",
                    severity="critical", lon=3.10, lat=52.30, distance_km=0.0, acquired=T0, area_name="North Sea"),
        AlertRecord(alert_id="A/1/555", scene_id="A", detection_id="A/1", area_id="555", kind="approach",
                    severity="medium", lon=3.20, lat=52.20, distance_km=2.0, acquired=T0, area_name="North Sea"),
    ]
    store.replace_scene(SceneRecord(scene_id="A", path="/nonexistent/A.SAFE", crs="EPSG:32631", width=10980,
                                    height=10980, n_detections=3, acquired=T0), a, alerts)
    b = [_detection("B", 0, 179.5, 0.5, T1), _detection("B", 1, -179.5, -0.5, T1 + timedelta(seconds=5))]
    store.replace_scene(SceneRecord(scene_id="B", path="/nonexistent/B.SAFE", crs="EPSG:32660", width=10980,
                                    height=10980, n_detections=2, acquired=T1), b)
    return store


@contextmanager
def api_client(store: Store, resources: Resources | None, **settings: object) -> Iterator[TestClient]:
    """A TestClient (lifespan run) for an app on ``store`` and ``resources``."""
    app = create_app(Settings(**settings), store=store, resources=resources)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def assert_problem(response, status: int | None = None, field: str | None = None) -> dict:
    """The response is a 4xx problem document (naming ``field`` when given)."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if status is not None:
        assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == response.status_code and body["title"]
    if field is not None:
        names = [p["name"] for p in body.get("invalid-params", [])]
        assert field in names, body
    return body


PRODUCT_TRANSFORM_ORIGIN = (500000.0, 5800000.0)  # EPSG:32631, 10 m pixels


def write_band_folder(folder: Path, size: int = 200) -> Path:
    """A tiny band-GeoTIFF product (B02 B03 B04 B08 B11, uint16 DN) with a bright hull at pixel (100, 100)."""
    import numpy as np
    import rasterio
    from affine import Affine

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    transform = Affine(10.0, 0.0, PRODUCT_TRANSFORM_ORIGIN[0], 0.0, -10.0, PRODUCT_TRANSFORM_ORIGIN[1])
    for band, sea, hull in (("B02", 600, 2500), ("B03", 500, 2600), ("B04", 300, 2700), ("B08", 200, 4000),
                            ("B11", 100, 3000)):
        data = (sea + rng.normal(0, 20, (size, size))).astype(np.uint16)
        data[98:103, 99:102] = hull
        with rasterio.open(folder / f"T31UET_20240501T105631_{band}.tif", "w", driver="GTiff", width=size,
                           height=size, count=1, dtype="uint16", crs="EPSG:32631", transform=transform) as dst:
            dst.write(data, 1)
    return folder


def heading_model(folder: Path):
    """The shipped heading model when present, else the same network freshly initialised and saved.

    The API tests check the service's contract (the endpoint answers what the model answers for the
    same pixels), not the model's accuracy (``test_heading_pipeline.py`` does that).
    """
    from models.inference import load_heading_model

    shipped = Settings().resolved_heading_weights_path()
    if shipped.exists():
        return load_heading_model(shipped, fast=False, threads=1)
    import torch

    from models.inference import config_path_for
    from models.network import create_model
    from models.preprocess import PreprocessConfig

    torch.manual_seed(0)
    config = PreprocessConfig()
    weights = folder / "wake_keypoints_test.pt"
    torch.save(create_model(config.architecture, len(config.bands), config.input_size).state_dict(), weights)
    config.to_json(config_path_for(weights))
    return load_heading_model(weights, fast=False, threads=1)

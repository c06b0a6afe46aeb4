"""GeoJSON export is RFC 7946 and round-trips through GDAL (the API tests live in ``test_api_*.py``)."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import pyogrio
from pipeline.export import detection_feature, write_features
from pipeline.store import DetectionRecord, SceneRecord, Store

T0 = datetime(2024, 5, 1, 10, 56, 31, tzinfo=timezone.utc)


def _store() -> Store:
    store = Store.connect("sqlite://")
    records = [
        DetectionRecord(detection_id=f"A/{i}", scene_id="A", lon=3.123456789 + i, lat=51.987654321, row=1.0,
                        col=2.0, length_m=40.0, width_m=8.0, score=7.5, acquired=T0,
                        heading_deg=float("nan") if i else 45.0)
        for i in range(2)
    ]
    store.replace_scene(SceneRecord(scene_id="A", path="/a", crs="EPSG:32631", width=1, height=1,
                                    n_detections=2, acquired=T0), records)
    return store


def test_geojson_is_rfc7946(tmp_path):
    features = [detection_feature(r) for r in _store().iter_detections()]
    path = tmp_path / "d.geojson"
    write_features(features, path, layer="detections")
    data = json.loads(path.read_text())
    assert "crs" not in data
    lon, lat = data["features"][0]["geometry"]["coordinates"]
    assert (lon, lat) == (3.1234568, 51.9876543)
    assert data["features"][0]["properties"]["acquired"] == "2024-05-01T10:56:31Z"
    assert data["features"][1]["properties"]["heading_deg"] is None
    frame = pyogrio.read_dataframe(path)
    assert list(frame["detection_id"]) == ["A/0", "A/1"]
    assert math.isclose(frame.geometry.x[0], 3.1234568, abs_tol=1e-9)


def test_geopackage_round_trip(tmp_path):
    features = [detection_feature(r) for r in _store().iter_detections()]
    path = tmp_path / "d.gpkg"
    write_features(features, path, layer="detections")
    frame = pyogrio.read_dataframe(path, layer="detections")
    assert frame.crs.to_epsg() == 4326
    assert list(frame["scene_id"]) == ["A", "A"]
    assert frame["length_m"].tolist() == [40.0, 40.0]


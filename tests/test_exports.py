"""Exports: RFC 7946 validity and identical round trips through GDAL (pyogrio) for every collection."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import numpy as np
import pyogrio
import pytest
import shapely
from typer.testing import CliRunner

from pipeline.alerts import find_alerts, vessels_from_records
from pipeline.enrich import enrich_positions
from pipeline.export import (
    SCHEMAS,
    alert_feature,
    area_features,
    detection_feature,
    iso_utc,
    platform_features,
    write_features,
)
from pipeline.reference import AreaMeasure, ProtectedAreas, load_platforms, load_protected_areas
from pipeline.store import DetectionRecord, SceneRecord, Store
from vesselwatch.cli import app
from vesselwatch.settings import Settings

T0 = datetime(2024, 5, 1, 10, 56, 31, tzinfo=timezone.utc)
T1 = datetime(2024, 6, 1, 10, 56, 31, tzinfo=timezone.utc)

# one ordinary area, one with a hole, one across the antimeridian (given unwrapped, clockwise)
AREAS = ProtectedAreas.from_geometries(
    ["A", "HOLE", "FIJI"],
    [
        shapely.box(3.1, 51.9, 3.3, 52.1),
        shapely.Polygon([(4.0, 52.0), (4.4, 52.0), (4.4, 52.3), (4.0, 52.3)],
                        [[(4.1, 52.1), (4.2, 52.1), (4.2, 52.2), (4.1, 52.2)]]),
        shapely.Polygon([(179.5, -16.0), (180.5, -16.0), (180.5, -17.0), (179.5, -17.0)]),
    ],
    names=["Plain", "With hole", "Across 180"],
)


def _store() -> Store:
    """Two scenes, a month apart: vessels near A (one inside, one approaching) and near FIJI."""
    store = Store.connect("sqlite://")
    measure = AreaMeasure(AREAS)
    for scene_id, acquired, lon, lat, heading in (
        ("S1", T0, [3.2, 3.05, 3.123456789], [52.0, 52.0, 51.5], [45.0, 90.0, float("nan")]),
        ("S2", T1, [179.45, -179.45], [-16.5, -16.5], [90.0, 270.0]),
    ):
        enrichment = enrich_positions(lon, lat, areas=measure).as_dicts()
        if scene_id == "S1":  # the motion step measured the first vessel's speed (axis along its 45° heading)
            enrichment[0] |= {"speed_kn": 14.2, "motion_axis_deg": 44.0}
        records = [
            DetectionRecord(detection_id=f"{scene_id}/{i}", scene_id=scene_id, lon=lon[i], lat=lat[i], row=1.0 + i,
                            col=2.0, length_m=80.0, width_m=12.0, score=0.9, acquired=acquired,
                            heading_deg=None if np.isnan(heading[i]) else heading[i], heading_uncertainty_deg=4.0,
                            heading_ambiguous=bool(i == 1 and scene_id == "S2"), enrichment=enrichment[i],
                            # S1/2's heading was withdrawn (its wake on a quay); S2 as stored before the field existed
                            wake_on_land=bool(np.isnan(heading[i])) if scene_id == "S1" else None)
            for i in range(len(lon))
        ]
        alerts = find_alerts(vessels_from_records(records), measure)
        store.replace_scene(SceneRecord(scene_id=scene_id, path="/p", crs="EPSG:32631", width=100, height=100,
                                        n_detections=len(records), acquired=acquired), records, alerts)
    return store


def _collections(store: Store) -> dict[str, list[dict]]:
    return {
        "detections": [detection_feature(r) for r in store.iter_detections()],
        "alerts": [alert_feature(r) for r in store.iter_alerts()],
        "platforms": platform_features(load_platforms(Settings().resolved_platforms_path())),
        "areas": area_features(AREAS),
    }


def _normal(value):
    return iso_utc(value) if isinstance(value, datetime) else value


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg"])
def test_every_collection_round_trips_through_gdal(tmp_path, suffix):
    store = _store()
    assert store.count_alerts() >= 3
    for layer, features in _collections(store).items():
        assert features, layer
        path = tmp_path / f"{layer}{suffix}"
        write_features(features, path, layer=layer)
        meta, table = pyogrio.read_arrow(path)
        # GDAL shows a GeoJSON feature's string "id" member as an "id" field
        expected_fields = (["id"] if suffix == ".geojson" else []) + list(SCHEMAS[layer])
        assert list(meta["fields"]) == expected_fields
        rows = table.to_pylist()
        geometry_column = meta["geometry_name"] or "wkb_geometry"
        assert len(rows) == len(features)
        for row, feature in zip(rows, features):
            geometry = shapely.from_wkb(row.pop(geometry_column))
            if suffix == ".geojson":
                assert row.pop("id") == feature["id"]
            assert geometry.equals_exact(shapely.geometry.shape(feature["geometry"]), tolerance=0.0), layer
            assert geometry.geom_type == feature["geometry"]["type"]
            assert {k: _normal(v) for k, v in row.items()} == feature["properties"], layer


def test_geojson_is_valid_rfc7946(tmp_path):
    store = _store()
    for layer, features in _collections(store).items():
        path = tmp_path / f"{layer}.geojson"
        write_features(features, path, layer=layer)
        text = path.read_text()
        data = json.loads(text)
        assert set(data) == {"type", "features"}  # no crs, nothing else
        for number in re.findall(r"-?\d+\.\d+", json.dumps([f["geometry"] for f in data["features"]])):
            assert len(number.split(".")[1]) <= 7
        for feature in data["features"]:
            assert set(feature["properties"]) == set(SCHEMAS[layer])
            for name, kind in SCHEMAS[layer].items():
                if kind == "datetime" and feature["properties"][name] is not None:
                    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", feature["properties"][name])
            geometry = feature["geometry"]
            if geometry["type"] == "Point":
                lon, lat = geometry["coordinates"]
                assert -180 <= lon <= 180 and -90 <= lat <= 90
                continue
            for polygon in geometry["coordinates"]:
                exterior, *holes = polygon
                assert shapely.is_ccw(shapely.LinearRing(exterior)), "exterior ring must be counter-clockwise"
                assert all(not shapely.is_ccw(shapely.LinearRing(h)) for h in holes), "holes must be clockwise"
                for ring in polygon:
                    lons = [p[0] for p in ring]
                    assert ring[0] == ring[-1]
                    assert max(lons) - min(lons) < 180  # no part crosses the antimeridian
                    assert all(-180 <= p[0] <= 180 and -90 <= p[1] <= 90 for p in ring)
    areas = json.loads((tmp_path / "areas.geojson").read_text())["features"]
    fiji = next(f for f in areas if f["id"] == "FIJI")["geometry"]
    assert fiji["type"] == "MultiPolygon" and len(fiji["coordinates"]) == 2
    # lon first: the vessel at (3.123456789 E, 51.5 N) comes out as [3.1234568, 51.5]
    detections = json.loads((tmp_path / "detections.geojson").read_text())["features"]
    assert detections[2]["geometry"]["coordinates"] == [3.1234568, 51.5]
    assert [f["properties"]["wake_on_land"] for f in detections] == [False, False, True, None, None]
    assert [f["properties"]["speed_kn"] for f in detections] == [14.2, None, None, None, None]
    hole = next(f for f in areas if f["id"] == "HOLE")["geometry"]["coordinates"][0]
    assert len(hole) == 2


def test_alert_properties_say_what_happened(tmp_path):
    alerts = {a["properties"]["detection_id"]: a["properties"] for a in _collections(_store())["alerts"]}
    assert alerts["S1/0"]["kind"] == "inside" and alerts["S1/0"]["severity"] == "critical"
    assert alerts["S1/1"]["kind"] == "approach" and alerts["S1/1"]["cone_fraction"] == 1.0
    assert alerts["S1/1"]["time_to_entry_min"] is None and alerts["S1/1"]["time_to_entry_note"].startswith("no speed")
    assert alerts["S2/0"]["area_id"] == "FIJI" and alerts["S2/1"]["heading_ambiguous"] is True
    assert "S1/2" not in alerts  # no heading, 44 km away


def test_cli_exports_with_time_and_bbox_filters(tmp_path, monkeypatch):
    db = tmp_path / "vw.sqlite"
    store = Store.connect(str(db))
    source = _store()
    for scene_id in source.scene_ids():
        records = list(source.iter_detections(scene_id=scene_id))
        store.replace_scene(source.scene(scene_id), records, list(source.iter_alerts(scene_id=scene_id)))
    runner = CliRunner()

    def export(*args: str) -> list[dict]:
        out = tmp_path / "out.geojson"
        result = runner.invoke(app, ["export", *args, str(out), "--db", str(db)])
        assert result.exit_code == 0, result.output
        return json.loads(out.read_text())["features"]

    assert len(export("alerts")) == store.count_alerts()
    across = export("alerts", "--bbox", "179,-20,-179,-10")
    assert {f["properties"]["scene_id"] for f in across} == {"S2"} and len(across) == 2
    assert {f["properties"]["scene_id"] for f in export("alerts", "--start", "2024-05-15")} == {"S2"}
    assert {f["properties"]["scene_id"] for f in export("detections", "--end", "2024-05-01T10:56:31Z")} == {"S1"}
    assert len(export("platforms", "--bbox", "3.0,52.2,3.1,52.4")) == 2  # the two structures of one complex
    result = runner.invoke(app, ["export", "areas", str(tmp_path / "a.geojson"), "--start", "2024-01-01"])
    assert result.exit_code == 2 and "do not apply" in result.output
    result = runner.invoke(app, ["export", "alerts", str(tmp_path / "a.shp"), "--db", str(db)])
    assert result.exit_code == 2 and "unknown export format" in result.output
    gpkg = tmp_path / "areas.gpkg"
    assert runner.invoke(app, ["export", "areas", str(gpkg)]).exit_code == 0
    assert pyogrio.read_info(gpkg)["geometry_type"] == "MultiPolygon"
    assert len(load_protected_areas(gpkg)) == 5  # the export reads back as an area register


def test_empty_exports_keep_their_schema(tmp_path):
    path = tmp_path / "alerts.gpkg"
    write_features([], path, layer="alerts")
    info = pyogrio.read_info(path)
    assert info["features"] == 0 and list(info["fields"]) == list(SCHEMAS["alerts"])
    assert info["geometry_type"] == "Point"

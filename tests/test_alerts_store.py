"""Alerts in the store: re-processing never duplicates; overlapping tiles of one pass give one vessel, one alert."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import partial

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from pipeline.alerts import Vessels, find_alerts, vessels_from_records
from pipeline.dedup import DEFAULT_OVERLAP_RADIUS_M
from pipeline.records import detection_ids
from pipeline.reference import AreaMeasure, ProtectedAreas
from pipeline.store import DetectionRecord, SceneRecord, Store
from pipeline.synthetic.tiles import parse_tile

from flows_fixtures import database_url, postgres_server_url, postgres_url, run_at_once  # noqa: F401  (fixtures)

T0 = datetime(2024, 5, 1, 10, 56, 31, tzinfo=timezone.utc)
# Tiles 31UET and 31UFT are neighbours in UTM 31N; 31UET spans x 500000..609800, 31UFT 600000..709800.
TILES = {"31UET": parse_tile("31UET"), "31UFT": parse_tile("31UFT")}
UTM_TO_LONLAT = Transformer.from_crs(32631, 4326, always_xy=True)


def _scene_id(tile: str, acquired: datetime = T0) -> str:
    return f"S2A_MSIL1C_{acquired:%Y%m%dT%H%M%S}_N0510_R051_T{tile}"


def _tile_scene(tile: str, vessels_xy: list[tuple[float, float]], acquired: datetime = T0):
    """A 10980 px scene of ``tile`` seeing vessels at UTM ``(x, y)``: its scene and detection records."""
    grid = TILES[tile]
    scene_id = _scene_id(tile, acquired)
    x = np.array([v[0] for v in vessels_xy], dtype=float)
    y = np.array([v[1] for v in vessels_xy], dtype=float)
    # each tile resamples on its own grid: the centroid moves by a few metres between tiles
    jitter = 4.0 if tile == "31UFT" else 0.0
    col = (x + jitter - grid.ulx_m) / 10.0
    row = (grid.uly_m - y - jitter) / 10.0
    lon, lat = UTM_TO_LONLAT.transform(x + jitter, y + jitter)
    ids = detection_ids(scene_id, row, col)
    records = [
        DetectionRecord(detection_id=ids[i], scene_id=scene_id, lon=float(lon[i]), lat=float(lat[i]),
                        row=float(row[i]), col=float(col[i]), length_m=120.0, width_m=20.0, score=0.9,
                        acquired=acquired, heading_deg=90.0, heading_uncertainty_deg=3.0, heading_ambiguous=False)
        for i in range(len(vessels_xy))
    ]
    scene = SceneRecord(scene_id=scene_id, path=f"/p/{scene_id}", crs="EPSG:32631", width=10980, height=10980,
                        n_detections=len(records), acquired=acquired, tile_id=tile)
    return scene, records


# A vessel in the overlap strip (x 600000..609800), heading east into an area 5 km further east,
# plus one vessel seen only by each tile.
OVERLAP_VESSEL = (605000.0, 5750000.0)
ONLY_EAST = (650000.0, 5750000.0)
ONLY_WEST = (550000.0, 5750000.0)


def _areas() -> AreaMeasure:
    lon0, lat0 = UTM_TO_LONLAT.transform(OVERLAP_VESSEL[0] + 5000.0, OVERLAP_VESSEL[1] - 3000.0)
    lon1, lat1 = UTM_TO_LONLAT.transform(OVERLAP_VESSEL[0] + 15000.0, OVERLAP_VESSEL[1] + 3000.0)
    return AreaMeasure(ProtectedAreas.from_geometries(["MPA1"], [shapely.box(lon0, lat0, lon1, lat1)]))


def _store_tile(store: Store, tile: str, vessels_xy, acquired: datetime = T0):
    scene, records = _tile_scene(tile, vessels_xy, acquired)
    alerts = find_alerts(vessels_from_records(records), _areas())
    return store.replace_scene(scene, records, alerts, overlap_radius_m=DEFAULT_OVERLAP_RADIUS_M)


@pytest.mark.parametrize("order", [("31UET", "31UFT"), ("31UFT", "31UET")])
def test_two_overlapping_tiles_give_one_detection_and_one_alert(order, database_url):  # noqa: F811
    store = Store.connect(database_url)
    seen = {"31UET": [ONLY_WEST, OVERLAP_VESSEL], "31UFT": [OVERLAP_VESSEL, ONLY_EAST]}
    for tile in order:
        _store_tile(store, tile, seen[tile])
    assert store.count_detections() == 3
    alerts = list(store.iter_alerts())
    assert len(alerts) == 1
    # the copy kept is the one farther from its tile's edge: 500 px into 31UFT vs 480 px from 31UET's edge
    assert alerts[0].scene_id == _scene_id("31UFT")
    assert alerts[0].alert_id == f"{alerts[0].detection_id}/area/MPA1"
    assert store.scene(_scene_id("31UET")).n_detections == 1
    assert store.scene(_scene_id("31UFT")).n_detections == 2
    # re-processing either tile changes nothing
    for tile in (*order, *order):
        _store_tile(store, tile, seen[tile])
    assert store.count_detections() == 3
    assert [a.alert_id for a in store.iter_alerts()] == [alerts[0].alert_id]


def test_overlapping_tiles_stored_at_the_same_time_still_give_one_vessel(database_url):  # noqa: F811
    # Two workers storing the two tiles of one pass at once: without serialising the merges each
    # transaction misses the other's uncommitted copy and both keep theirs (4 detections, 2 alerts).
    seen = {"31UET": [ONLY_WEST, OVERLAP_VESSEL], "31UFT": [OVERLAP_VESSEL, ONLY_EAST]}
    store = Store.connect(database_url)
    for attempt in range(5):
        acquired = T0 + timedelta(days=attempt)  # each attempt its own pass
        errors = run_at_once(*(partial(_store_tile, store, tile, seen[tile], acquired) for tile in seen))
        assert errors == []
        scene_ids = [_scene_id(tile, acquired) for tile in seen]
        assert sum(store.count_detections(scene_id) for scene_id in scene_ids) == 3, f"attempt {attempt}"
        assert sum(store.count_alerts(scene_id) for scene_id in scene_ids) == 1, f"attempt {attempt}"


def test_the_same_place_in_another_pass_is_another_vessel():
    store = Store.connect("sqlite://")
    _store_tile(store, "31UET", [OVERLAP_VESSEL])
    stored = _store_tile(store, "31UFT", [OVERLAP_VESSEL], acquired=T0 + timedelta(days=5))
    assert stored.merged == []
    assert store.count_detections() == 2 and store.count_alerts() == 2


def test_without_overlap_merging_every_record_is_kept():
    store = Store.connect("sqlite://")
    for tile in ("31UET", "31UFT"):
        scene, records = _tile_scene(tile, [OVERLAP_VESSEL])
        store.replace_scene(scene, records)
    assert store.count_detections() == 2


def test_reprocessing_a_scene_replaces_its_alerts():
    store = Store.connect("sqlite://")
    first = _store_tile(store, "31UET", [ONLY_WEST, OVERLAP_VESSEL])
    ids = [a.alert_id for a in store.iter_alerts()]
    assert first.n_alerts == 1 and len(ids) == 1
    for _ in range(3):
        _store_tile(store, "31UET", [ONLY_WEST, OVERLAP_VESSEL])
    assert [a.alert_id for a in store.iter_alerts()] == ids
    assert store.count_detections() == 2
    # the vessel gone on re-processing takes its alert with it
    _store_tile(store, "31UET", [ONLY_WEST])
    assert store.count_alerts() == 0 and store.count_detections() == 1


def test_alert_round_trips_through_the_store():
    store = Store.connect("sqlite://")
    scene, records = _tile_scene("31UET", [OVERLAP_VESSEL])
    vessels = vessels_from_records(records)
    vessels = Vessels(vessels.detection_id, vessels.scene_id, vessels.lon, vessels.lat, vessels.heading_deg,
                      vessels.uncertainty_deg, vessels.ambiguous, speed_kn=[12.0], acquired=vessels.acquired)
    alerts = find_alerts(vessels, _areas())
    store.replace_scene(scene, records, alerts)
    back = store.alert(alerts[0].alert_id)
    assert back == alerts[0]
    assert back.acquired == T0 and back.time_to_entry_min > 0
    assert list(store.iter_alerts(severities=["critical"])) == []
    assert len(list(store.iter_alerts(start=T0, end=T0))) == 1
    assert list(store.iter_alerts(bbox=(10.0, 40.0, 11.0, 41.0))) == []


def test_alerts_must_belong_to_the_scene_records():
    store = Store.connect("sqlite://")
    scene, records = _tile_scene("31UET", [OVERLAP_VESSEL])
    alerts = find_alerts(vessels_from_records(records), _areas())
    with pytest.raises(ValueError, match="unknown detections"):
        store.replace_scene(scene.__class__(**{**scene.__dict__, "n_detections": 0}), [], alerts)


def test_two_vessels_side_by_side_stay_two():
    from pipeline.dedup import Copies, resolve_copies

    # two hulls 40 m apart seen by both tiles: each copy pairs with its own twin, not with the neighbour
    new = Copies(["B/1", "B/2"], ["B", "B"], [3.0, 3.0006], [52.0, 52.0], [300.0, 300.0], [0.0, 0.0])
    old = Copies(["A/1", "A/2"], ["A", "A"], [3.00002, 3.00062], [52.0, 52.0], [100.0, 500.0], [10.0, 10.0])
    decision = resolve_copies(new, old, radius_m=DEFAULT_OVERLAP_RADIUS_M, pass_window_s=300.0)
    assert sorted(decision.pairs) == [("B/1", "A/1"), ("B/2", "A/2")]
    assert decision.drop_new.tolist() == [False, True]  # B/1 is farther from its edge than A/1, A/2 than B/2
    assert decision.drop_old == ["A/1"]
    unknown_time = Copies(["A/1"], ["A"], [3.00002], [52.0], [100.0], [float("nan")])
    assert resolve_copies(new, unknown_time, radius_m=60.0, pass_window_s=300.0).pairs == []

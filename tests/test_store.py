"""The store replaces a scene's rows atomically and filters detections correctly."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from pipeline.store import DetectionRecord, SceneRecord, Store

from flows_fixtures import database_url, postgres_server_url, postgres_url, run_at_once  # noqa: F401  (fixtures)

T0 = datetime(2024, 5, 1, 10, 56, 31, tzinfo=timezone.utc)


def _scene(scene_id: str, n: int) -> SceneRecord:
    return SceneRecord(scene_id=scene_id, path=f"/x/{scene_id}", crs="EPSG:32631", width=10, height=10,
                       n_detections=n, acquired=T0)


def _detection(scene_id: str, i: int, lon: float = 3.0, lat: float = 52.0) -> DetectionRecord:
    return DetectionRecord(detection_id=f"{scene_id}/{i}", scene_id=scene_id, lon=lon + i * 0.01, lat=lat,
                           row=float(i), col=float(i), length_m=50.0, width_m=10.0, score=5.0, acquired=T0,
                           heading_deg=90.0, keypoints={"hull": [1.0, 2.0]})


def test_replace_scene_replaces_not_duplicates(tmp_path):
    store = Store.connect(str(tmp_path / "s.sqlite"))
    store.replace_scene(_scene("A", 3), [_detection("A", i) for i in range(3)])
    store.replace_scene(_scene("B", 1), [_detection("B", 0)])
    store.replace_scene(_scene("A", 2), [_detection("A", i) for i in range(2)])
    assert store.count_detections("A") == 2
    assert store.count_detections() == 3
    assert store.scene_ids() == ["A", "B"]
    record = store.detection("A/1")
    assert record.keypoints == {"hull": [1.0, 2.0]}
    assert record.acquired == T0


def test_failed_write_leaves_earlier_rows(tmp_path):
    store = Store.connect(str(tmp_path / "s.sqlite"))
    store.replace_scene(_scene("A", 2), [_detection("A", i) for i in range(2)])
    duplicate = [_detection("A", 0), _detection("A", 0)]  # primary-key clash mid-transaction
    with pytest.raises(Exception):
        store.replace_scene(_scene("A", 2), duplicate)
    assert store.count_detections("A") == 2
    assert store.scene("A").n_detections == 2


def test_mismatched_counts_are_refused(tmp_path):
    store = Store.connect("sqlite://")
    with pytest.raises(ValueError, match="n_detections=3"):
        store.replace_scene(_scene("A", 3), [_detection("A", 0)])


def test_bbox_filter_crosses_antimeridian():
    store = Store.connect("sqlite://")
    records = [_detection("A", 0, lon=179.5), _detection("A", 1, lon=-179.6), _detection("A", 2, lon=10.0)]
    store.replace_scene(_scene("A", 3), records)
    inside = [r.detection_id for r in store.iter_detections(bbox=(179.0, 50.0, -179.0, 53.0))]
    assert inside == ["A/0", "A/1"]
    assert [r.detection_id for r in store.iter_detections(bbox=(0.0, 50.0, 20.0, 53.0))] == ["A/2"]
    assert list(store.iter_detections(start=datetime(2025, 1, 1, tzinfo=timezone.utc))) == []


def test_many_openers_of_a_new_database_at_once_all_succeed(database_url):  # noqa: F811
    # API workers and flow runs opening a fresh database together all try CREATE TABLE; the losers
    # failed with "table scenes already exists" before.
    assert run_at_once(*[lambda: Store.connect(database_url)] * 6) == []
    store = Store.connect(database_url)
    store.replace_scene(_scene("S", 1), [_detection("S", 0)])
    assert store.count_detections() == 1


def test_a_store_made_before_a_column_existed_opens_with_its_rows_and_gains_the_column(database_url):  # noqa: F811
    import sqlalchemy as sa

    store = Store.connect(database_url)
    store.replace_scene(_scene("OLD", 1), [_detection("OLD", 0)])
    with store.engine.begin() as connection:  # as an earlier version left it: no wake_on_land column
        connection.exec_driver_sql("ALTER TABLE detections DROP COLUMN wake_on_land")
    store.engine.dispose()
    # Several API workers and flow runs may open it at once; each adds the column or finds it added.
    assert run_at_once(*[lambda: Store.connect(database_url)] * 4) == []
    reopened = Store.connect(database_url)
    assert "wake_on_land" in {c["name"] for c in sa.inspect(reopened.engine).get_columns("detections")}
    old = reopened.detection("OLD/0")
    assert old.wake_on_land is None and old.heading_deg == 90.0 and old.keypoints == {"hull": [1.0, 2.0]}
    moored = DetectionRecord(**{**_detection("NEW", 0).__dict__, "detection_id": "NEW/0", "scene_id": "NEW",
                                "heading_deg": None, "heading_ambiguous": True, "wake_on_land": True})
    reopened.replace_scene(_scene("NEW", 1), [moored])
    assert reopened.detection("NEW/0").wake_on_land is True


def test_threads_sharing_an_in_memory_store_do_not_interleave_transactions():
    """An in-memory store is one shared connection: a reader's rollback must not undo a writer's half scene."""
    import threading

    store = Store.connect("sqlite://")
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for k in range(30):
                store.replace_scene(_scene(f"W{k % 5}", 20), [_detection(f"W{k % 5}", i) for i in range(20)])
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    def read() -> None:
        try:
            for _ in range(100):
                store.count_detections()
                store.scene_ids()
                list(store.iter_detections(scene_id="W1"))
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[:3]
    assert store.scene_ids() == [f"W{k}" for k in range(5)]
    assert store.count_detections() == 100

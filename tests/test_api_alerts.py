"""Alerts: filtered GeoJSON, the live SSE stream (resumable by event id) and signed, retried webhooks."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import datetime, timezone

import httpx
import pytest

from api.alert_feed import AlertCursor, poll_new_alerts
from api.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookDispatcher, verify_signature
from api_fixtures import T1, api_client, assert_problem, make_resources, make_store
from pipeline.store import AlertRecord, DetectionRecord, SceneRecord, Store


@pytest.fixture(scope="module")
def resources(tmp_path_factory):
    return make_resources(tmp_path_factory.mktemp("reference"))


def _store_scene_with_alert(store: Store, scene_id: str, severity: str = "high") -> str:
    detection = DetectionRecord(detection_id=f"{scene_id}/0", scene_id=scene_id, lon=179.6, lat=0.2, row=1.0,
                                col=1.0, length_m=30.0, width_m=6.0, score=0.9, acquired=T1)
    alert = AlertRecord(alert_id=f"{scene_id}/0/777", scene_id=scene_id, detection_id=f"{scene_id}/0",
                        area_id="777", kind="approach", severity=severity, lon=179.6, lat=0.2, distance_km=3.0,
                        acquired=T1, heading_deg=90.0, time_to_entry_min=12.0)
    store.replace_scene(SceneRecord(scene_id=scene_id, path="/x", crs="EPSG:32660", width=1, height=1,
                                    n_detections=1, acquired=T1), [detection], [alert])
    return alert.alert_id


def test_alerts_filtered_by_time_area_and_severity(resources):
    store = make_store()
    _store_scene_with_alert(store, "C", "low")
    with api_client(store, resources) as client:
        def ids(**params):
            response = client.get("/alerts", params=params)
            assert response.headers["content-type"].startswith("application/geo+json")
            return sorted(f["id"] for f in response.json()["features"])

        assert ids() == ["A/0/555", "A/1/555", "C/0/777"]
        assert ids(min_severity="medium") == ["A/0/555", "A/1/555"]
        assert ids(min_severity="critical") == ["A/0/555"]
        assert ids(area_id="777") == ["C/0/777"]
        assert ids(since="2024-05-15T00:00:00Z") == ["C/0/777"]
        assert ids(bbox="179,-1,-179,1") == ["C/0/777"]
        assert_problem(client.get("/alerts", params={"min_severity": "apocalyptic"}), 400, "min_severity")
        assert_problem(client.get("/alerts", params={"since": "last tuesday"}), 400, "since")


def test_feed_never_skips_nor_repeats():
    store = make_store()
    cursor = AlertCursor(datetime(2000, 1, 1, tzinfo=timezone.utc))
    first, cursor = poll_new_alerts(store, cursor)
    assert sorted(a.alert_id for a in first) == ["A/0/555", "A/1/555"]
    assert poll_new_alerts(store, cursor)[0] == []
    new_id = _store_scene_with_alert(store, "D")
    fresh, cursor = poll_new_alerts(store, cursor)
    assert [a.alert_id for a in fresh] == [new_id]
    _store_scene_with_alert(store, "D")  # re-processed: the same alert again, with the same id
    again, _ = poll_new_alerts(store, cursor)
    assert [a.alert_id for a in again] == [new_id]


def test_sse_stream_delivers_alerts_stored_after_connecting_and_resumes_by_event_id(resources, tmp_path):
    store = make_store(f"sqlite:///{tmp_path / 'sse.sqlite'}")
    with api_client(store, resources) as client:
        def later():
            time.sleep(0.4)
            _store_scene_with_alert(store, "E", "critical")

        writer = threading.Thread(target=later)
        events = []
        with client.stream("GET", "/alerts/stream",
                           params={"poll_s": 0.05, "max_events": 1, "idle_timeout_s": 10}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            # Store only once the stream has answered (its cursor is set): a loaded CI machine took
            # longer than the writer's 0.4 s to connect, and the alert then counted as stored before.
            writer.start()
            block: dict[str, str] = {}
            for line in response.iter_lines():
                if line.startswith(("event:", "id:", "data:")):
                    key, _, value = line.partition(":")
                    block[key] = value.strip()
                elif line == "" and "event" in block:
                    events.append(block)
                    block = {}
        writer.join()
        assert [e["event"] for e in events] == ["alert"]
        assert events[0]["id"] == "E/0/777"  # the alert id: stable, consumers deduplicate on it
        feature = json.loads(events[0]["data"])
        assert feature["properties"]["severity"] == "critical" and feature["geometry"]["type"] == "Point"
        # Reconnecting after the first pre-existing alert replays the rest, in order.
        with client.stream("GET", "/alerts/stream", headers={"Last-Event-ID": "A/0/555"},
                           params={"poll_s": 0.05, "max_events": 2, "idle_timeout_s": 5}) as response:
            ids = [line[3:].strip() for line in response.iter_lines() if line.startswith("id:")]
        assert ids == ["A/1/555", "E/0/777"]
        assert_problem(client.get("/alerts/stream", params={"poll_s": 0}), 400, "poll_s")


def test_webhooks_are_signed_retried_and_keep_their_event_id():
    store = make_store()
    secret = "shared-secret"
    received: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(503 if len(received) <= 2 else 204)  # down twice, then up

    async def scenario() -> WebhookDispatcher:
        async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
            dispatcher = WebhookDispatcher(["https://ops.example/hook"], secret, poll_s=0.02, backoff_s=0.01,
                                           max_attempts=4, client=client)
            task = asyncio.create_task(dispatcher.run(store))
            await asyncio.sleep(0.1)
            await asyncio.to_thread(_store_scene_with_alert, store, "F")
            for _ in range(200):
                if dispatcher.delivered:
                    break
                await asyncio.sleep(0.02)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return dispatcher

    dispatcher = asyncio.run(scenario())
    assert dispatcher.delivered == {"F/0/777": 1}
    assert len(received) == 3  # two failures retried, then accepted; pre-existing alerts not sent
    assert {r.headers[EVENT_ID_HEADER] for r in received} == {"F/0/777"}
    for request in received:
        assert verify_signature(secret, request.headers[TIMESTAMP_HEADER], request.content,
                                request.headers[SIGNATURE_HEADER])
        assert not verify_signature("other", request.headers[TIMESTAMP_HEADER], request.content,
                                    request.headers[SIGNATURE_HEADER])
    body = json.loads(received[-1].content)
    assert body["event_id"] == "F/0/777" and body["alert"]["properties"]["area_id"] == "777"
    # Tampered bodies and stale timestamps are refused by the receiver-side check.
    request = received[-1]
    assert not verify_signature(secret, request.headers[TIMESTAMP_HEADER], request.content + b" ",
                                request.headers[SIGNATURE_HEADER])
    assert not verify_signature(secret, request.headers[TIMESTAMP_HEADER], request.content,
                                request.headers[SIGNATURE_HEADER], now=time.time() + 3600)

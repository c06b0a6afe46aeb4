"""Protected-area alerts: ``GET /alerts`` (GeoJSON, filtered) and ``GET /alerts/stream`` (Server-Sent Events)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from enum import Enum
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response, StreamingResponse

from api.alert_feed import AlertCursor, poll_new_alerts, severities_at_least
from api.dependencies import get_store, require_read_key
from api.features import alerts_page
from api.filters import parse_bbox, parse_datetime
from api.problems import PROBLEM_RESPONSES
from pipeline import store as store_tables
from pipeline.export import alert_feature
from pipeline.store import Store

router = APIRouter(prefix="/alerts", tags=["alerts"], dependencies=[Depends(require_read_key)],
                   responses=PROBLEM_RESPONSES)


class Severity(str, Enum):
    """Alert severity, least severe first."""

    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


@router.get("", summary="Alerts as GeoJSON",
            responses={200: {"content": {"application/geo+json": {}}}})
def list_alerts(
    store: Annotated[Store, Depends(get_store)],
    since: Annotated[str | None, Query(description="RFC 3339 time: alerts on images acquired at or after it.",
                                       max_length=64)] = None,
    area_id: Annotated[str | None, Query(description="Only this protected area.", max_length=200)] = None,
    min_severity: Annotated[Severity | None, Query(description="Only this severity or above.")] = None,
    bbox: Annotated[str | None, Query(description="west,south,east,north (CRS84).", max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> Response:
    """Alerts (vessel positions) ordered by id, with ``numberMatched``/``numberReturned``."""
    start = None
    if since is not None:
        interval = parse_datetime(f"{since}/..", name="since")
        start = interval[0] if interval else None
    table = store_tables.alerts_table
    extra: list[Any] = []
    if area_id is not None:
        extra.append(table.c.area_id == area_id)
    if min_severity is not None:
        extra.append(table.c.severity.in_(severities_at_least(min_severity.value)))
    page = alerts_page(store, bbox=parse_bbox(bbox), start=start, end=None, limit=limit, offset=offset, extra=extra)
    body = {
        "type": "FeatureCollection",
        "features": page.features,
        "numberMatched": page.number_matched,
        "numberReturned": len(page.features),
    }
    return Response(orjson.dumps(body), media_type="application/geo+json")


def _sse(event: str, data: Any, event_id: str | None = None) -> bytes:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"data: {orjson.dumps(data).decode()}")
    return ("\n".join(lines) + "\n\n").encode()


async def alert_events(
    store: Store, cursor: AlertCursor, *, poll_s: float, heartbeat_s: float = 15.0,
    max_events: int | None = None, idle_timeout_s: float | None = None,
    min_severity: str | None = None, area_id: str | None = None,
) -> AsyncIterator[bytes]:
    """SSE frames: one ``alert`` event per new alert (id = alert id), comments as heartbeats."""
    yield b"retry: 5000\n\n"
    sent = 0
    last_event = last_beat = time.monotonic()
    wanted = set(severities_at_least(min_severity)) if min_severity else None
    while True:
        fresh, cursor = await asyncio.to_thread(poll_new_alerts, store, cursor)
        for alert in fresh:
            if wanted is not None and alert.severity not in wanted:
                continue
            if area_id is not None and alert.area_id != area_id:
                continue
            yield _sse("alert", alert_feature(alert), alert.alert_id)
            sent += 1
            last_event = time.monotonic()
            if max_events is not None and sent >= max_events:
                return
        now = time.monotonic()
        if idle_timeout_s is not None and now - last_event >= idle_timeout_s:
            return
        if now - last_beat >= heartbeat_s:
            yield f": keep-alive {datetime.now(timezone.utc).isoformat()}\n\n".encode()
            last_beat = now
        await asyncio.sleep(poll_s)


@router.get("/stream", summary="New alerts as Server-Sent Events",
            responses={200: {"content": {"text/event-stream": {}}, "description": "An SSE stream."}})
async def stream_alerts(
    request: Request,
    store: Annotated[Store, Depends(get_store)],
    since: Annotated[str | None, Query(description="RFC 3339: also replay alerts stored since then.",
                                       max_length=64)] = None,
    min_severity: Annotated[Severity | None, Query()] = None,
    area_id: Annotated[str | None, Query(max_length=200)] = None,
    poll_s: Annotated[float, Query(ge=0.05, le=60, allow_inf_nan=False, description="Store polling period.")] = 2.0,
    max_events: Annotated[int | None, Query(ge=1, le=1_000_000, description="Close after this many events.")] = None,
    idle_timeout_s: Annotated[float | None, Query(gt=0, le=86400, allow_inf_nan=False,
                                                  description="Close after this long without an event.")] = None,
    last_event_id: Annotated[str | None, Header(max_length=480)] = None,
) -> StreamingResponse:
    """``event: alert`` per alert stored after the connection (or after ``since`` / ``Last-Event-ID``).

    Event ids are the stable alert ids: a client that reconnects with ``Last-Event-ID`` resumes
    after that alert, and an alert re-stored by re-processing arrives again with the same id.
    """
    cursor = AlertCursor.now()
    if last_event_id:
        resumed = await asyncio.to_thread(AlertCursor.after_alert, store, last_event_id)
        if resumed is not None:
            cursor = resumed
    elif since is not None:
        interval = parse_datetime(f"{since}/..", name="since")
        if interval and interval[0]:
            cursor = AlertCursor(interval[0])
    events = alert_events(
        store, cursor, poll_s=poll_s, max_events=max_events, idle_timeout_s=idle_timeout_s,
        min_severity=min_severity.value if min_severity else None, area_id=area_id,
    )
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

"""The four feature collections behind OGC API – Features: what each holds and one page of it.

Detections and alerts are paged in SQL (``COUNT`` + ``LIMIT``/``OFFSET`` over the store's tables,
ordered by id, so pages are stable); platforms and protected areas are the in-memory reference
layers loaded at start-up. Every feature is built by :mod:`pipeline.export`, so the API serves
exactly what the file exports contain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa

from api.filters import Bbox
from api.resources import Resources
from pipeline import store as store_tables
from pipeline.export import alert_feature, area_features, detection_feature, iso_utc, platform_features
from pipeline.store import AlertRecord, DetectionRecord, Store


@dataclass(frozen=True)
class CollectionInfo:
    """Static description of a collection."""

    id: str
    title: str
    description: str
    geometry: str
    temporal: bool


COLLECTIONS: dict[str, CollectionInfo] = {
    info.id: info
    for info in (
        CollectionInfo("detections", "Vessel detections",
                       "Vessels detected in Sentinel-2 scenes, with heading, uncertainty and nearest platform.",
                       "Point", True),
        CollectionInfo("alerts", "Protected-area alerts",
                       "Vessels inside a protected area or heading into one (kind, severity, entry point).",
                       "Point", True),
        CollectionInfo("platforms", "Oil and gas platforms", "The platform register the service measures against.",
                       "Point", False),
        CollectionInfo("protected-areas", "Protected areas",
                       "Protected areas (WDPA-style), split at the antimeridian.", "MultiPolygon", False),
    )
}


@dataclass(frozen=True)
class Page:
    """One page of a collection: ``number_matched`` in total, ``features`` from ``offset``."""

    number_matched: int
    features: list[dict[str, Any]]


def _where(table: sa.Table, bbox: Bbox | None, start: datetime | None, end: datetime | None) -> list[Any]:
    """SQL conditions: bbox on lon/lat (west > east crosses 180°), inclusive time bounds."""
    conditions: list[Any] = []
    if bbox is not None:
        west, south, east, north = bbox
        conditions += [table.c.lat >= south, table.c.lat <= north]
        if west <= east:
            conditions += [table.c.lon >= west, table.c.lon <= east]
        else:
            conditions.append(sa.or_(table.c.lon >= west, table.c.lon <= east))
    if start is not None:
        conditions.append(table.c.acquired >= start)
    if end is not None:
        conditions.append(table.c.acquired <= end)
    return conditions


def _sql_page(
    store: Store, table: sa.Table, key: sa.Column, conditions: list[Any], limit: int, offset: int
) -> tuple[int, list[sa.RowMapping]]:
    count = sa.select(sa.func.count()).select_from(table).where(*conditions)
    rows = sa.select(table).where(*conditions).order_by(key).limit(limit).offset(offset)
    with store.connection() as connection:
        matched = int(connection.execute(count).scalar_one())
        found = list(connection.execute(rows).mappings()) if offset < matched else []
    return matched, found


def detections_page(
    store: Store, *, bbox: Bbox | None, start: datetime | None, end: datetime | None, limit: int, offset: int,
    extra: list[Any] | None = None,
) -> Page:
    """Detections ordered by id."""
    table = store_tables.detections
    matched, rows = _sql_page(store, table, table.c.detection_id, _where(table, bbox, start, end) + (extra or []),
                              limit, offset)
    return Page(matched, [detection_feature(DetectionRecord.from_row(row)) for row in rows])


def alerts_page(
    store: Store, *, bbox: Bbox | None, start: datetime | None, end: datetime | None, limit: int, offset: int,
    extra: list[Any] | None = None,
) -> Page:
    """Alerts ordered by id; ``extra`` adds conditions (area, severities)."""
    table = store_tables.alerts_table
    matched, rows = _sql_page(store, table, table.c.alert_id, _where(table, bbox, start, end) + (extra or []),
                              limit, offset)
    return Page(matched, [alert_feature(AlertRecord.from_row(row)) for row in rows])


def reference_page(features: list[dict[str, Any]], limit: int, offset: int) -> Page:
    """A page of an in-memory layer."""
    return Page(len(features), features[offset : offset + limit])


def collection_page(
    collection_id: str, store: Store, resources: Resources | None, *, bbox: Bbox | None,
    start: datetime | None, end: datetime | None, limit: int, offset: int,
) -> Page:
    """One page of any collection (reference layers ignore the time filter: they have no time)."""
    if collection_id == "detections":
        return detections_page(store, bbox=bbox, start=start, end=end, limit=limit, offset=offset)
    if collection_id == "alerts":
        return alerts_page(store, bbox=bbox, start=start, end=end, limit=limit, offset=offset)
    if collection_id == "platforms":
        return reference_page(platform_features(resources.platforms, bbox=bbox), limit, offset)
    if collection_id == "protected-areas":
        return reference_page(area_features(resources.areas, bbox=bbox), limit, offset)
    raise KeyError(collection_id)


def feature_by_id(collection_id: str, feature_id: str, store: Store, resources: Resources | None) -> dict | None:
    """One feature, or ``None`` when the collection has no such id."""
    if collection_id == "detections":
        record = store.detection(feature_id)
        return None if record is None else detection_feature(record)
    if collection_id == "alerts":
        alert = store.alert(feature_id)
        return None if alert is None else alert_feature(alert)
    if collection_id == "platforms":
        rows = np.flatnonzero(resources.platforms.platform_id.astype(str) == feature_id)
        if rows.size == 0:
            return None
        return platform_features(_take_platforms(resources.platforms, rows[:1]))[0]
    if collection_id == "protected-areas":
        rows = np.flatnonzero(resources.areas.area_id.astype(str) == feature_id)
        return None if rows.size == 0 else area_features(resources.areas.take(rows[:1]))[0]
    raise KeyError(collection_id)


def _take_platforms(platforms: Any, rows: np.ndarray) -> Any:
    from dataclasses import replace

    return replace(
        platforms, platform_id=platforms.platform_id[rows], name=platforms.name[rows], lon=platforms.lon[rows],
        lat=platforms.lat[rows], properties=[platforms.properties[i] for i in rows] if platforms.properties else [],
    )


def extent(collection_id: str, store: Store, resources: Resources | None) -> dict[str, Any]:
    """OGC ``extent``: spatial bbox (CRS84) and, for stored collections, the acquisition interval."""
    spatial = [-180.0, -90.0, 180.0, 90.0]
    interval: list[str | None] = [None, None]
    if collection_id in ("detections", "alerts"):
        table = store_tables.detections if collection_id == "detections" else store_tables.alerts_table
        query = sa.select(sa.func.min(table.c.lon), sa.func.min(table.c.lat), sa.func.max(table.c.lon),
                          sa.func.max(table.c.lat), sa.func.min(table.c.acquired), sa.func.max(table.c.acquired))
        with store.connection() as connection:
            row = connection.execute(query).one()
        if row[0] is not None:
            spatial = [float(v) for v in row[:4]]
        interval = [iso_utc(row[4]), iso_utc(row[5])]
    elif collection_id == "platforms" and resources is not None and resources.platforms is not None \
            and len(resources.platforms):
        p = resources.platforms
        spatial = [float(p.lon.min()), float(p.lat.min()), float(p.lon.max()), float(p.lat.max())]
    elif collection_id == "protected-areas" and resources is not None and resources.areas is not None \
            and len(resources.areas):
        import shapely

        spatial = [float(v) for v in shapely.total_bounds(resources.areas.geometry.astype(object))]
    result: dict[str, Any] = {
        "spatial": {"bbox": [spatial], "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}
    }
    if COLLECTIONS[collection_id].temporal:
        result["temporal"] = {"interval": [interval], "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    return result

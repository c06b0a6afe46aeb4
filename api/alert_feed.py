"""New alerts as they are stored: the feed behind ``GET /alerts/stream`` and the webhooks.

An alert is *new* when the scene it belongs to was (re)processed after the feed's cursor: the
store writes a scene's alerts in the same transaction that stamps the scene's ``processed_at``.
The cursor is that time plus the alert ids already delivered at exactly that time, so polling
never skips nor repeats an alert. Event ids are the alert ids, which are stable
(``<detection_id>/<area_id>``): an alert re-stored when its scene is re-processed carries the same
id again, and consumers deduplicate on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import sqlalchemy as sa

from pipeline import store as store_tables
from pipeline.store import AlertRecord, Store

#: Severity levels, least severe first.
SEVERITIES = ("low", "medium", "high", "critical")


def severities_at_least(minimum: str) -> tuple[str, ...]:
    """Severities at or above ``minimum``.

    >>> severities_at_least("high")
    ('high', 'critical')
    """
    return SEVERITIES[SEVERITIES.index(minimum):]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@dataclass
class AlertCursor:
    """Position in the feed: scenes processed at or after ``after``, minus ids already delivered then."""

    after: datetime
    delivered_at_after: set[str] = field(default_factory=set)

    @classmethod
    def now(cls) -> AlertCursor:
        """Only alerts stored from now on."""
        return cls(datetime.now(timezone.utc))

    @classmethod
    def after_alert(cls, store: Store, alert_id: str) -> AlertCursor | None:
        """Resume after ``alert_id`` (an SSE ``Last-Event-ID``); ``None`` when the store has no such alert."""
        alerts, scenes = store_tables.alerts_table, store_tables.scenes
        query = (sa.select(scenes.c.processed_at)
                 .select_from(alerts.join(scenes, alerts.c.scene_id == scenes.c.scene_id))
                 .where(alerts.c.alert_id == alert_id))
        with store.connection() as connection:
            processed = connection.execute(query).scalar_one_or_none()
        if processed is None:
            return None
        processed = _utc(processed)
        with store.connection() as connection:
            earlier = connection.execute(
                sa.select(alerts.c.alert_id)
                .select_from(alerts.join(scenes, alerts.c.scene_id == scenes.c.scene_id))
                .where(scenes.c.processed_at == processed, alerts.c.alert_id <= alert_id)
            ).scalars()
            return cls(processed, set(earlier))


def poll_new_alerts(store: Store, cursor: AlertCursor, *, limit: int = 1000) -> tuple[list[AlertRecord], AlertCursor]:
    """Alerts stored after ``cursor`` (oldest scene first, then by id) and the advanced cursor."""
    alerts, scenes = store_tables.alerts_table, store_tables.scenes
    query = (
        sa.select(alerts, scenes.c.processed_at.label("_processed_at"))
        .select_from(alerts.join(scenes, alerts.c.scene_id == scenes.c.scene_id))
        .where(scenes.c.processed_at >= cursor.after)
        .order_by(scenes.c.processed_at, alerts.c.alert_id)
        .limit(limit + len(cursor.delivered_at_after))
    )
    with store.connection() as connection:
        rows = list(connection.execute(query).mappings())
    fresh: list[AlertRecord] = []
    after, delivered = cursor.after, set(cursor.delivered_at_after)
    for row in rows:
        values = dict(row)
        processed = _utc(values.pop("_processed_at"))
        if processed == cursor.after and values["alert_id"] in cursor.delivered_at_after:
            continue
        if len(fresh) == limit:
            break
        fresh.append(AlertRecord.from_row(values))
        if processed > after:
            after, delivered = processed, set()
        delivered.add(values["alert_id"])
    return fresh, AlertCursor(after, delivered)

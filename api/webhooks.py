"""Alert webhooks: every new alert POSTed to configured URLs, signed, retried, with idempotent event ids.

Each delivery is one JSON document ``{"event_id", "type": "alert", "created", "alert": <GeoJSON
Feature>}`` with headers

``X-Vesselwatch-Event-Id``
    The alert id (stable across retries and re-processing: receivers deduplicate on it).
``X-Vesselwatch-Timestamp``
    Unix seconds when this attempt was signed.
``X-Vesselwatch-Signature``
    ``sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`` — verify it with
    :func:`verify_signature` and reject stale timestamps to stop replays.

Failed attempts (connection errors, non-2xx answers) are retried with exponential backoff up to
``max_attempts``; a delivery that never succeeds is logged and dropped (the alert stays in the
store and in ``GET /alerts``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import httpx
import orjson

from api.alert_feed import AlertCursor, poll_new_alerts
from pipeline.export import alert_feature
from pipeline.store import AlertRecord, Store

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Vesselwatch-Signature"
TIMESTAMP_HEADER = "X-Vesselwatch-Timestamp"
EVENT_ID_HEADER = "X-Vesselwatch-Event-Id"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` HMAC of ``"<timestamp>." + body`` with ``secret``.

    >>> sign("s3cret", "1700000000", b'{"a":1}')[:15]
    'sha256=1698a50b'
    """
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str, *, max_age_s: float = 300.0,
                     now: float | None = None) -> bool:
    """Whether ``signature`` is ours for this body and the timestamp is fresh (receivers use this)."""
    try:
        age = (time.time() if now is None else now) - float(timestamp)
    except ValueError:
        return False
    if abs(age) > max_age_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass
class WebhookDispatcher:
    """Deliver new alerts to ``urls`` while the app runs (see the module docstring).

    Parameters
    ----------
    urls
        Receivers; every alert goes to each.
    secret
        HMAC key shared with the receivers.
    poll_s
        Store polling period, seconds.
    max_attempts
        Tries per delivery (first included).
    backoff_s
        Wait before the second try; doubles after each failure.
    client
        HTTP client (tests inject one with a mock transport); default a fresh ``httpx.AsyncClient``.
    """

    urls: Sequence[str]
    secret: str
    poll_s: float = 5.0
    max_attempts: int = 5
    backoff_s: float = 1.0
    timeout_s: float = 10.0
    client: httpx.AsyncClient | None = None
    delivered: dict[str, int] = field(default_factory=dict)
    """Alert id → number of successful deliveries (to all URLs) by this dispatcher."""

    def payload(self, alert: AlertRecord) -> bytes:
        """The JSON body for one alert."""
        return orjson.dumps({
            "event_id": alert.alert_id,
            "type": "alert",
            "created": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            "alert": alert_feature(alert),
        })

    async def deliver(self, client: httpx.AsyncClient, url: str, alert: AlertRecord) -> bool:
        """POST one alert to one URL, retrying with backoff; whether it was accepted (2xx)."""
        body = self.payload(alert)
        wait = self.backoff_s
        for attempt in range(1, self.max_attempts + 1):
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                EVENT_ID_HEADER: alert.alert_id,
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(self.secret, timestamp, body),
            }
            try:
                response = await client.post(url, content=body, headers=headers, timeout=self.timeout_s)
                if 200 <= response.status_code < 300:
                    return True
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as error:
                problem = f"{type(error).__name__}: {error}"
            log.warning("webhook %s, alert %s, attempt %d/%d failed: %s", url, alert.alert_id, attempt,
                        self.max_attempts, problem)
            if attempt < self.max_attempts:
                await asyncio.sleep(wait)
                wait *= 2
        log.error("webhook %s: giving up on alert %s after %d attempts", url, alert.alert_id, self.max_attempts)
        return False

    async def dispatch(self, alerts: Sequence[AlertRecord]) -> None:
        """Deliver ``alerts`` to every URL (URLs in parallel, alerts in order per URL)."""
        client = self.client or httpx.AsyncClient()
        try:
            async def to_url(url: str) -> None:
                for alert in alerts:
                    if await self.deliver(client, url, alert):
                        self.delivered[alert.alert_id] = self.delivered.get(alert.alert_id, 0) + 1

            await asyncio.gather(*(to_url(url) for url in self.urls))
        finally:
            if self.client is None:
                await client.aclose()

    async def run(self, store: Store, cursor: AlertCursor | None = None) -> None:
        """Poll the store and deliver new alerts until cancelled."""
        cursor = cursor or AlertCursor.now()
        while True:
            try:
                fresh, cursor = await asyncio.to_thread(poll_new_alerts, store, cursor)
                if fresh and self.urls:
                    await self.dispatch(fresh)
            except asyncio.CancelledError:
                raise
            except Exception:  # a store hiccup must not end the dispatcher
                log.exception("webhook dispatcher: polling failed; trying again")
            await asyncio.sleep(self.poll_s)

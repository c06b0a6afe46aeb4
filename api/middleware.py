"""Pure ASGI middleware: request-size limit and Prometheus metrics.

Written against the raw ASGI interface (not ``BaseHTTPMiddleware``) because both wrap every
request, including the hot ``GET /platforms/nearest``; each adds a few microseconds.
"""

from __future__ import annotations

import json
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from api.problems import PROBLEM_JSON

Scope = dict[str, Any]


class _TooLarge(Exception):
    pass


async def _send_problem(send: Any, status: int, title: str, detail: str, field: str) -> None:
    body = json.dumps({
        "type": "about:blank", "title": title, "status": status, "detail": detail,
        "invalid-params": [{"name": field, "reason": detail}],
    }).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Refuse request bodies larger than ``max_bytes`` with 413 (by header, or while streaming).

    Parameters
    ----------
    app
        The ASGI app to wrap.
    max_bytes
        Largest accepted body, bytes.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in {"GET", "HEAD", "OPTIONS"}:
            await self.app(scope, receive, send)
            return
        detail = f"request body larger than the limit of {self.max_bytes} bytes"
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_problem(send, 400, "Bad Request", "Content-Length is not an integer", "Content-Length")
                    return
                if declared > self.max_bytes:
                    await _send_problem(send, 413, "Content Too Large", detail, "body")
                    return
        received = 0
        started = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_problem(send, 413, "Content Too Large", detail, "body")


class PrometheusMetrics:
    """Count requests and time them per route template, into a per-app registry.

    ``vesselwatch_http_requests_total{method, route, status}`` and
    ``vesselwatch_http_request_duration_seconds{method, route}``; the route is the template
    (``/collections/{collection_id}/items``), never the raw path, so label cardinality stays bounded.
    """

    def __init__(self, app: Any, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "vesselwatch_http_requests", "HTTP requests answered.", ("method", "route", "status"), registry=registry
        )
        self.duration = Histogram(
            "vesselwatch_http_request_duration_seconds", "Time to answer HTTP requests.", ("method", "route"),
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
        )

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def recording_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.requests.labels(method, template, str(status)).inc()
            self.duration.labels(method, template).observe(time.perf_counter() - start)

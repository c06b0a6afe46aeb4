"""The FastAPI application factory.

Shared needs are created once: the store in :func:`create_app`, the reference layers and the
heading model in the app's lifespan (:func:`api.resources.load_resources`), so no request ever
loads a file and tests can build an app on any database and any resources without global state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from starlette.routing import Route

from api.middleware import BodySizeLimit, PrometheusMetrics
from api.nearest_batcher import NearestBatcher
from api.problems import install_problem_handlers
from api.resources import Resources, load_resources
from api.routes import alerts, collections, exports, health, map_page, operations, platforms, vessels
from api.webhooks import WebhookDispatcher
from pipeline.store import Store
from vesselwatch import __version__
from vesselwatch.settings import Settings

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"


class _TemplatedRoute(Route):
    """A plain Starlette route that, like FastAPI's, records itself in the scope (for metrics labels)."""

    def matches(self, scope):  # type: ignore[no-untyped-def]
        match, child_scope = super().matches(scope)
        if child_scope:
            child_scope["route"] = self
        return match, child_scope


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    resources: Resources | None = None,
    webhooks: WebhookDispatcher | None = None,
) -> FastAPI:
    """Build the vesselwatch API.

    Parameters
    ----------
    settings
        Configuration; default ``Settings()`` (environment overrides applied).
    store
        An open store; default the one at ``settings.resolved_database_url()``.
    resources
        Reference layers and model to serve; default loaded from ``settings`` in the lifespan
        (once per process).
    webhooks
        Alert webhook dispatcher to run in the background while the app is up; default one for
        ``settings.api_webhook_urls`` when any are set, else none.
    """
    settings = settings or Settings()
    if webhooks is None and settings.api_webhook_urls:
        webhooks = WebhookDispatcher(list(settings.api_webhook_urls), settings.api_webhook_secret)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.resources is None:
            app.state.resources = await asyncio.to_thread(load_resources, settings)
        index = app.state.resources.platform_index
        app.state.nearest_batcher = None if index is None else NearestBatcher(index)
        task = None
        if webhooks is not None:
            task = asyncio.create_task(webhooks.run(app.state.store), name="alert-webhooks")
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    app = FastAPI(
        title="vesselwatch",
        version=__version__,
        description=(
            "Vessel detections, headings and alerts from Sentinel-2 imagery, served as OGC API – Features "
            "collections, nearest-platform and heading queries, a live alert stream and exports. Errors are "
            "RFC 7807 `application/problem+json`."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store or Store.connect(settings.resolved_database_url())
    app.state.resources = resources
    app.state.nearest_batcher = None
    app.state.metrics_registry = CollectorRegistry()
    install_problem_handlers(app)
    for module in (collections, platforms, vessels, alerts, exports, operations, health, map_page):
        app.include_router(module.router)
    # The hot endpoint, ahead of every other route (see platforms.nearest_endpoint).
    app.router.routes.insert(0, _TemplatedRoute("/platforms/nearest", platforms.nearest_endpoint, methods=["GET"]))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # Outermost last: metrics see every answer, including the size limit's 413s and CORS preflights.
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_upload_bytes)
    if settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api_cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type", "Last-Event-ID"],
        )
    app.add_middleware(PrometheusMetrics, registry=app.state.metrics_registry)
    return app

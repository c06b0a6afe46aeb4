"""The FastAPI application factory.

Shared needs (settings, the store) are created once in :func:`create_app` and handed to the
routes as dependencies, so tests can build an app on any database without global state.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.routes import collections, health
from pipeline.store import Store
from vesselwatch import __version__
from vesselwatch.settings import Settings


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> FastAPI:
    """Build the vesselwatch API.

    Parameters
    ----------
    settings
        Configuration; default ``Settings()`` (environment overrides applied).
    store
        An open store; default the one at ``settings.resolved_database_url()``.
    """
    settings = settings or Settings()
    app = FastAPI(
        title="vesselwatch",
        version=__version__,
        description="Vessel detections, headings and alerts from Sentinel-2 imagery.",
    )
    app.state.settings = settings
    app.state.store = store or Store.connect(settings.resolved_database_url())
    app.include_router(health.router)
    app.include_router(collections.router)
    return app

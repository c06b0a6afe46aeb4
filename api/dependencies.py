"""Dependencies shared by the routes: the settings and the store of the running app."""

from __future__ import annotations

from fastapi import Request

from pipeline.store import Store
from vesselwatch.settings import Settings


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings


def get_store(request: Request) -> Store:
    """The store the app was created with."""
    return request.app.state.store

"""Dependencies shared by the routes: settings, store, loaded resources and the API key checks.

The key travels in the ``X-API-Key`` header (or ``Authorization: Bearer <key>``). Writes always
need it — with no key configured, writes are disabled; reads need it only when
``settings.api_read_requires_key`` is set.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.problems import Problem
from api.resources import Resources
from pipeline.store import Store
from vesselwatch.settings import Settings

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The service's API key.")
bearer = HTTPBearer(auto_error=False, description="The API key as a bearer token.")


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings


def get_store(request: Request) -> Store:
    """The store the app was created with."""
    return request.app.state.store


def get_resources(request: Request) -> Resources:
    """Reference data and model loaded in the app's lifespan."""
    resources = getattr(request.app.state, "resources", None)
    if resources is None:
        raise Problem(503, "the service is starting: reference data is not loaded yet")
    return resources


def _require(resources: Resources, attribute: str, layer: str) -> Any:
    value = getattr(resources, attribute)
    if value is None:
        reason = resources.unavailable.get(layer, "not loaded")
        raise Problem(503, f"{layer} unavailable on this server: {reason}", title="Service Unavailable")
    return value


def require_platforms(resources: Annotated[Resources, Depends(get_resources)]) -> Resources:
    """The resources, with a platform register and index (else 503)."""
    _require(resources, "platform_index", "platforms")
    return resources


def require_areas(resources: Annotated[Resources, Depends(get_resources)]) -> Any:
    """The protected areas (else 503)."""
    return _require(resources, "areas", "protected-areas")


def require_heading_model(resources: Annotated[Resources, Depends(get_resources)]) -> Any:
    """The heading model (else 503)."""
    return _require(resources, "heading_model", "heading-model")


def _presented_key(header_key: str | None, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    if header_key:
        return header_key
    if credentials is not None and credentials.credentials:
        return credentials.credentials
    return None


def _check_key(expected: str, presented: str | None, *, what: str) -> None:
    challenge = {"WWW-Authenticate": 'Bearer realm="vesselwatch"'}
    if presented is None:
        raise Problem(401, f"{what} need an API key in the X-API-Key header", headers=challenge,
                      invalid_params=[("X-API-Key", "missing")])
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise Problem(403, "the API key is not valid", invalid_params=[("X-API-Key", "does not match")])


async def require_read_key(request: Request) -> None:
    """Reads: open unless ``api_read_requires_key``.

    Reads the headers itself rather than through ``Security`` sub-dependencies: it guards the
    hottest endpoints, and two sub-dependencies per request cost measurable throughput.
    """
    settings: Settings = request.app.state.settings
    if not settings.api_read_requires_key:
        return
    if not settings.api_key:
        raise Problem(503, "reads require a key but the server has none configured")
    presented = request.headers.get("x-api-key")
    if not presented:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        presented = token.strip() if scheme.lower() == "bearer" and token.strip() else None
    _check_key(settings.api_key, presented, what="reads")


def require_write_key(
    request: Request,
    header_key: Annotated[str | None, Security(api_key_header)] = None,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
) -> None:
    """Writes: always keyed; disabled when the server has no key configured."""
    settings: Settings = request.app.state.settings
    presented = _presented_key(header_key, credentials)
    if not settings.api_key:
        if presented is None:
            _check_key("", None, what="writes")
        raise Problem(403, "writes are disabled on this server (no API key configured)")
    _check_key(settings.api_key, presented, what="writes")

"""``GET /health`` (liveness, what is loaded) and ``GET /metrics`` (Prometheus text format)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from api.dependencies import get_store
from pipeline.store import Store
from vesselwatch import __version__

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    """Service health."""

    status: str = Field(description="'ok', or 'degraded' when a reference layer or the model is missing.")
    version: str
    scenes: int
    detections: int
    alerts: int
    platforms: int | None = None
    protected_areas: int | None = None
    heading_model: str | None = Field(None, description="Inference backend of the loaded model.")
    unavailable: dict[str, str] = Field(default_factory=dict, description="Layer → why it is not loaded.")


@router.get("/health", response_model=Health)
def health(request: Request, store: Annotated[Store, Depends(get_store)]) -> Health:
    """Report that the service is up, how much the store holds and what is loaded."""
    resources = getattr(request.app.state, "resources", None)
    unavailable = dict(resources.unavailable) if resources is not None else {"resources": "not loaded yet"}
    model = getattr(resources, "heading_model", None)
    return Health(
        status="degraded" if unavailable else "ok",
        version=__version__,
        scenes=len(store.scene_ids()),
        detections=store.count_detections(),
        alerts=store.count_alerts(),
        platforms=None if resources is None or resources.platforms is None else len(resources.platforms),
        protected_areas=None if resources is None or resources.areas is None else len(resources.areas),
        heading_model=None if model is None else getattr(model, "backend", "loaded"),
        unavailable=unavailable,
    )


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    """Request counts and latencies in the Prometheus text exposition format (this process)."""
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)

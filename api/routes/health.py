"""``GET /health``: liveness and the store's reachability."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from api.dependencies import get_store
from pipeline.store import Store
from vesselwatch import __version__

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    """Service health."""

    status: str
    version: str
    scenes: int
    detections: int


@router.get("/health", response_model=Health)
def health(store: Annotated[Store, Depends(get_store)]) -> Health:
    """Report that the service is up and how much the store holds."""
    return Health(
        status="ok",
        version=__version__,
        scenes=len(store.scene_ids()),
        detections=store.count_detections(),
    )

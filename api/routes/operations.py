"""Operations: ``POST /scenes`` queues a product for the monitoring deployment; ``GET /scenes`` lists processed ones.

Queueing means linking the product into the monitor's inbox folder (``<var_dir>/inbox`` unless
the settings name one): the ``monitor-inbox`` flow (:mod:`flows.monitor`) discovers it on its next
pass, keys it by content checksum in the product registry (:mod:`pipeline.registry`) and processes
it exactly once. The API never processes imagery itself, so a request cannot tie up a worker.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.dependencies import get_settings, get_store, require_read_key, require_write_key
from api.problems import PROBLEM_RESPONSES, Problem
from pipeline.export import iso_utc
from pipeline.store import Store
from vesselwatch.errors import ProductError
from vesselwatch.settings import Settings

router = APIRouter(prefix="/scenes", tags=["operations"], responses=PROBLEM_RESPONSES)


class SceneRequest(BaseModel):
    """A product already on the server's disks (SAFE folder or zip, STAC item JSON, band-GeoTIFF folder)."""

    path: str = Field(min_length=1, max_length=4096, description="Absolute path of the product on the server.")


class QueuedScene(BaseModel):
    """Where the product was queued."""

    status: str = Field(description="'queued', or 'already-queued' when the same product was queued before.")
    product_path: str
    inbox_path: str
    product_id: str | None = None


@router.post("", status_code=202, response_model=QueuedScene, dependencies=[Depends(require_write_key)],
             summary="Queue a product for processing")
def queue_scene(body: SceneRequest, settings: Annotated[Settings, Depends(get_settings)]) -> Any:
    """Link the product into the monitor's inbox (needs the API key); 202 when queued."""
    from pipeline.ingest import describe_product

    path = Path(body.path)
    if not path.is_absolute() or "\x00" in body.path:
        raise Problem(422, "path must be absolute", invalid_params=[("path", "not an absolute path")])
    if not path.exists():
        raise Problem(422, f"no product at {path}", invalid_params=[("path", "does not exist on the server")])
    try:
        description = describe_product(path)
    except (ProductError, OSError, ValueError) as error:
        raise Problem(422, f"{path} is not a readable Sentinel-2 product: {error}",
                      invalid_params=[("path", "not a product")]) from None
    product_id = description.product_id
    inbox = settings.resolved_inbox_dir()
    inbox.mkdir(parents=True, exist_ok=True)
    link = inbox / path.name
    status = "queued"
    if link.is_symlink() or link.exists():
        if link.resolve() != path.resolve():
            raise Problem(409, f"the inbox already holds a different product named {path.name!r}",
                          invalid_params=[("path", "name taken in the inbox")])
        status = "already-queued"
    else:
        os.symlink(path.resolve(), link, target_is_directory=path.is_dir())
    answer = QueuedScene(status=status, product_path=str(path.resolve()), inbox_path=str(link),
                         product_id=str(product_id))
    return JSONResponse(answer.model_dump(), status_code=202 if status == "queued" else 200)


@router.get("", dependencies=[Depends(require_read_key)], summary="Processed scenes")
def list_scenes(store: Annotated[Store, Depends(get_store)]) -> dict[str, Any]:
    """Every processed scene with its acquisition time and detection count."""
    scenes = []
    for scene_id in store.scene_ids():
        scene = store.scene(scene_id)
        if scene is None:
            continue
        scenes.append({
            "scene_id": scene.scene_id, "acquired": iso_utc(scene.acquired), "tile_id": scene.tile_id,
            "level": scene.level, "n_detections": scene.n_detections, "processed_at": iso_utc(scene.processed_at),
        })
    return {"scenes": scenes}

"""Whole-collection downloads: ``GET /exports/{collection}.geojson`` and ``.gpkg`` (as attachments).

The files are written by :mod:`pipeline.export` — the same writer as ``vesselwatch export`` — so a
download equals a CLI export: RFC 7946 GeoJSON, or a GeoPackage layer named after the collection.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from api.dependencies import get_store, require_read_key
from api.features import COLLECTIONS, collection_page
from api.filters import parse_bbox, parse_datetime
from api.problems import PROBLEM_RESPONSES, Problem
from api.routes.collections import known_collection
from pipeline.export import write_geopackage
from pipeline.store import Store

router = APIRouter(prefix="/exports", tags=["exports"], dependencies=[Depends(require_read_key)],
                   responses=PROBLEM_RESPONSES)

MEDIA_TYPES = {"geojson": "application/geo+json", "gpkg": "application/geopackage+sqlite3"}
#: GeoPackage layer name per collection (``pipeline.export.SCHEMAS`` calls protected areas ``areas``).
LAYERS = {"detections": "detections", "alerts": "alerts", "platforms": "platforms", "protected-areas": "areas"}
#: Largest export served in one response.
MAX_FEATURES = 1_000_000


@router.get(
    "/{filename}",
    summary="Download a collection",
    responses={200: {"content": {MEDIA_TYPES["geojson"]: {}, MEDIA_TYPES["gpkg"]: {}},
                     "description": "The file, as an attachment."}},
    response_class=Response,
)
def export(
    filename: str,
    request: Request,
    store: Annotated[Store, Depends(get_store)],
    bbox: Annotated[str | None, Query(description="west,south,east,north (CRS84).", max_length=400)] = None,
    datetime_: Annotated[str | None, Query(alias="datetime", description="RFC 3339 instant or interval.",
                                           max_length=200)] = None,
) -> Response:
    """``detections.geojson``, ``alerts.gpkg``, ``platforms.geojson``, ``protected-areas.gpkg``, ..."""
    collection_id, _, suffix = filename.rpartition(".")
    if suffix not in MEDIA_TYPES or collection_id not in COLLECTIONS:
        raise Problem(404, f"no export {filename!r}; use <collection>.geojson or <collection>.gpkg with a "
                           f"collection among {sorted(COLLECTIONS)}", invalid_params=[("filename", "unknown export")])
    resources = known_collection(collection_id, request)
    interval = parse_datetime(datetime_)
    start, end = interval if interval is not None else (None, None)
    page = collection_page(collection_id, store, resources, bbox=parse_bbox(bbox), start=start, end=end,
                           limit=MAX_FEATURES, offset=0)
    disposition = {"Content-Disposition": f'attachment; filename="{collection_id}.{suffix}"'}
    if suffix == "geojson":
        body = orjson.dumps({"type": "FeatureCollection", "features": page.features})
        return Response(body, media_type=MEDIA_TYPES["geojson"], headers=disposition)
    folder = Path(tempfile.mkdtemp(prefix="vesselwatch-export-"))
    path = folder / f"{collection_id}.gpkg"
    write_geopackage(page.features, path, layer=LAYERS[collection_id])

    def cleanup() -> None:
        path.unlink(missing_ok=True)
        folder.rmdir()

    return FileResponse(path, media_type=MEDIA_TYPES["gpkg"], filename=f"{collection_id}.gpkg",
                        background=BackgroundTask(cleanup))

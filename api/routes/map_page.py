"""``GET /map``: a Leaflet page (vendored, no CDN) of detections with heading arrows, platforms, areas, alerts.

The page (``api/static/map.html`` + ``map.js``) reads the same OGC API collections as any client.
With no network there are no tiles: the backdrop is the bundled Natural Earth coastline, served
as-is (gzip) from ``GET /map/coastline.geojson``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, Response

from api.dependencies import get_settings, require_read_key
from api.problems import Problem
from vesselwatch.settings import Settings

router = APIRouter(tags=["map"])

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


@router.get("/map", response_class=FileResponse, include_in_schema=True, summary="Map page",
            responses={200: {"content": {"text/html": {}}}})
def map_page() -> FileResponse:
    """The interactive map (HTML)."""
    return FileResponse(STATIC_DIR / "map.html", media_type="text/html")


@router.get("/map/coastline.geojson", dependencies=[Depends(require_read_key)], summary="Map backdrop",
            response_class=Response, responses={200: {"content": {"application/geo+json": {}}}})
def coastline(settings: Annotated[Settings, Depends(get_settings)]) -> Response:
    """The coastline the map draws under the data (Natural Earth 1:50m by default)."""
    path = settings.resolved_coastline_path()
    if not path.exists():
        raise Problem(404, f"coastline file {path.name} is not installed")
    headers = {"Cache-Control": "max-age=86400"}
    if path.suffix == ".gz":
        headers["Content-Encoding"] = "gzip"
    return Response(path.read_bytes(), media_type="application/geo+json", headers=headers)

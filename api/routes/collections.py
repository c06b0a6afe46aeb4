"""Feature collections served as GeoJSON (``/collections/{id}/items``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from api.dependencies import get_store
from pipeline.export import detection_feature, feature_collection
from pipeline.store import Store

router = APIRouter(tags=["collections"])

GEOJSON = "application/geo+json"


class GeoJSONResponse(JSONResponse):
    """A JSON response with the GeoJSON media type (RFC 7946)."""

    media_type = GEOJSON


@router.get("/collections/detections/items", response_class=GeoJSONResponse)
def detection_items(
    store: Annotated[Store, Depends(get_store)],
    limit: Annotated[int, Query(ge=1, le=10000, description="Maximum number of features.")] = 1000,
) -> dict[str, Any]:
    """Stored detections as a GeoJSON FeatureCollection (``[lon, lat]``, WGS84)."""
    features = []
    for record in store.iter_detections():
        if len(features) == limit:
            break
        features.append(detection_feature(record))
    collection = feature_collection(features)
    collection["numberReturned"] = len(features)
    return collection

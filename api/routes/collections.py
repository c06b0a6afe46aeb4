"""OGC API – Features, Part 1 (core + GeoJSON): landing page, conformance, collections, items.

A GIS client (QGIS "Add WFS / OGC API – Features layer") starts at ``/``, follows ``data`` to
``/collections`` and pages through ``/collections/{id}/items`` with ``limit`` and the ``next``
links. Items are RFC 7946 GeoJSON (``application/geo+json``) with ``numberMatched``,
``numberReturned``, ``timeStamp`` and ``links``. ``bbox`` crossing the antimeridian
(``west > east``) and ``datetime`` intervals with ``..`` are understood; unknown query parameters
and malformed values are answered 400 as the standard requires.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from api.dependencies import get_store, require_read_key
from api.features import COLLECTIONS, collection_page, extent, feature_by_id
from api.filters import parse_bbox, parse_datetime
from api.problems import PROBLEM_RESPONSES, Problem
from api.resources import Resources
from pipeline.store import Store

router = APIRouter(tags=["OGC API - Features"], dependencies=[Depends(require_read_key)], responses=PROBLEM_RESPONSES)

GEOJSON = "application/geo+json"
JSON = "application/json"
OPENAPI_MEDIA = "application/vnd.oai.openapi+json;version=3.0"

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]

#: Query parameters ``/items`` understands; anything else is a 400 (OGC /req/core/query-param-unknown).
ITEMS_PARAMETERS = frozenset({"bbox", "datetime", "limit", "offset", "f"})


class GeoJSONResponse(JSONResponse):
    """A JSON response with the GeoJSON media type (RFC 7946)."""

    media_type = GEOJSON


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _link(href: str, rel: str, type_: str = JSON, title: str | None = None) -> dict[str, str]:
    link = {"href": href, "rel": rel, "type": type_}
    if title:
        link["title"] = title
    return link


def known_collection(collection_id: str, request: Request) -> Resources | None:
    """The resources for a collection id; 404 for an unknown id, 503 when its layer is not loaded."""
    if collection_id not in COLLECTIONS:
        raise Problem(404, f"no collection {collection_id!r}; collections are {sorted(COLLECTIONS)}",
                      invalid_params=[("collectionId", "unknown collection")])
    resources: Resources | None = getattr(request.app.state, "resources", None)
    needed = {"platforms": "platforms", "protected-areas": "areas"}.get(collection_id)
    if needed is not None and (resources is None or getattr(resources, needed) is None):
        reason = (resources.unavailable.get(collection_id) if resources else None) or "not loaded"
        raise Problem(503, f"collection {collection_id!r} unavailable on this server: {reason}")
    return resources


def _collection_document(collection_id: str, request: Request, store: Store, resources: Resources | None) -> dict:
    info = COLLECTIONS[collection_id]
    base = f"{_base(request)}/collections/{collection_id}"
    return {
        "id": info.id,
        "title": info.title,
        "description": info.description,
        "itemType": "feature",
        "crs": ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"],
        "extent": extent(collection_id, store, resources),
        "links": [
            _link(base, "self", JSON, info.title),
            _link(f"{base}/items", "items", GEOJSON, f"{info.title} as GeoJSON"),
            _link(f"{_base(request)}/exports/{collection_id}.geojson", "enclosure", GEOJSON, "Whole collection"),
            _link(f"{_base(request)}/exports/{collection_id}.gpkg", "enclosure", "application/geopackage+sqlite3",
                  "Whole collection as GeoPackage"),
        ],
    }


@router.get("/", summary="Landing page")
def landing(request: Request) -> dict[str, Any]:
    """The API's entry point, with links to its definition, conformance and collections."""
    base = _base(request)
    return {
        "title": "vesselwatch",
        "description": "Vessel detections, headings, platforms, protected areas and alerts from Sentinel-2.",
        "links": [
            _link(f"{base}/", "self", JSON, "This document"),
            _link(f"{base}/openapi.json", "service-desc", OPENAPI_MEDIA, "The API definition"),
            _link(f"{base}/docs", "service-doc", "text/html", "The API documentation"),
            _link(f"{base}/conformance", "conformance", JSON, "OGC API conformance classes"),
            _link(f"{base}/collections", "data", JSON, "Feature collections"),
            _link(f"{base}/map", "alternate", "text/html", "Map"),
        ],
    }


@router.get("/conformance", summary="Conformance classes")
def conformance() -> dict[str, list[str]]:
    """The OGC API – Features conformance classes this server implements."""
    return {"conformsTo": CONFORMANCE}


@router.get("/collections", summary="Feature collections")
def collections(request: Request, store: Annotated[Store, Depends(get_store)]) -> dict[str, Any]:
    """Every collection with its extent and links (collections whose layer is not loaded are left out)."""
    resources: Resources | None = getattr(request.app.state, "resources", None)
    documents = []
    for collection_id in COLLECTIONS:
        try:
            known_collection(collection_id, request)
        except Problem:
            continue
        documents.append(_collection_document(collection_id, request, store, resources))
    base = _base(request)
    return {"links": [_link(f"{base}/collections", "self", JSON)], "collections": documents}


CollectionId = Annotated[str, Path(description="One of detections, alerts, platforms, protected-areas.",
                                   max_length=64)]


@router.get("/collections/{collection_id}", summary="One collection")
def collection(collection_id: CollectionId, request: Request,
               store: Annotated[Store, Depends(get_store)]) -> dict[str, Any]:
    """A collection's description, extent and links."""
    resources = known_collection(collection_id, request)
    return _collection_document(collection_id, request, store, resources)


@router.get("/collections/{collection_id}/items", response_class=GeoJSONResponse, summary="Features")
def items(
    collection_id: CollectionId,
    request: Request,
    store: Annotated[Store, Depends(get_store)],
    bbox: Annotated[str | None, Query(description="west,south,east,north in CRS84 degrees; west > east "
                                                  "crosses the antimeridian.", max_length=400)] = None,
    datetime_: Annotated[str | None, Query(alias="datetime", description="RFC 3339 instant or interval "
                                                                          "'start/end' ('..' = open).",
                                           max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=10000, description="Features per page.")] = 10,
    offset: Annotated[int, Query(ge=0, le=2**31, description="Features to skip (follow rel=next).")] = 0,
) -> dict[str, Any]:
    """One page of a collection as a GeoJSON FeatureCollection, with ``next`` when more remain."""
    resources = known_collection(collection_id, request)
    unknown = sorted(set(request.query_params) - ITEMS_PARAMETERS)
    if unknown:
        raise Problem(400, f"unknown query parameter(s) {unknown}",
                      invalid_params=[(name, "not a parameter of this endpoint") for name in unknown])
    box = parse_bbox(bbox)
    interval = parse_datetime(datetime_)
    start, end = interval if interval is not None else (None, None)
    page = collection_page(collection_id, store, resources, bbox=box, start=start, end=end, limit=limit,
                           offset=offset)
    self_url = str(request.url)
    links = [
        _link(self_url, "self", GEOJSON, "This page"),
        _link(f"{_base(request)}/collections/{collection_id}", "collection", JSON),
    ]
    if offset + len(page.features) < page.number_matched:
        links.append(_link(str(request.url.include_query_params(offset=offset + limit, limit=limit)), "next",
                           GEOJSON, "Next page"))
    if offset > 0:
        links.append(_link(str(request.url.include_query_params(offset=max(offset - limit, 0), limit=limit)),
                           "prev", GEOJSON, "Previous page"))
    return {
        "type": "FeatureCollection",
        "features": page.features,
        "numberMatched": page.number_matched,
        "numberReturned": len(page.features),
        "timeStamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "links": links,
    }


@router.get("/collections/{collection_id}/items/{feature_id:path}", response_class=GeoJSONResponse,
            summary="One feature")
def item(collection_id: CollectionId, feature_id: str, request: Request,
         store: Annotated[Store, Depends(get_store)]) -> dict[str, Any]:
    """One feature by id (ids may contain ``/``, e.g. ``<scene>/<n>``)."""
    resources = known_collection(collection_id, request)
    feature = feature_by_id(collection_id, feature_id, store, resources)
    if feature is None:
        raise Problem(404, f"collection {collection_id!r} has no feature {feature_id!r}",
                      invalid_params=[("featureId", "not found")])
    base = f"{_base(request)}/collections/{collection_id}"
    feature["links"] = [
        _link(str(request.url), "self", GEOJSON),
        _link(base, "collection", JSON),
    ]
    return feature

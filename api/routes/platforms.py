"""Nearest platform: one point (``GET``, every tie listed) or a batch of points (``POST``, one index call).

Distances are great-circle kilometres on the mean-radius sphere, exactly as
:class:`geo.nearest.PlatformIndex` computes them; platforms tied at the nearest distance (same
site, or mirror positions) are all returned, in register order.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.dependencies import get_resources, require_platforms, require_read_key
from api.problems import PROBLEM_RESPONSES, Problem
from api.resources import Resources

router = APIRouter(prefix="/platforms", tags=["platforms"], dependencies=[Depends(require_read_key)],
                   responses=PROBLEM_RESPONSES)

#: Most points one ``POST /platforms/nearest`` may ask about.
MAX_BATCH_POINTS = 100_000


class Platform(BaseModel):
    """A platform and its distance from the query point."""

    platform_id: str
    name: str | None = None
    lon: float = Field(description="Degrees WGS84.")
    lat: float = Field(description="Degrees WGS84.")
    distance_km: float


class NearestAnswer(BaseModel):
    """``GET /platforms/nearest``: the tied nearest platforms, and the ``k`` nearest when ``k > 1``."""

    lon: float
    lat: float
    distance_km: float | None = Field(description="Distance to the nearest platform; null when none within max_km.")
    platforms: list[Platform] = Field(description="Every platform at exactly the nearest distance.")
    k_nearest: list[Platform] | None = Field(None, description="The k nearest, by (distance, register order).")


class NearestBatchRequest(BaseModel):
    """Points to look up, ``[lon, lat]`` in degrees (GeoJSON order)."""

    points: list[tuple[float, float]] = Field(max_length=MAX_BATCH_POINTS, description="[lon, lat] pairs, degrees.")
    max_km: float | None = Field(None, ge=0, description="Ignore platforms farther than this (km).")


class NearestBatchAnswer(BaseModel):
    """Column-wise answers, aligned with the request's points."""

    count: int
    distance_km: list[float | None] = Field(description="Per point; null when no platform within max_km.")
    platform_ids: list[list[str]] = Field(description="Per point, every platform tied at the nearest distance.")


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type="application/json")


def _platform(resources: Resources, row: int, distance_km: float) -> dict[str, Any]:
    platforms = resources.platforms
    name = platforms.name[row]
    return {
        "platform_id": str(platforms.platform_id[row]),
        "name": None if name is None else str(name),
        "lon": float(platforms.lon[row]),
        "lat": float(platforms.lat[row]),
        "distance_km": distance_km,
    }


def _number(request: Request, name: str, *, low: float, high: float, required: bool) -> float | None:
    """A finite query number within ``[low, high]``; problems name the parameter."""
    text = request.query_params.get(name)
    if text is None:
        if required:
            raise Problem(400, f"{name} is required", invalid_params=[(name, "missing")])
        return None
    try:
        value = float(text)
    except ValueError:
        raise Problem(400, f"{name}={text!r} is not a number", invalid_params=[(name, "not a number")]) from None
    if not math.isfinite(value):
        raise Problem(400, f"{name} must be finite, got {text!r}", invalid_params=[(name, "not finite")])
    if not low <= value <= high:
        raise Problem(400, f"{name}={value} is outside [{low}, {high}]",
                      invalid_params=[(name, f"outside [{low}, {high}]")])
    return value


async def nearest_endpoint(request: Request) -> Response:
    """``GET /platforms/nearest`` as a plain Starlette endpoint.

    The busiest endpoint skips FastAPI's per-request dependency and parameter machinery (several
    hundred microseconds here); it checks the same rules itself, so the documented route below
    (which describes it in OpenAPI and answers identically) and this one cannot disagree.
    """
    await require_read_key(request)
    resources = require_platforms(get_resources(request))
    lat = _number(request, "lat", low=-90.0, high=90.0, required=True)
    lon = _number(request, "lon", low=-180.0, high=180.0, required=True)
    max_km = _number(request, "max_km", low=0.0, high=math.inf, required=False)
    k_text = request.query_params.get("k", "1")
    if not k_text.strip().isdigit() or not 1 <= int(k_text) <= 100:
        raise Problem(400, f"k={k_text!r} must be an integer in [1, 100]", invalid_params=[("k", "not in 1..100")])
    k = int(k_text)
    batcher = getattr(request.app.state, "nearest_batcher", None)
    if k == 1 and max_km is None and batcher is not None:
        # Concurrent requests share one vectorized index call (see api.nearest_batcher).
        distance, tied = await batcher.nearest(lon, lat)
        result = None
    else:
        result = resources.platform_index.query(lon, lat, k=k, max_km=max_km)
        distance, tied = float(result.distance_km[0]), result.tied_index(0)
    found = math.isfinite(distance)
    answer: dict[str, Any] = {
        "lon": lon,
        "lat": lat,
        "distance_km": distance if found else None,
        "platforms": [_platform(resources, int(row), distance) for row in tied] if found else [],
    }
    if k > 1:
        answer["k_nearest"] = [
            _platform(resources, int(row), float(d))
            for row, d in zip(result.k_index[0], result.k_distance_km[0])
            if row >= 0
        ]
    return _json(answer)


@router.get("/nearest", response_model=NearestAnswer, summary="Nearest platform(s) to a point")
async def nearest(
    request: Request,
    lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False, description="Latitude, degrees WGS84.")],
    lon: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False, description="Longitude, degrees WGS84.")],
    k: Annotated[int, Query(ge=1, le=100, description="Also list the k nearest platforms.")] = 1,
    max_km: Annotated[float | None, Query(ge=0, allow_inf_nan=False, description="Search radius, km.")] = None,
) -> Response:
    """Every platform tied at the smallest great-circle distance from ``(lon, lat)``, with ``distance_km``.

    Served by :func:`nearest_endpoint` (mounted ahead of this route); this declaration documents it.
    """
    return await nearest_endpoint(request)


def _is_pair(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(type(v) in (int, float) for v in value)


def _parse_batch(body: bytes) -> tuple[np.ndarray, float | None]:
    """The request's points as an ``(n, 2)`` float array, validated; problems name the field."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise Problem(400, f"body is not valid JSON: {error}", invalid_params=[("body", "invalid JSON")]) from None
    if not isinstance(document, dict) or "points" not in document:
        raise Problem(422, "body must be an object with 'points'", invalid_params=[("points", "missing")])
    extra = sorted(set(document) - {"points", "max_km"})
    if extra:
        raise Problem(422, f"unknown field(s) {extra}", invalid_params=[(name, "not allowed") for name in extra])
    points = document["points"]
    if not isinstance(points, list):
        raise Problem(422, "points must be an array of [lon, lat] pairs", invalid_params=[("points", "not an array")])
    if len(points) > MAX_BATCH_POINTS:
        raise Problem(413, f"points has {len(points)} entries; at most {MAX_BATCH_POINTS} per request",
                      invalid_params=[("points", f"more than {MAX_BATCH_POINTS}")])
    try:
        array = np.array(points, dtype=np.float64) if points else np.zeros((0, 2))
    except (TypeError, ValueError):
        array = None
    if array is None or array.ndim != 2 or array.shape[1] != 2:
        # Only on the error path: find the first offending entry to name it.
        bad = next((i for i, p in enumerate(points) if not _is_pair(p)), 0)
        raise Problem(422, f"points[{bad}] is not a [lon, lat] pair of numbers",
                      invalid_params=[(f"points.{bad}", "expected [lon, lat] numbers")])
    lon, lat = array[:, 0], array[:, 1]
    bad_lon = np.flatnonzero(~((lon >= -180.0) & (lon <= 180.0)))
    bad_lat = np.flatnonzero(~((lat >= -90.0) & (lat <= 90.0)))
    if bad_lon.size or bad_lat.size:
        params = [(f"points.{i}.0", f"longitude {lon[i]} outside [-180, 180]") for i in bad_lon[:10]]
        params += [(f"points.{i}.1", f"latitude {lat[i]} outside [-90, 90]") for i in bad_lat[:10]]
        raise Problem(422, f"{bad_lon.size + bad_lat.size} coordinate(s) out of range", invalid_params=params)
    max_km = document.get("max_km")
    if max_km is not None:
        if isinstance(max_km, bool) or not isinstance(max_km, (int, float)) or not max_km >= 0:
            raise Problem(422, "max_km must be a number >= 0", invalid_params=[("max_km", "expected a number >= 0")])
        max_km = float(max_km)
    return array, max_km


@router.post(
    "/nearest",
    response_model=NearestBatchAnswer,
    summary="Nearest platforms to many points",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NearestBatchRequest"}}},
        }
    },
)
async def nearest_batch(request: Request, resources: Annotated[Resources, Depends(require_platforms)]) -> Response:
    """Nearest platforms (all ties) for up to 100,000 points in one vectorized index query.

    The body is parsed straight into a NumPy array (no per-point Python objects): ``{"points":
    [[lon, lat], ...], "max_km": null}``.
    """
    array, max_km = _parse_batch(await request.body())
    from starlette.concurrency import run_in_threadpool

    result = await run_in_threadpool(resources.platform_index.query, array[:, 0], array[:, 1], max_km=max_km)
    ids = resources.platforms.platform_id[result.tie_index].astype(str).tolist()
    offsets = result.tie_offsets.tolist()
    distance = np.where(np.isfinite(result.distance_km), result.distance_km, np.nan)
    return _json({
        "count": int(array.shape[0]),
        "distance_km": distance,
        "platform_ids": [ids[offsets[i] : offsets[i + 1]] for i in range(array.shape[0])],
    })

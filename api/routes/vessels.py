"""Vessels and headings: ``GET /vessels/{id}``, ``GET /vessels/{id}/chip.png``, ``POST /heading``."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.chip_image import draw_chip_png, keypoints_in_chip, recut_chip, rgb_preview
from api.dependencies import get_settings, get_store, require_heading_model, require_read_key
from api.problems import PROBLEM_RESPONSES, Problem
from api.resources import Resources
from api.uploads import decode_chip
from pipeline.export import alert_feature, iso_utc
from pipeline.store import Store
from vesselwatch.settings import Settings

router = APIRouter(tags=["vessels"], dependencies=[Depends(require_read_key)], responses=PROBLEM_RESPONSES)


class Keypoint(BaseModel):
    """A wake keypoint: chip pixel ``(x, y)`` and WGS84 ``lon, lat`` (null when not georeferenced)."""

    x: float
    y: float
    lon: float | None = None
    lat: float | None = None


class HeadingAnswer(BaseModel):
    """The model's answer for one uploaded chip."""

    heading_deg: float | None = Field(description="Direction of travel: true bearing when the chip is "
                                                   "georeferenced, else clockwise from the image's up.")
    heading_grid_deg: float | None = Field(description="Clockwise from the chip's grid up.")
    uncertainty_deg: float | None = Field(description="Calibrated one-sigma, degrees.")
    ambiguous: bool = Field(description="True when bow and stern cannot be told apart.")
    wake_probability: float
    wake_on_land: bool = Field(False, description="The wake the model found lies on land (a quay, a pier the "
                                                  "vessel is moored against): heading withdrawn. Checked where the "
                                                  "chip has B03 and B08.")
    speed_kn: float | None = Field(None, description="Speed over ground from the hull's shift between B02 and B04 "
                                                     "(about 1 s apart), knots; null below about 11 kn, without "
                                                     "those bands or without georeferencing.")
    motion_axis_deg: float | None = Field(None, description="True bearing of the axis of motion, 0-180 degrees "
                                                            "(the direction along it comes from the wake).")
    georeferenced: bool
    grid_north_deg: float | None = None
    keypoints: dict[str, Keypoint | None]
    format: str
    bands: list[str]
    pixel_m: float | None = Field(None, description="Ground size of a pixel at the chip's centre, metres; null "
                                                    "without georeferencing.")
    warnings: list[str] = Field(default_factory=list, description="Why the answer deserves care, e.g. pixels far "
                                                                  "from the model's 10 m.")


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _detection_or_404(store: Store, detection_id: str) -> Any:
    record = store.detection(detection_id)
    if record is None:
        raise Problem(404, f"no vessel detection {detection_id!r}", invalid_params=[("detection_id", "not found")])
    return record


def _live_nearest(resources: Resources | None, lon: float, lat: float) -> dict[str, Any] | None:
    if resources is None or resources.platform_index is None:
        return None
    result = resources.platform_index.query(lon, lat)
    distance = _finite(result.distance_km[0])
    ids = [str(i) for i in result.tied_ids(0)]
    return {"platform_ids": ids, "distance_km": distance}


@router.get("/vessels/{detection_id:path}/chip.png", summary="The vessel's chip with keypoints and heading",
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def vessel_chip(
    detection_id: str,
    store: Annotated[Store, Depends(get_store)],
    settings: Annotated[Settings, Depends(get_settings)],
) -> Response:
    """PNG of the chip around the detection (re-cut from its product), keypoints circled, heading arrowed.

    Hull red, wake end yellow, Kelvin arm ends cyan; a two-headed arrow when the heading is ambiguous.
    """
    record = _detection_or_404(store, detection_id)
    scene = store.scene(record.scene_id)
    if scene is None:
        raise Problem(404, f"scene {record.scene_id!r} of {detection_id!r} is not stored")
    chip = recut_chip(scene.path, record.row, record.col, settings.chip_size_px)
    heading_grid = None
    if record.heading_deg is not None and math.isfinite(record.heading_deg):
        heading_grid = (record.heading_deg - chip.grid_north_deg) % 360.0
    png = draw_chip_png(
        rgb_preview(chip.data, chip.band_names),
        keypoints_px=keypoints_in_chip(record.keypoints, chip),
        heading_grid_deg=heading_grid,
        ambiguous=bool(record.heading_ambiguous),
    )
    return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})


@router.get("/vessels/{detection_id:path}", summary="One vessel: heading, keypoints, nearest platform, alerts")
def vessel(
    detection_id: str,
    request: Request,
    store: Annotated[Store, Depends(get_store)],
) -> dict[str, Any]:
    """The detection with its heading, uncertainty, keypoints, nearest platform(s) and alerts."""
    record = _detection_or_404(store, detection_id)
    resources = getattr(request.app.state, "resources", None)
    enrichment = record.enrichment or {}
    alerts = [alert_feature(a) for a in store.iter_alerts(scene_id=record.scene_id)
              if a.detection_id == record.detection_id]
    base = str(request.base_url).rstrip("/")
    return {
        "detection_id": record.detection_id,
        "scene_id": record.scene_id,
        "acquired": iso_utc(record.acquired),
        "lon": record.lon,
        "lat": record.lat,
        "length_m": record.length_m,
        "width_m": record.width_m,
        "score": record.score,
        "heading_deg": _finite(record.heading_deg) if record.heading_deg is not None else None,
        "heading_uncertainty_deg": (_finite(record.heading_uncertainty_deg)
                                    if record.heading_uncertainty_deg is not None else None),
        "heading_ambiguous": record.heading_ambiguous,
        "wake_on_land": record.wake_on_land,
        "keypoints": record.keypoints,
        "enrichment": enrichment,
        "nearest_platform": _live_nearest(resources, record.lon, record.lat),
        "alerts": alerts,
        "links": [
            {"href": f"{base}/vessels/{record.detection_id}/chip.png", "rel": "preview", "type": "image/png"},
            {"href": f"{base}/collections/detections/items/{record.detection_id}", "rel": "alternate",
             "type": "application/geo+json"},
        ],
    }


@router.post("/heading", response_model=HeadingAnswer, summary="Heading of an uploaded chip")
def heading(
    file: Annotated[UploadFile, File(description="PNG, JPEG, GeoTIFF or JPEG 2000 chip centred on the vessel (16..1024 px).")],
    model: Annotated[Any, Depends(require_heading_model)],
    settings: Annotated[Settings, Depends(get_settings)],
    land_check: Annotated[bool, Query(description="Withdraw the heading when the wake line lies on land by NDWI "
                                                  "(needs B03 and B08 in linear radiometry); false for "
                                                  "contrast-stretched 4-band chips.")] = True,
) -> HeadingAnswer:
    """Run the wake-keypoint model on one chip and return heading, uncertainty and keypoints.

    The upload must be at most ``api_max_upload_bytes``; the format is detected from its bytes.
    """
    content = file.file.read(settings.api_max_upload_bytes + 1)
    if len(content) > settings.api_max_upload_bytes:
        raise Problem(413, f"file larger than {settings.api_max_upload_bytes} bytes",
                      invalid_params=[("file", "too large")])
    chip = decode_chip(content)
    from pipeline.chip_files import chip_warnings
    from pipeline.heading import MAX_WAKE_LAND_SHARE, estimate_headings
    from pipeline.motion import measure_motion

    grid_north, georeferenced = chip.grid_north_deg, chip.georeferenced
    item = SimpleNamespace(data=chip.data, band_names=chip.band_names, grid_north_deg=grid_north,
                           transform=chip.transform, crs=chip.crs)
    # An un-georeferenced chip keeps grid up as north and NaN lon/lat.
    result = estimate_headings([item], model, max_wake_land_share=MAX_WAKE_LAND_SHARE if land_check else None)
    motion = measure_motion([item]).as_dicts()[0]
    lon, lat = result.keypoints_lon[0], result.keypoints_lat[0]
    names = model.config.keypoint_names
    keypoints: dict[str, Keypoint | None] = {}
    for k, name in enumerate(names):
        x, y = result.keypoints_px[0, k]
        keypoints[name] = None if not (math.isfinite(x) and math.isfinite(y)) else Keypoint(
            x=float(x), y=float(y), lon=_finite(lon[k]), lat=_finite(lat[k]))
    return HeadingAnswer(
        heading_deg=_finite(result.heading_deg[0]),
        heading_grid_deg=_finite(result.heading_grid_deg[0]),
        uncertainty_deg=_finite(result.uncertainty_deg[0]),
        ambiguous=bool(result.ambiguous[0]),
        wake_probability=float(result.wake_probability[0]),
        wake_on_land=bool(result.wake_on_land[0]),
        speed_kn=motion["speed_kn"],
        motion_axis_deg=motion["motion_axis_deg"],
        georeferenced=georeferenced,
        grid_north_deg=grid_north if georeferenced else None,
        keypoints=keypoints,
        format=chip.format,
        bands=chip.band_names,
        pixel_m=chip.pixel_m,
        warnings=chip_warnings(chip, model.config.pixel_m),
    )


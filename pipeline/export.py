"""GeoJSON (RFC 7946) and GeoPackage exports of stored detections.

GeoJSON written here follows RFC 7946 strictly: coordinates are ``[lon, lat]`` in WGS84 with at
most 7 decimals (about 1 cm), there is no ``crs`` member, times are ISO 8601 UTC with a ``Z``
suffix, and property names are stable (documented in the README). GeoPackage files are written
with GDAL through pyogrio, which is what QGIS reads them with.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.store import DetectionRecord

log = logging.getLogger(__name__)

#: Decimal places kept in exported coordinates (1e-7 degree is about 1 cm).
COORDINATE_DECIMALS = 7

#: Property names of an exported detection, in output order.
DETECTION_PROPERTIES = (
    "detection_id",
    "scene_id",
    "acquired",
    "length_m",
    "width_m",
    "score",
    "heading_deg",
    "heading_uncertainty_deg",
    "heading_ambiguous",
    "pixel_row",
    "pixel_col",
)


def iso_utc(value: datetime | None) -> str | None:
    """ISO 8601 UTC text with a ``Z`` suffix, e.g. ``2024-05-01T10:56:31Z``; ``None`` stays ``None``.

    >>> iso_utc(datetime(2024, 5, 1, 10, 56, 31, tzinfo=timezone.utc))
    '2024-05-01T10:56:31Z'
    """
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    text = value.astimezone(timezone.utc).isoformat()
    return text.replace("+00:00", "Z")


def round_coordinate(value: float) -> float:
    """A coordinate rounded to :data:`COORDINATE_DECIMALS` places; non-finite values are refused."""
    if not math.isfinite(value):
        raise ValueError(f"coordinate {value!r} is not finite")
    return round(float(value), COORDINATE_DECIMALS)


def _clean(value: Any) -> Any:
    """JSON-safe property value: NaN/inf become ``None``, datetimes ISO UTC text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return iso_utc(value)
    return value


def detection_feature(record: DetectionRecord) -> dict[str, Any]:
    """One detection as a GeoJSON Feature (Point at the centroid, ``[lon, lat]``)."""
    properties: dict[str, Any] = {
        "detection_id": record.detection_id,
        "scene_id": record.scene_id,
        "acquired": iso_utc(record.acquired),
        "length_m": record.length_m,
        "width_m": record.width_m,
        "score": record.score,
        "heading_deg": record.heading_deg,
        "heading_uncertainty_deg": record.heading_uncertainty_deg,
        "heading_ambiguous": record.heading_ambiguous,
        "pixel_row": record.row,
        "pixel_col": record.col,
    }
    for key, value in (record.enrichment or {}).items():
        properties.setdefault(key, value)
    return {
        "type": "Feature",
        "id": record.detection_id,
        "geometry": {
            "type": "Point",
            "coordinates": [round_coordinate(record.lon), round_coordinate(record.lat)],
        },
        "properties": {key: _clean(value) for key, value in properties.items()},
    }


def feature_collection(features: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection (no ``crs`` member: RFC 7946 forbids one)."""
    return {"type": "FeatureCollection", "features": list(features)}


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_geojson(features: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """Write features as an RFC 7946 FeatureCollection; returns the number written."""
    collection = feature_collection(features)
    _atomic_write_text(Path(path), json.dumps(collection, allow_nan=False, ensure_ascii=False))
    log.info("wrote %d features to %s", len(collection["features"]), path)
    return len(collection["features"])


def write_geopackage(features: Iterable[Mapping[str, Any]], path: str | Path, *, layer: str) -> int:
    """Write features to a GeoPackage layer (EPSG:4326) with GDAL; returns the number written.

    Nested property values (lists, dicts) are stored as JSON text, since GeoPackage columns are flat.
    """
    import geopandas as gpd
    import shapely

    features = list(features)
    path = Path(path)
    rows = []
    for feature in features:
        properties = {
            key: json.dumps(value) if isinstance(value, (list, dict)) else value
            for key, value in feature["properties"].items()
        }
        rows.append(properties)
    geometries = [shapely.geometry.shape(feature["geometry"]) for feature in features]
    frame = gpd.GeoDataFrame(rows, geometry=geometries, crs="EPSG:4326")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp.gpkg")
    temporary.unlink(missing_ok=True)
    frame.to_file(temporary, layer=layer, driver="GPKG", engine="pyogrio")
    os.replace(temporary, path)
    log.info("wrote %d features to %s (layer %s)", len(features), path, layer)
    return len(features)


def write_features(features: Iterable[Mapping[str, Any]], path: str | Path, *, layer: str) -> int:
    """Write features to ``.geojson``/``.json`` or ``.gpkg`` chosen by the file suffix."""
    suffix = Path(path).suffix.lower()
    if suffix in {".geojson", ".json"}:
        return write_geojson(features, path)
    if suffix == ".gpkg":
        return write_geopackage(features, path, layer=layer)
    raise ValueError(f"{path}: unknown export format {suffix!r}; use .geojson or .gpkg")

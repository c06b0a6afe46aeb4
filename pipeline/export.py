"""GeoJSON (RFC 7946) and GeoPackage exports: detections, alerts, platforms, protected areas.

GeoJSON written here follows RFC 7946 strictly: coordinates are ``[lon, lat]`` in WGS84 with at
most 7 decimals (about 1 cm), there is no ``crs`` member, times are ISO 8601 UTC with a ``Z``
suffix, and property names are stable (:data:`SCHEMAS`, documented in ``docs/alerts.md``).
Polygons are split at the antimeridian with counter-clockwise exterior rings. GeoPackage files
are written with GDAL through pyogrio, which is what QGIS reads them with.
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

import numpy as np
import shapely

from pipeline.reference import Platforms, ProtectedAreas, split_antimeridian
from pipeline.store import AlertRecord, DetectionRecord

log = logging.getLogger(__name__)

#: Decimal places kept in exported coordinates (1e-7 degree is about 1 cm).
COORDINATE_DECIMALS = 7

#: Exported property names and their types, per collection, in output order. Types are
#: ``str``, ``float``, ``int``, ``bool`` and ``datetime`` (ISO 8601 UTC text in GeoJSON, a DATETIME
#: field in GeoPackage). Every feature carries every name (``null`` when unknown), so GIS tools see
#: the same columns in every export; the names are documented in ``docs/alerts.md``.
DETECTION_SCHEMA: dict[str, str] = {
    "detection_id": "str",
    "scene_id": "str",
    "acquired": "datetime",
    "length_m": "float",
    "width_m": "float",
    "score": "float",
    "heading_deg": "float",
    "heading_uncertainty_deg": "float",
    "heading_ambiguous": "bool",
    "wake_on_land": "bool",
    "pixel_row": "float",
    "pixel_col": "float",
    "nearest_platform_ids": "str",
    "nearest_platform_count": "int",
    "nearest_platform_km": "float",
    "coast_km": "float",
    "inside_area_ids": "str",
    "near_area_ids": "str",
    "nearest_area_id": "str",
    "nearest_area_km": "float",
    "speed_kn": "float",
    "motion_axis_deg": "float",
}
ALERT_SCHEMA: dict[str, str] = {
    "alert_id": "str",
    "detection_id": "str",
    "scene_id": "str",
    "acquired": "datetime",
    "area_id": "str",
    "area_name": "str",
    "kind": "str",
    "severity": "str",
    "distance_km": "float",
    "entry_km": "float",
    "entry_lon": "float",
    "entry_lat": "float",
    "cone_fraction": "float",
    "heading_deg": "float",
    "heading_uncertainty_deg": "float",
    "heading_ambiguous": "bool",
    "direction": "str",
    "speed_kn": "float",
    "time_to_entry_min": "float",
    "time_to_entry_note": "str",
    "alert_radius_km": "float",
    "lookahead_km": "float",
}
PLATFORM_SCHEMA: dict[str, str] = {"platform_id": "str", "name": "str"}
AREA_SCHEMA: dict[str, str] = {
    "area_id": "str",
    "name": "str",
    "designation": "str",
    "iucn_category": "str",
    "marine": "str",
    "alert_radius_km": "float",
}
SCHEMAS: dict[str, dict[str, str]] = {
    "detections": DETECTION_SCHEMA,
    "alerts": ALERT_SCHEMA,
    "platforms": PLATFORM_SCHEMA,
    "areas": AREA_SCHEMA,
}
#: Property names of an exported detection, in output order.
DETECTION_PROPERTIES = tuple(DETECTION_SCHEMA)
#: Separator of id lists (ties, several areas) flattened into one text property.
ID_SEPARATOR = ";"

#: Geometry type of each collection's layer (declared even when an export is empty).
_LAYER_GEOMETRY = {"detections": "Point", "alerts": "Point", "platforms": "Point", "areas": "MultiPolygon"}

Bbox = tuple[float, float, float, float]


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


def _flat(value: Any) -> Any:
    """Lists of ids become one ``;``-separated text (GIS columns are flat); empty lists become ``None``."""
    if isinstance(value, (list, tuple)):
        return ID_SEPARATOR.join(str(v) for v in value) if value else None
    return value


def _point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [round_coordinate(lon), round_coordinate(lat)]}


def detection_feature(record: DetectionRecord) -> dict[str, Any]:
    """One detection as a GeoJSON Feature (Point at the centroid, ``[lon, lat]``).

    Properties are :data:`DETECTION_SCHEMA`; the enrichment's id lists (tied nearest platforms,
    areas) are flattened to ``;``-separated text.
    """
    enrichment = record.enrichment or {}
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
        "wake_on_land": record.wake_on_land,
        "pixel_row": record.row,
        "pixel_col": record.col,
    }
    for key in DETECTION_PROPERTIES[len(properties):]:
        properties[key] = _flat(enrichment.get(key))
    return {
        "type": "Feature",
        "id": record.detection_id,
        "geometry": _point(record.lon, record.lat),
        "properties": {key: _clean(value) for key, value in properties.items()},
    }


def alert_feature(record: AlertRecord) -> dict[str, Any]:
    """One alert as a GeoJSON Feature: a Point at the vessel, properties :data:`ALERT_SCHEMA`."""
    details = record.details or {}
    properties: dict[str, Any] = {
        "alert_id": record.alert_id,
        "detection_id": record.detection_id,
        "scene_id": record.scene_id,
        "acquired": iso_utc(record.acquired),
        "area_id": record.area_id,
        "area_name": record.area_name,
        "kind": record.kind,
        "severity": record.severity,
        "distance_km": record.distance_km,
        "entry_km": record.entry_km,
        "entry_lon": None if record.entry_lon is None else round_coordinate(record.entry_lon),
        "entry_lat": None if record.entry_lat is None else round_coordinate(record.entry_lat),
        "cone_fraction": record.cone_fraction,
        "heading_deg": record.heading_deg,
        "heading_uncertainty_deg": record.heading_uncertainty_deg,
        "heading_ambiguous": record.heading_ambiguous,
        "direction": record.direction,
        "speed_kn": record.speed_kn,
        "time_to_entry_min": record.time_to_entry_min,
        "time_to_entry_note": details.get("time_to_entry_note"),
        "alert_radius_km": details.get("alert_radius_km"),
        "lookahead_km": details.get("lookahead_km"),
    }
    return {
        "type": "Feature",
        "id": record.alert_id,
        "geometry": _point(record.lon, record.lat),
        "properties": {key: _clean(value) for key, value in properties.items()},
    }


def platform_features(platforms: Platforms, *, bbox: Bbox | None = None) -> list[dict[str, Any]]:
    """Platforms as GeoJSON Point Features (properties :data:`PLATFORM_SCHEMA`), optionally within ``bbox``."""
    keep = np.flatnonzero(platforms.within_bbox(bbox))
    return [
        {
            "type": "Feature",
            "id": str(platforms.platform_id[i]),
            "geometry": _point(float(platforms.lon[i]), float(platforms.lat[i])),
            "properties": {"platform_id": str(platforms.platform_id[i]), "name": _clean(platforms.name[i])},
        }
        for i in keep
    ]


def area_features(areas: ProtectedAreas, *, bbox: Bbox | None = None) -> list[dict[str, Any]]:
    """Protected areas as GeoJSON MultiPolygon Features (properties :data:`AREA_SCHEMA`).

    With ``bbox`` only areas whose polygon intersects it are written (whole, not clipped).
    """
    window = _bbox_geometry(bbox)
    features = []
    for i, geometry in enumerate(areas.geometry):
        if window is not None and not geometry.intersects(window):
            continue
        features.append(
            {
                "type": "Feature",
                "id": str(areas.area_id[i]),
                "geometry": geojson_geometry(geometry, multi=True),
                "properties": {key: _clean(value) for key, value in areas.properties(i).items()},
            }
        )
    return features


def _bbox_geometry(bbox: Bbox | None) -> Any:
    """The bbox as a shapely (multi)polygon; ``west > east`` becomes two boxes either side of 180°."""
    if bbox is None:
        return None
    west, south, east, north = bbox
    if west <= east:
        return shapely.box(west, south, east, north)
    return shapely.MultiPolygon([shapely.box(west, south, 180.0, north), shapely.box(-180.0, south, east, north)])


def _ring(coords: Any) -> list[list[float]]:
    """A ring rounded to :data:`COORDINATE_DECIMALS`, repeated vertices removed, closed."""
    points = np.round(np.asarray(coords, dtype=np.float64)[:, :2], COORDINATE_DECIMALS)
    if not np.isfinite(points).all():
        raise ValueError("polygon has non-finite coordinates")
    keep = np.ones(len(points), dtype=bool)
    keep[1:] = np.any(points[1:] != points[:-1], axis=1)
    points = points[keep]
    if len(points) and np.any(points[0] != points[-1]):
        points = np.vstack([points, points[:1]])
    return [[float(x) + 0.0, float(y) + 0.0] for x, y in points]


def geojson_geometry(geometry: Any, *, multi: bool = False) -> dict[str, Any]:
    """A shapely lon/lat geometry as an RFC 7946 GeoJSON geometry.

    Polygons are split at the antimeridian (:func:`pipeline.reference.split_antimeridian`),
    exterior rings counter-clockwise and holes clockwise, coordinates ``[lon, lat]`` rounded to
    :data:`COORDINATE_DECIMALS`. ``multi=True`` always returns a MultiPolygon for polygonal input.

    Examples
    --------
    >>> square = shapely.Polygon([(179, -1), (181, -1), (181, 1), (179, 1)])
    >>> geometry = geojson_geometry(square)
    >>> geometry["type"], [ring[0][:2] for polygon in geometry["coordinates"] for ring in polygon]
    ('MultiPolygon', [[179.0, -1.0], [-179.0, 1.0]])
    """
    if geometry.geom_type == "Point":
        return _point(geometry.x, geometry.y)
    if geometry.geom_type not in {"Polygon", "MultiPolygon"}:
        raise ValueError(f"cannot export a {geometry.geom_type} geometry; expected a point or polygon")
    split = split_antimeridian(geometry)
    polygons = list(split.geoms) if split.geom_type == "MultiPolygon" else [split]
    coordinates = [
        [_ring(polygon.exterior.coords), *(_ring(hole.coords) for hole in polygon.interiors)] for polygon in polygons
    ]
    if len(coordinates) == 1 and not multi:
        return {"type": "Polygon", "coordinates": coordinates[0]}
    return {"type": "MultiPolygon", "coordinates": coordinates}


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


def _column(values: list[Any], kind: str) -> Any:
    """A pandas column of the declared type, nulls kept (nullable dtypes, so GDAL writes real NULLs)."""
    import pandas as pd

    if kind == "datetime":
        return pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601").astype("datetime64[ms, UTC]")
    if kind == "float":
        return pd.array([None if v is None else float(v) for v in values], dtype="Float64")
    if kind == "int":
        return pd.array(values, dtype="Int64")
    if kind == "bool":
        return pd.array(values, dtype="boolean")
    return pd.array([None if v is None else str(v) for v in values], dtype=object)


def write_geopackage(
    features: Iterable[Mapping[str, Any]],
    path: str | Path,
    *,
    layer: str,
    schema: Mapping[str, str] | None = None,
) -> int:
    """Write features to a GeoPackage layer (EPSG:4326) with GDAL; returns the number written.

    Parameters
    ----------
    schema
        Property name → type (see :data:`SCHEMAS`); default the schema of ``layer`` when it is one
        of the exported collections, else inferred. Declared columns exist even in an empty export.
        Nested property values (lists, dicts) are stored as JSON text, since GeoPackage columns are flat.
    """
    import geopandas as gpd
    import pyogrio

    features = list(features)
    path = Path(path)
    schema = dict(schema or SCHEMAS.get(layer) or {})
    for feature in features:
        for key, value in feature["properties"].items():
            schema.setdefault(key, "str" if isinstance(value, (str, list, dict)) else "float")
    columns = {}
    for key, kind in schema.items():
        values = [feature["properties"].get(key) for feature in features]
        values = [json.dumps(v) if isinstance(v, (list, dict)) else v for v in values]
        columns[key] = _column(values, kind)
    geometries = [shapely.geometry.shape(feature["geometry"]) for feature in features]
    frame = gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(geometries, crs="EPSG:4326"), crs="EPSG:4326")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp.gpkg")
    temporary.unlink(missing_ok=True)
    kinds = {g.geom_type for g in geometries} or {_LAYER_GEOMETRY.get(layer, "Unknown")}
    geometry_type = kinds.pop() if len(kinds) == 1 else "Unknown"
    pyogrio.write_dataframe(
        frame, temporary, layer=layer, driver="GPKG", geometry_type=geometry_type, promote_to_multi=False
    )
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

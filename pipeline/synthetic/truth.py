"""``truth.geojson``: one Feature per synthetic vessel (RFC 7946: lon/lat, no ``crs`` member)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from affine import Affine

from pipeline.synthetic.tiles import grid_north_deg, pixel_to_lonlat
from pipeline.synthetic.vessels import Vessels

__all__ = ["KEYPOINT_NAMES", "write_truth"]

#: Order of the wake keypoints (contract 1): wake apex at the stern, far wake end, Kelvin arm ends.
KEYPOINT_NAMES = ("hull", "wake_end", "arm_left_end", "arm_right_end")


def write_truth(path: Path, vessels: Vessels, keypoints_px: np.ndarray, transform: Affine, epsg: int, *,
                product_id: str) -> Path:
    """Write the vessels as a GeoJSON FeatureCollection and return ``path``.

    Parameters
    ----------
    path : pathlib.Path
        Output file.
    vessels : Vessels
        Placed vessels (hull centre in product pixel coordinates).
    keypoints_px : numpy.ndarray
        ``(vessels, 4, 2)`` pixel ``(x, y)`` keypoints in :data:`KEYPOINT_NAMES` order, NaN where absent.
    transform : affine.Affine
        Product transform; ``epsg`` its CRS.
    product_id : str
        Written as a top-level member so truth and product can be matched.

    Each feature is a Point at the hull centre (lon, lat) with properties ``vessel_id``,
    ``heading_deg`` (true, clockwise from north), ``heading_grid_deg``, ``grid_north_deg``,
    ``speed_kn``, ``length_m``, ``width_m``, ``has_wake``, ``under_cloud``, ``cloud_opacity``, ``cirrus_opacity``,
    ``row``, ``col`` (pixel coordinates, rasterio convention), ``<keypoint>_lonlat`` ([lon, lat]
    or null) and ``keypoints_px`` ({name: [x, y] or null}).
    """
    n = len(vessels)
    lon, lat = pixel_to_lonlat(transform, epsg, vessels.col, vessels.row)
    flat = keypoints_px.reshape(-1, 2)
    kp_lon, kp_lat = pixel_to_lonlat(transform, epsg, flat[:, 0], flat[:, 1])
    kp_lon = np.asarray(kp_lon).reshape(n, 4)
    kp_lat = np.asarray(kp_lat).reshape(n, 4)
    x, y = transform @ (vessels.col, vessels.row)
    convergence = grid_north_deg(epsg, np.asarray(x), np.asarray(y)) if n else np.empty(0)
    features = []
    for i in range(n):
        properties = {
            "vessel_id": i,
            "heading_deg": round(float(vessels.heading_deg[i]), 4),
            "heading_grid_deg": round(float(vessels.heading_grid_deg[i]), 4),
            "grid_north_deg": round(float(convergence[i]), 6),
            "speed_kn": round(float(vessels.speed_kn[i]), 3),
            "length_m": round(float(vessels.length_m[i]), 2),
            "width_m": round(float(vessels.width_m[i]), 2),
            "has_wake": bool(vessels.has_wake[i]),
            "under_cloud": bool(vessels.under_cloud[i]),
            "cloud_opacity": round(float(vessels.cloud_opacity[i]), 4),
            "cirrus_opacity": round(float(vessels.cirrus_opacity[i]), 4),
            "row": round(float(vessels.row[i]), 4),
            "col": round(float(vessels.col[i]), 4),
        }
        pixels = {}
        for k, name in enumerate(KEYPOINT_NAMES):
            finite = math.isfinite(keypoints_px[i, k, 0]) and math.isfinite(keypoints_px[i, k, 1])
            properties[f"{name}_lonlat"] = [round(float(kp_lon[i, k]), 8), round(float(kp_lat[i, k]), 8)] if finite else None
            pixels[name] = [round(float(keypoints_px[i, k, 0]), 4), round(float(keypoints_px[i, k, 1]), 4)] if finite else None
        properties["keypoints_px"] = pixels
        features.append({
            "type": "Feature",
            "id": i,
            "geometry": {"type": "Point", "coordinates": [round(float(lon[i]), 8), round(float(lat[i]), 8)]},
            "properties": properties,
        })
    collection = {"type": "FeatureCollection", "product_id": product_id, "features": features}
    path.write_text(json.dumps(collection, indent=1))
    return path

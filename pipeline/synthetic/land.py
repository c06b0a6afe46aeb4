"""Land of a tile from the Natural Earth land polygons, in the tile's UTM CRS.

The polygons are clipped to the tile (plus a margin) in longitude/latitude, reprojected with
pyproj and cached per tile as WKB under ``var/synthetic/`` so that small products stay fast.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio import features
from shapely.geometry import box, shape

from pipeline.synthetic.tiles import TILE_SIZE_M, MgrsTile, tile_bounds_lonlat
from vesselwatch.errors import InputError

__all__ = ["land_in_tile", "rasterize_land"]

log = logging.getLogger(__name__)

#: Land farther than this outside the tile is dropped, metres (covers vessel placement margins).
MARGIN_M = 6000.0


def land_in_tile(tile: MgrsTile, land_path: Path, cache_dir: Path | None = None) -> shapely.Geometry:
    """Land polygons over ``tile`` (plus :data:`MARGIN_M`) in the tile's UTM CRS, metres.

    Parameters
    ----------
    tile : MgrsTile
        The tile.
    land_path : pathlib.Path
        GeoJSON (optionally gzip) of land polygons in longitude/latitude.
    cache_dir : pathlib.Path or None
        Where to keep the per-tile result as WKB; ``None`` disables the cache.
    """
    cache_file = None
    if cache_dir is not None:
        key = hashlib.sha1(f"{Path(land_path).resolve()}|{_stamp(land_path)}|{tile}|{MARGIN_M}".encode()).hexdigest()[:12]
        cache_file = Path(cache_dir) / f"land_{tile.tile_id}_{key}.wkb"
        if cache_file.is_file():
            return shapely.from_wkb(cache_file.read_bytes())
    geometry = _project_land(tile, land_path)
    if cache_file is not None:
        _write_atomically(cache_file, shapely.to_wkb(geometry))
    return geometry


def rasterize_land(land: shapely.Geometry, transform: Affine, shape_rc: tuple[int, int]) -> np.ndarray:
    """Boolean land mask ``(rows, cols)`` of the pixels whose centre lies on land."""
    if land.is_empty:
        return np.zeros(shape_rc, dtype=bool)
    height, width = shape_rc
    west, north = transform @ (0, 0)
    east, south = transform @ (width, height)
    window_box = box(min(west, east), min(south, north), max(west, east), max(south, north))
    clipped = shapely.clip_by_rect(land, *window_box.bounds)
    if clipped.is_empty:
        return np.zeros(shape_rc, dtype=bool)
    return features.rasterize([(clipped, 1)], out_shape=shape_rc, transform=transform, fill=0, dtype="uint8").astype(bool)


def _project_land(tile: MgrsTile, land_path: Path) -> shapely.Geometry:
    """Read, clip and reproject the land polygons for one tile."""
    path = Path(land_path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as stream:
            collection = json.load(stream)
        polygons = [shape(f["geometry"]) for f in collection["features"] if f.get("geometry")]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"{path}: cannot read land polygons ({error})") from error
    west, south, east, north = tile_bounds_lonlat(tile, margin_m=MARGIN_M)
    lonlat_box = (west - 0.05, south - 0.05, east + 0.05, north + 0.05)
    parts = [shapely.clip_by_rect(p, *lonlat_box) for p in polygons]
    parts = [p for p in parts if not p.is_empty]
    if not parts:
        return shapely.MultiPolygon()
    to_utm = Transformer.from_crs(4326, tile.epsg, always_xy=True)

    def project(coords: np.ndarray) -> np.ndarray:
        x, y = to_utm.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    projected = shapely.make_valid(shapely.transform(shapely.union_all(parts), project))
    utm_box = (
        tile.ulx_m - MARGIN_M, tile.uly_m - TILE_SIZE_M - MARGIN_M,
        tile.ulx_m + TILE_SIZE_M + MARGIN_M, tile.uly_m + MARGIN_M,
    )
    return shapely.clip_by_rect(projected, *utm_box)


def _stamp(path: Path) -> str:
    """Size and modification time of a file, so the cache follows edits of the land data."""
    try:
        status = Path(path).stat()
    except OSError as error:
        raise InputError(f"{path}: land polygons not found ({error.strerror})") from error
    return f"{status.st_size}-{int(status.st_mtime)}"


def _write_atomically(target: Path, payload: bytes) -> None:
    """Write ``payload`` to ``target`` through a temporary file; a failure only skips the cache."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
        os.replace(temporary, target)
    except OSError as error:
        log.warning("land cache %s not written: %s", target, error)

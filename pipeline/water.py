"""Where the sea is: a water mask on the scene grid, block by block.

With a scene classification layer (Level-2A) water is SCL class 6. Without one, water is decided
by NDWI = (B03 − B08) / (B03 + B08) near the coast and by Natural Earth land polygons elsewhere.
The Natural Earth coast is coarse (hundreds of metres), so the polygons only decide far from it:

* deeper than ``coast_buffer_m`` inside a land polygon: land;
* farther than ``coast_buffer_m`` outside every land polygon: water (even under cloud or glint);
* in the coastal belt between: water where NDWI > ``ndwi_threshold``.

In every case small non-water blobs enclosed by water (a vessel's own pixels, whose NDWI is
negative because hulls are bright in NIR) are filled, so that vessels lie inside the mask.

:func:`chip_land` applies the same NDWI rule to stacks of vessel chips, so the heading step can
tell a wake from a quay or a pier the vessel is moored against.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyogrio
import shapely
from affine import Affine
from pyproj import Geod, Transformer
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.warp import transform_bounds
from scipy import ndimage

from pipeline.ingest import SceneMetadata
from vesselwatch.errors import ProductError

log = logging.getLogger(__name__)

#: ESA Scene Classification value for water.
SCL_WATER = 6
#: ESA Scene Classification values for cloud: medium and high probability.
SCL_CLOUD = (8, 9)
#: ESA Scene Classification value for thin cirrus.
SCL_CIRRUS = (10,)
#: ESA Scene Classification values that hide the surface class: cloud shadow, thin cirrus.
SCL_VEILED = (3, 10)

_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class LandPolygons:
    """Land polygons projected into a scene's CRS, split by distance from the coarse coast.

    Attributes
    ----------
    core : shapely geometry or None
        Land shrunk by the coastal buffer: certainly land.
    near : shapely geometry or None
        Land grown by the coastal buffer: outside it is certainly sea.
    """

    core: shapely.Geometry | None
    near: shapely.Geometry | None


def map_units_per_metre(crs: CRS, transform: Affine, width: int, height: int) -> float:
    """How many CRS units one ground metre spans (east-west) at the centre of a grid.

    1 for UTM (to within the scale factor), about ``1 / cos(lat)`` for Web Mercator.
    """
    cx, cy = transform @ (width / 2.0, height / 2.0)
    step = abs(transform.a) * 10.0
    to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform(np.array([cx - step / 2, cx + step / 2]), np.array([cy, cy]))
    _, _, metres = _GEOD.inv(lon[0], lat[0], lon[1], lat[1])
    return float(step / metres) if metres > 0 else 1.0


def load_land(land_path: str | Path, metadata: SceneMetadata, *, coast_buffer_m: float = 1000.0) -> LandPolygons:
    """Land polygons around a scene, reprojected to its CRS and buffered in and out by ``coast_buffer_m``.

    Parameters
    ----------
    land_path : path
        GeoJSON (optionally ``.gz``) or any vector file of land polygons in lon/lat.
    metadata : SceneMetadata
        The scene grid (CRS, transform, size).
    coast_buffer_m : float
        Half-width of the coastal belt where NDWI decides, metres.
    """
    land_path = Path(land_path)
    if not land_path.exists():
        raise ProductError(land_path, "land polygon file does not exist")
    bounds = _grid_bounds(metadata)
    units_per_m = map_units_per_metre(metadata.crs, metadata.transform, metadata.width, metadata.height)
    buffer_units = coast_buffer_m * units_per_m
    grown = (bounds[0] - 2 * buffer_units, bounds[1] - 2 * buffer_units,
             bounds[2] + 2 * buffer_units, bounds[3] + 2 * buffer_units)
    lon0, lat0, lon1, lat1 = transform_bounds(metadata.crs, "EPSG:4326", *grown, densify_pts=21)
    source = f"/vsigzip/{land_path}" if land_path.suffix == ".gz" else str(land_path)
    try:
        frame = pyogrio.read_dataframe(source, bbox=(lon0, lat0, lon1, lat1), columns=[])
    except Exception as error:  # pyogrio raises several DataSource/Field error types
        raise ProductError(land_path, f"cannot read land polygons: {error}") from error
    if frame.empty:
        return LandPolygons(core=None, near=None)
    land = shapely.clip_by_rect(shapely.union_all(shapely.make_valid(frame.geometry.values)), lon0, lat0, lon1, lat1)
    if land.is_empty:
        return LandPolygons(core=None, near=None)
    to_scene = Transformer.from_crs("EPSG:4326", metadata.crs, always_xy=True)
    land = shapely.transform(land, lambda xy: np.column_stack(to_scene.transform(xy[:, 0], xy[:, 1])))
    land = shapely.clip_by_rect(shapely.make_valid(land), *grown)
    core = land.buffer(-buffer_units, quad_segs=4)
    near = land.buffer(buffer_units, quad_segs=4)
    return LandPolygons(core=None if core.is_empty else core, near=None if near.is_empty else near)


def _grid_bounds(metadata: SceneMetadata) -> tuple[float, float, float, float]:
    t = metadata.transform
    x0, y0 = t @ (0, 0)
    x1, y1 = t @ (metadata.width, metadata.height)
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def rasterize_land(land: LandPolygons, transform: Affine, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Boolean rasters (rows, cols) of certain land and of the land-plus-coastal-belt on a grid."""
    def burn(geometry: shapely.Geometry | None) -> np.ndarray:
        if geometry is None:
            return np.zeros(shape, bool)
        return rasterize([geometry], out_shape=shape, transform=transform, fill=0, default_value=1,
                         dtype="uint8").astype(bool)

    return burn(land.core), burn(land.near)


def water_from_ndwi(green: np.ndarray, nir: np.ndarray, land_core: np.ndarray, land_near: np.ndarray,
                    *, ndwi_threshold: float = 0.0) -> np.ndarray:
    """Water where NDWI decides in the coastal belt, the polygons elsewhere; NaN pixels are not water.

    Parameters
    ----------
    green, nir : numpy.ndarray
        B03 and B08 reflectance, (rows, cols).
    land_core, land_near : numpy.ndarray of bool
        From :func:`rasterize_land`.
    """
    water = np.where(land_near, ndwi(green, nir) > ndwi_threshold, True)
    water &= ~land_core
    water &= np.isfinite(green) & np.isfinite(nir)
    return water


def ndwi(green: np.ndarray, nir: np.ndarray) -> np.ndarray:
    """NDWI = (B03 − B08) / (B03 + B08) in the bands' precision; NaN where both are 0 (no data)."""
    green, nir = np.asarray(green), np.asarray(nir)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (green - nir) / (green + nir)


def fill_small_holes(water: np.ndarray, max_hole_px: int, open_edges: tuple[bool, bool, bool, bool]) -> np.ndarray:
    """Mark as water the non-water blobs of at most ``max_hole_px`` pixels that water encloses.

    Parameters
    ----------
    water : numpy.ndarray of bool
        (rows, cols), or a stack (N, rows, cols) whose planes are filled each on its own (a
        blob never continues from one plane into the next).
    max_hole_px : int
        Largest blob filled (vessels, buoys, platforms), pixels.
    open_edges : (top, bottom, left, right) of bool
        Edges of this block that are interior to the scene: a blob touching one may continue
        outside the block, so it is not filled. Blobs at the scene's own edges are filled.
    """
    if water.ndim not in (2, 3):
        raise ValueError(f"water: expected (rows, cols) or (N, rows, cols), got shape {water.shape}")
    structure = ndimage.generate_binary_structure(2, 1)
    if water.ndim == 3:
        structure = np.stack([np.zeros_like(structure), structure, np.zeros_like(structure)])
    labels, count = ndimage.label(~water, structure=structure)
    if count == 0:
        return water
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    fill = sizes <= max_hole_px
    fill[0] = False
    top, bottom, left, right = open_edges
    edges = (labels[..., 0, :], labels[..., -1, :], labels[..., :, 0], labels[..., :, -1])
    for is_open, edge in zip((top, bottom, left, right), edges):
        if is_open:
            fill[edge] = False
    return water | fill[labels]


def drop_small_water(water: np.ndarray, min_water_px: int, open_edges: tuple[bool, bool, bool, bool]) -> np.ndarray:
    """Remove water bodies smaller than ``min_water_px`` (ponds, dark shadows on land).

    Bodies touching an open (scene-interior) block edge are kept: they may be larger outside.
    """
    labels, count = ndimage.label(water)
    if count == 0:
        return water
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    drop = sizes < min_water_px
    drop[0] = False
    top, bottom, left, right = open_edges
    for is_open, edge in ((top, labels[0]), (bottom, labels[-1]), (left, labels[:, 0]), (right, labels[:, -1])):
        if is_open:
            drop[edge] = False
    return water & ~drop[labels]


def chip_land(green: np.ndarray, nir: np.ndarray, *, ndwi_threshold: float = 0.0, max_hole_px: int = 900) -> np.ndarray:
    """Land (and piers, quays, moored hulls against them) in a stack of chips, from NDWI alone.

    A pixel is land where NDWI = (B03 − B08) / (B03 + B08) is at most ``ndwi_threshold``, except
    inside blobs of at most ``max_hole_px`` pixels (a free vessel, its foam, a buoy), which are
    water as in :func:`fill_small_holes`; blobs at the chip's edge count the same (a chip edge is
    not the land's edge, but a small blob there cannot be told apart). Pixels where NDWI is
    undefined (both bands 0: no data) are not land. Connectivity stays inside each chip.

    Parameters
    ----------
    green, nir : numpy.ndarray
        B03 and B08 reflectance (any common linear scale), ``(N, H, W)`` or ``(H, W)``.
    ndwi_threshold : float
        NDWI at or below which a pixel is not water (the detector's ``ndwi_threshold``).
    max_hole_px : int
        Largest non-water blob still counted as water, pixels.

    Returns
    -------
    numpy.ndarray of bool
        Same shape as ``green``.
    """
    if np.shape(green) != np.shape(nir) or np.ndim(green) not in (2, 3):
        raise ValueError(f"green, nir: expected equal (N, H, W) or (H, W) shapes, got {np.shape(green)} and {np.shape(nir)}")
    dry = ndwi(green, nir) <= ndwi_threshold  # NaN compares False: no data is not land
    return ~fill_small_holes(~dry, max_hole_px, (False, False, False, False))

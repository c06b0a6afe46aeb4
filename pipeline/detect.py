"""Find vessels: bright targets over water, in units of the local sea's own statistics (CFAR).

The scene is processed in overlapping blocks so a full 10980 x 10980 tile never sits in memory
at once. In each block:

1. **Water**: SCL class 6 when present, else NDWI in the coastal belt and land polygons elsewhere
   (:mod:`pipeline.water`); small enclosed non-water blobs (the vessels themselves) are filled.
2. **Cloud**: SCL cloud classes, else a smooth area bright in blue and SWIR (B02 and B11 averaged
   over ``cloud_box_px``). Clouds are bright in every band and large; hulls are small.
3. **Background**: local mean and standard deviation of NIR (B08, where the sea is darkest and
   hulls brightest) over water, in a ``background_box_px`` box, computed with separable box
   filters of the masked sums (Σw, Σwx, Σwx²). Twice: the second pass leaves out the bright
   outliers of the first, so large hulls do not inflate their own background.
4. **Test**: ``z = (nir − mean) / sigma``. Pixels with ``z > z_low`` form candidates (8-connected
   components); a component is kept when its peak reaches ``z_peak`` and its peak contrast over
   the sea ``(peak − mean) / mean`` reaches ``min_contrast``. Units of sigma and ratios to the
   mean make the test blind to the radiometric scale.
5. **Shape**: excess-weighted centroid and second moments give the position, length, width and
   orientation; components larger than a ship or mostly cloud are dropped.

Only detections whose centroid lies in a block's core (non-overlap) part are kept, so each vessel
is reported once.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from pyproj import Geod, Transformer
from rasterio.windows import Window
from rasterio.windows import transform as window_transform
from scipy import ndimage

from pipeline.ingest import Scene, SceneMetadata, iter_windows
from pipeline.water import (
    SCL_CLOUD,
    SCL_WATER,
    LandPolygons,
    fill_small_holes,
    load_land,
    map_units_per_metre,
    rasterize_land,
    water_from_ndwi,
)
from vesselwatch.errors import ProductError
from vesselwatch.settings import PROJECT_DIR

log = logging.getLogger(__name__)

#: The bundled Natural Earth 1:10m land polygons.
DEFAULT_LAND_PATH = PROJECT_DIR / "data" / "naturalearth" / "ne_10m_land.json.gz"

_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class DetectorConfig:
    """Parameters of the detector; lengths in metres are converted with the scene's pixel size.

    Attributes
    ----------
    background_box_px : int
        Side of the box over which the sea's mean and sigma are estimated, pixels.
    z_low, z_peak : float
        Candidate pixel threshold and component peak threshold, in local sigma.
    min_contrast : float
        Minimum peak excess over the local mean, as a fraction of that mean.
    sigma_floor_fraction : float
        Sigma never below this fraction of the local mean (very calm or quantised seas).
    min_area_px, max_area_px : int
        Component size limits, pixels.
    max_length_m : float
        Longest plausible vessel.
    cloud_blue, cloud_swir : float
        Reflectance above which a ``cloud_box_px`` average of B02 and of B11 means cloud.
    coast_buffer_m : float
        Half-width of the belt around the Natural Earth coast where NDWI decides water.
    ndwi_threshold : float
        NDWI above which a coastal-belt pixel is water.
    max_hole_px : int
        Largest non-water blob inside water that still counts as water (a vessel).
    block_px, overlap_px : int
        Processing block size and overlap.
    """

    background_box_px: int = 41
    z_low: float = 4.0
    z_peak: float = 8.0
    min_contrast: float = 0.5
    sigma_floor_fraction: float = 0.01
    min_area_px: int = 1
    max_area_px: int = 900
    max_length_m: float = 500.0
    cloud_blue: float = 0.22
    cloud_swir: float = 0.12
    cloud_box_px: int = 15
    coast_buffer_m: float = 1000.0
    ndwi_threshold: float = 0.0
    max_hole_px: int = 900
    block_px: int = 2048
    overlap_px: int = 64


@dataclass
class Detections:
    """Detected vessels as equal-length arrays (one entry per vessel).

    Attributes
    ----------
    row, col : numpy.ndarray
        Centroid in scene pixel coordinates (rasterio convention: pixel (r, c) spans
        [c, c+1) x [r, r+1), so its centre is (c + 0.5, r + 0.5)).
    lon, lat : numpy.ndarray
        Centroid, WGS84 degrees.
    x, y : numpy.ndarray
        Centroid in the scene CRS.
    length_m, width_m : numpy.ndarray
        Extent along and across the long axis, metres (second moments of the component).
    orientation_deg : numpy.ndarray
        Grid bearing of the long axis, degrees in [0, 180).
    score : numpy.ndarray
        Confidence in (0, 1): ``1 - exp(-peak_sigma / 10)``.
    peak_sigma : numpy.ndarray
        Peak excess over the local sea in units of its sigma.
    area_px : numpy.ndarray
        Pixels in the component (int).
    """

    row: np.ndarray
    col: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    x: np.ndarray
    y: np.ndarray
    length_m: np.ndarray
    width_m: np.ndarray
    orientation_deg: np.ndarray
    score: np.ndarray
    peak_sigma: np.ndarray
    area_px: np.ndarray

    def __len__(self) -> int:
        return len(self.row)

    @classmethod
    def empty(cls) -> Detections:
        """No detections."""
        values = {f.name: np.zeros(0, dtype=np.int64 if f.name == "area_px" else np.float64) for f in fields(cls)}
        return cls(**values)

    def select(self, index: np.ndarray) -> Detections:
        """A subset (boolean mask or integer index)."""
        return Detections(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @classmethod
    def concatenate(cls, parts: list[Detections]) -> Detections:
        """Join several sets (for example one per block)."""
        if not parts:
            return cls.empty()
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})


@dataclass
class _Components:
    """Per-component measurements inside one block (block pixel coordinates)."""

    row: np.ndarray
    col: np.ndarray
    var_major: np.ndarray
    var_minor: np.ndarray
    angle_rad: np.ndarray  # long axis angle from +col toward +row
    peak_sigma: np.ndarray
    area_px: np.ndarray


def detect_vessels(scene: Scene, *, land_path: str | Path | None = None,
                   config: DetectorConfig = DetectorConfig()) -> Detections:
    """Detect vessels in an open scene.

    Parameters
    ----------
    scene : Scene
        From :func:`pipeline.ingest.open_scene` (bands B03, B08 needed; B02, B11, SCL used if present).
    land_path : path, optional
        Land polygons in lon/lat for scenes without SCL; default the bundled Natural Earth 1:10m.
    config : DetectorConfig
        Detector parameters.

    Returns
    -------
    Detections

    Raises
    ------
    ProductError
        The scene has no water at all.
    """
    metadata = scene.metadata
    if metadata is None:
        raise ProductError("<scene>", "scene is not open")
    land = None
    if not scene.has_scl:
        land = load_land(land_path or DEFAULT_LAND_PATH, metadata, coast_buffer_m=config.coast_buffer_m)
    units_per_m = map_units_per_metre(metadata.crs, metadata.transform, metadata.width, metadata.height)
    pixel_m = float(np.sqrt(abs(metadata.transform.a * metadata.transform.e))) / units_per_m

    parts: list[Detections] = []
    water_px = 0
    for read_window, core in iter_windows(metadata.height, metadata.width, config.block_px, config.overlap_px):
        found, n_water = _detect_block(scene, read_window, core, land, config, metadata)
        water_px += n_water
        if len(found[0]):
            parts.append(_to_detections(found, metadata, pixel_m, config))
    if water_px == 0:
        raise ProductError(metadata.path, f"product {metadata.product_id} has no water to search for vessels")
    detections = Detections.concatenate(parts)
    keep = detections.length_m <= config.max_length_m
    detections = detections.select(keep)
    log.info("%s: %d vessel detections", metadata.product_id, len(detections))
    return detections


def _detect_block(scene: Scene, read_window: Window, core: Window, land: LandPolygons | None,
                  config: DetectorConfig, metadata: SceneMetadata) -> tuple[tuple[np.ndarray, ...], int]:
    """Detections of one block: (row, col, var_major, var_minor, angle, peak, area) in scene pixels."""
    row0, col0 = int(read_window.row_off), int(read_window.col_off)
    shape = (int(read_window.height), int(read_window.width))
    nir = scene.read("B08", read_window)
    scl = scene.read_scl(read_window)
    blue = scene.read("B02", read_window) if "B02" in scene.band_names else None
    swir = scene.read("B11", read_window) if "B11" in scene.band_names else None

    if scl is not None:
        water = scl == SCL_WATER
        cloud = np.isin(scl, SCL_CLOUD)
    else:
        green = scene.read("B03", read_window)
        land_core, land_near = rasterize_land(land, window_transform(read_window, metadata.transform), shape)
        water = water_from_ndwi(green, nir, land_core, land_near, ndwi_threshold=config.ndwi_threshold)
        del green, land_core, land_near
        cloud = _bright_cloud(blue, swir, config)
    open_edges = (row0 > 0, row0 + shape[0] < metadata.height, col0 > 0, col0 + shape[1] < metadata.width)
    water = fill_small_holes(water, config.max_hole_px, open_edges)
    water &= np.isfinite(nir)
    n_water_core = int(water[int(core.row_off) - row0:int(core.row_off) - row0 + int(core.height),
                             int(core.col_off) - col0:int(core.col_off) - col0 + int(core.width)].sum())
    sea = water & ~cloud
    if not sea.any():
        return tuple(np.zeros(0) for _ in range(7)), n_water_core

    components = _cfar_components(np.where(sea, nir, 0.0).astype(np.float32), sea, cloud, config)
    # Keep what belongs to this block's core.
    row = components.row + row0
    col = components.col + col0
    in_core = ((row >= core.row_off) & (row < core.row_off + core.height)
               & (col >= core.col_off) & (col < core.col_off + core.width))
    out = (row, col, components.var_major, components.var_minor, components.angle_rad,
           components.peak_sigma, components.area_px)
    return tuple(a[in_core] for a in out), n_water_core


def _bright_cloud(blue: np.ndarray | None, swir: np.ndarray | None, config: DetectorConfig) -> np.ndarray:
    """Large areas bright in both blue and SWIR: clouds (hulls are too small to fill the box)."""
    if blue is None:
        return np.zeros(swir.shape if swir is not None else (0, 0), bool)
    box = config.cloud_box_px
    cloud = ndimage.uniform_filter(np.nan_to_num(blue), box) > config.cloud_blue
    if swir is not None:
        cloud &= ndimage.uniform_filter(np.nan_to_num(swir), box) > config.cloud_swir
    return cloud


def _masked_stats(values: np.ndarray, weights: np.ndarray, box: int) -> tuple[np.ndarray, np.ndarray]:
    """Local mean and standard deviation of ``values`` where ``weights`` is 1, over a box."""
    s0 = ndimage.uniform_filter(weights, box, mode="constant")
    wx = values * weights
    s1 = ndimage.uniform_filter(wx, box, mode="constant")
    wx *= values
    s2 = ndimage.uniform_filter(wx, box, mode="constant")
    del wx
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / s0
        s2 /= s0
        s2 -= mean * mean
    np.maximum(s2, 0.0, out=s2)
    return mean, np.sqrt(s2, out=s2)


def _cfar_components(nir: np.ndarray, sea: np.ndarray, cloud: np.ndarray, config: DetectorConfig) -> _Components:
    """Bright components of ``nir`` over ``sea`` and their weighted moments (block pixels)."""
    box = config.background_box_px
    weights = sea.astype(np.float32)
    mean, sigma = _masked_stats(nir, weights, box)
    floor = np.float32(config.sigma_floor_fraction) * np.abs(mean)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (nir - mean) / np.maximum(sigma, floor)
    # Second pass without the bright outliers (targets) so a hull does not raise its own sigma.
    outliers = ndimage.binary_dilation(sea & (z > config.z_low * 0.75), iterations=2)
    weights[outliers] = 0.0
    mean2, sigma2 = _masked_stats(nir, weights, box)
    fallback = ~np.isfinite(mean2)
    mean2[fallback] = mean[fallback]
    sigma2[fallback] = sigma[fallback]
    del mean, sigma, weights
    sigma2 = np.maximum(sigma2, np.float32(config.sigma_floor_fraction) * np.abs(mean2))
    excess = nir - mean2
    with np.errstate(invalid="ignore", divide="ignore"):
        z = excess / sigma2
    candidates = sea & (z > config.z_low)
    labels, count = ndimage.label(candidates, structure=np.ones((3, 3), bool))
    if count == 0:
        return _Components(*(np.zeros(0) for _ in range(7)))

    idx = np.flatnonzero(labels)
    lab = labels.ravel()[idx]
    rr, cc = np.divmod(idx, labels.shape[1])
    zz = z.ravel()[idx]
    ex = np.maximum(excess.ravel()[idx], 0.0).astype(np.float64)
    n = count + 1
    area = np.bincount(lab, minlength=n)
    peak = np.full(n, -np.inf)
    np.maximum.at(peak, lab, zz)
    peak_excess = np.zeros(n)
    np.maximum.at(peak_excess, lab, ex)
    mean_at = mean2.ravel()[idx]
    peak_mean = np.zeros(n)
    peak_mean[lab] = 0.0
    # Background mean at each component (average over its pixels).
    peak_mean = np.bincount(lab, weights=mean_at, minlength=n) / np.maximum(area, 1)
    cloud_fraction = np.bincount(lab, weights=cloud.ravel()[idx], minlength=n) / np.maximum(area, 1)

    # Weights: excess above 30 % of the component's peak, so faint wake foam does not pull the centre.
    w = np.maximum(ex - 0.3 * peak_excess[lab], 0.0)
    w[w == 0] = 1e-12
    sw = np.bincount(lab, weights=w, minlength=n)
    r_mean = np.bincount(lab, weights=w * rr, minlength=n) / sw
    c_mean = np.bincount(lab, weights=w * cc, minlength=n) / sw
    dr = rr - r_mean[lab]
    dc = cc - c_mean[lab]
    crr = np.bincount(lab, weights=w * dr * dr, minlength=n) / sw
    ccc = np.bincount(lab, weights=w * dc * dc, minlength=n) / sw
    crc = np.bincount(lab, weights=w * dr * dc, minlength=n) / sw
    half_trace = 0.5 * (crr + ccc)
    root = np.sqrt(np.maximum(0.25 * (ccc - crr) ** 2 + crc**2, 0.0))
    var_major = half_trace + root
    var_minor = np.maximum(half_trace - root, 0.0)
    angle = 0.5 * np.arctan2(2.0 * crc, ccc - crr)

    with np.errstate(invalid="ignore", divide="ignore"):
        contrast = peak_excess / np.abs(peak_mean)
    keep = (
        (peak >= config.z_peak)
        & (contrast >= config.min_contrast)
        & (area >= config.min_area_px)
        & (area <= config.max_area_px)
        & (cloud_fraction < 0.5)
    )
    keep[0] = False
    sel = np.flatnonzero(keep)
    return _Components(
        row=r_mean[sel] + 0.5, col=c_mean[sel] + 0.5, var_major=var_major[sel], var_minor=var_minor[sel],
        angle_rad=angle[sel], peak_sigma=peak[sel], area_px=area[sel],
    )


def _to_detections(found: tuple[np.ndarray, ...], metadata: SceneMetadata, pixel_m: float,
                   config: DetectorConfig) -> Detections:
    row, col, var_major, var_minor, angle, peak, area = found
    x, y = metadata.transform * (col, row)
    x, y = np.asarray(x, float), np.asarray(y, float)
    to_lonlat = Transformer.from_crs(metadata.crs, "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform(x, y)
    # A run of n fully covered pixels has centre variance (n^2 - 1) / 12.
    length_m = np.sqrt(12.0 * var_major + 1.0) * pixel_m
    width_m = np.sqrt(12.0 * var_minor + 1.0) * pixel_m
    # Long axis (cos a, sin a) in (col, row); grid bearing clockwise from up (-row).
    orientation = np.degrees(np.arctan2(np.cos(angle), -np.sin(angle))) % 180.0
    return Detections(
        row=row.astype(float), col=col.astype(float), lon=np.asarray(lon, float), lat=np.asarray(lat, float),
        x=x, y=y, length_m=length_m, width_m=width_m, orientation_deg=orientation,
        score=1.0 - np.exp(-np.asarray(peak, float) / 10.0), peak_sigma=np.asarray(peak, float),
        area_px=np.asarray(area, np.int64),
    )

"""Find vessels: bright targets over water, in units of the local sea's own statistics (CFAR).

The scene is processed in overlapping blocks so a full 10980 x 10980 tile never sits in memory
at once (about 0.8 GB peak for a tile). In each block:

1. **Water** (:mod:`pipeline.water`): SCL class 6 when present (pixels SCL calls cloud shadow
   or thin cirrus are water when their NDWI says so), else NDWI in the belt around the Natural
   Earth coast and the land polygons elsewhere. Small non-water blobs enclosed by water (the
   vessels themselves) are filled; small water bodies (ponds, shadows on land) are dropped.
   SCL cloud (classes 8, 9) is not searched.
2. **Background**: the sea's level and sigma of NIR (B08, where the sea is darkest and hulls
   brightest) per 8 x 8 pixel cell (median, and 84th percentile minus median), median-filtered
   over 5 x 5 cells: robust to the hulls themselves (:func:`robust_background`). Sigma is
   floored at a fraction of the block's MAD sigma and of the local level.
3. **Test**: ``z = (nir − level) / sigma``. Pixels with ``z > z_low`` form 8-connected
   components; a component is kept when its peak reaches ``z_peak``, its peak excess reaches
   ``min_contrast`` times the level and ``min_excess`` in reflectance, it has at most
   ``max_area_px`` pixels and does not touch land. Units of sigma and ratios to the level make
   the test blind to the radiometric scale (``min_excess`` only trims clutter of clipped, very
   dark seas).
4. **Cloud**: clouds are white (same excess in blue as in NIR); steel hulls are brightest in NIR.
   A component whose blue (B02) excess exceeds ``max_blue_ratio`` times its NIR excess, on its
   brightest pixels, is dropped.
5. **Shape**: centroid and second moments weighted by the excess above 30 % of the peak (so
   faint wake foam does not pull the centre) give position, length, width and orientation.

Only detections whose centroid lies in a block's core (non-overlap) part are kept, so each vessel
is reported once.

Known limits: vessels moored against a quay are dropped with the shore (component touching
land), and white hulls fail the cloud test; both cost recall in ports (see ``docs/detection.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from pyproj import Transformer
from rasterio.windows import Window
from rasterio.windows import transform as window_transform
from scipy import ndimage

from pipeline.ingest import Scene, SceneMetadata, iter_windows
from pipeline.water import (
    SCL_CLOUD,
    SCL_VEILED,
    SCL_WATER,
    LandPolygons,
    drop_small_water,
    fill_small_holes,
    load_land,
    map_units_per_metre,
    ndwi,
    rasterize_land,
    water_from_ndwi,
)
from vesselwatch.errors import ProductError
from vesselwatch.settings import PROJECT_DIR

log = logging.getLogger(__name__)

#: Length of a bow-tapered hull over the length of a rectangle with the same second moment.
HULL_TAPER = 1.15

#: The bundled Natural Earth 1:10m land polygons.
DEFAULT_LAND_PATH = PROJECT_DIR / "data" / "naturalearth" / "ne_10m_land.json.gz"



@dataclass(frozen=True)
class DetectorConfig:
    """Parameters of the detector; lengths in metres are converted with the scene's pixel size.

    Attributes
    ----------
    cell_px, background_cells : int
        Background statistics are taken per ``cell_px`` cell and median-filtered over
        ``background_cells`` cells (default 8 px x 5 = a 400 m neighbourhood).
    z_low, z_peak : float
        Candidate pixel threshold and component peak threshold, in local sigma.
    min_contrast : float
        Minimum peak excess over the local mean, as a fraction of that mean.
    min_excess : float
        Minimum peak excess over the sea in reflectance (after the scene's scaling, assumed or
        known): removes faint clutter where the sea is so dark and clipped that sigma is ~0.
    max_blue_ratio : float
        A component whose blue (B02) excess over the sea exceeds ``max_blue_ratio`` of its NIR
        excess (on its brightest pixels) is white like a cloud and dropped; ``inf`` disables
        the test. Steel hulls are NIR-bright.
    min_water_px : int
        Water bodies smaller than this (ponds, shadows on land) are not searched, pixels.
    sigma_floor_fraction : float
        Sigma never below this fraction of the local mean (very calm or quantised seas).
    min_area_px, max_area_px : int
        Component size limits, pixels.
    max_length_m : float
        Longest plausible vessel.
    coast_buffer_m : float
        Half-width of the belt around the Natural Earth coast where NDWI decides water.
    ndwi_threshold : float
        NDWI above which a coastal-belt pixel is water.
    max_hole_px : int
        Largest non-water blob inside water that still counts as water (a vessel).
    block_sigma_fraction : float
        Sigma never below this fraction of the block's robust (MAD) sigma of the sea, so a dark
        quantised sea with a near-zero local sigma does not turn noise into targets.
    land_contact_z : float
        Peak (in sigma) a component touching land must reach; ``inf`` (default) drops them all:
        mixed shore pixels, piers and bridges are bright next to water.
    block_px, overlap_px : int
        Processing block size and overlap.
    """

    cell_px: int = 8
    background_cells: int = 5
    z_low: float = 4.0
    z_peak: float = 8.0
    min_contrast: float = 0.5
    min_excess: float = 0.015
    max_blue_ratio: float = 0.7
    min_water_px: int = 2500
    sigma_floor_fraction: float = 0.01
    min_area_px: int = 1
    max_area_px: int = 900
    max_length_m: float = 500.0
    coast_buffer_m: float = 1000.0
    ndwi_threshold: float = 0.0
    max_hole_px: int = 900
    block_px: int = 2048
    overlap_px: int = 64
    block_sigma_fraction: float = 0.5
    land_contact_z: float = np.inf


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
    blue_ratio : numpy.ndarray
        Blue (B02) excess over the sea as a fraction of the NIR excess, on the hull's pixels.
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
    blue_ratio: np.ndarray
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
    blue_ratio: np.ndarray
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
    blocks = iter_block_detections(scene, land_path=land_path, config=config, hold_blocks=False)
    detections = Detections.concatenate(list(blocks))
    log.info("%s: %d vessel detections", scene.metadata.product_id, len(detections))
    return detections


def iter_block_detections(scene: Scene, *, land_path: str | Path | None = None,
                          config: DetectorConfig = DetectorConfig(),
                          hold_blocks: bool = True) -> Iterator[Detections]:
    """The detections of :func:`detect_vessels`, one processing block at a time, in block order.

    With ``hold_blocks`` each block's detections are yielded while the scene holds that block's
    pixels (:meth:`pipeline.ingest.Scene.hold`), so whatever the caller reads inside the block's
    read window (the chips of the vessels just found) comes from memory. Blocks without a vessel
    are skipped. Raises :class:`ProductError` after the last block when the scene has no water.
    """
    metadata = scene.metadata
    if metadata is None:
        raise ProductError("<scene>", "scene is not open")
    land = None
    if not scene.has_scl:
        land = load_land(land_path or DEFAULT_LAND_PATH, metadata, coast_buffer_m=config.coast_buffer_m)
    units_per_m = map_units_per_metre(metadata.crs, metadata.transform, metadata.width, metadata.height)
    pixel_m = float(np.sqrt(abs(metadata.transform.a * metadata.transform.e))) / units_per_m

    water_px = 0
    for read_window, core in iter_windows(metadata.height, metadata.width, config.block_px, config.overlap_px):
        with scene.hold(read_window) if hold_blocks else nullcontext():
            found, n_water = _detect_block(scene, read_window, core, land, config, metadata)
            water_px += n_water
            if len(found[0]):
                detections = _to_detections(found, metadata, pixel_m, config)
                detections = detections.select(detections.length_m <= config.max_length_m)
                if len(detections):
                    yield detections
    if water_px == 0:
        raise ProductError(metadata.path, f"product {metadata.product_id} has no water to search for vessels")


def _detect_block(scene: Scene, read_window: Window, core: Window, land: LandPolygons | None,
                  config: DetectorConfig, metadata: SceneMetadata) -> tuple[tuple[np.ndarray, ...], int]:
    """Detections of one block: (row, col, var_major, var_minor, angle, peak, blue_ratio, area)."""
    row0, col0 = int(read_window.row_off), int(read_window.col_off)
    shape = (int(read_window.height), int(read_window.width))
    nir = scene.read("B08", read_window)
    scl = scene.read_scl(read_window)
    blue = scene.read("B02", read_window) if "B02" in scene.band_names else None

    if scl is not None:
        water = scl == SCL_WATER
        # Sea under thin cirrus or cloud shadow keeps its class only in SCL's eyes: NDWI decides.
        veiled = np.isin(scl, SCL_VEILED)
        if veiled.any():
            green = scene.read("B03", read_window)
            water |= veiled & (ndwi(green, nir) > config.ndwi_threshold)
            del green
        cloud = np.isin(scl, SCL_CLOUD)
    else:
        green = scene.read("B03", read_window)
        land_core, land_near = rasterize_land(land, window_transform(read_window, metadata.transform), shape)
        water = water_from_ndwi(green, nir, land_core, land_near, ndwi_threshold=config.ndwi_threshold)
        del green, land_core, land_near
        cloud = np.zeros(shape, bool)
    open_edges = (row0 > 0, row0 + shape[0] < metadata.height, col0 > 0, col0 + shape[1] < metadata.width)
    water = fill_small_holes(water, config.max_hole_px, open_edges)
    water = drop_small_water(water, config.min_water_px, open_edges)
    water &= np.isfinite(nir)
    n_water_core = int(water[int(core.row_off) - row0:int(core.row_off) - row0 + int(core.height),
                             int(core.col_off) - col0:int(core.col_off) - col0 + int(core.width)].sum())
    sea = water & ~cloud
    if not sea.any():
        return tuple(np.zeros(0) for _ in range(8)), n_water_core

    land = ~water & np.isfinite(nir)
    components = _cfar_components(np.where(sea, nir, 0.0).astype(np.float32), sea, land, config,
                                  blue=None if blue is None else np.where(sea, blue, 0.0).astype(np.float32))
    # Keep what belongs to this block's core.
    row = components.row + row0
    col = components.col + col0
    in_core = ((row >= core.row_off) & (row < core.row_off + core.height)
               & (col >= core.col_off) & (col < core.col_off + core.width))
    out = (row, col, components.var_major, components.var_minor, components.angle_rad,
           components.peak_sigma, components.blue_ratio, components.area_px)
    return tuple(a[in_core] for a in out), n_water_core


def _robust_sigma(values: np.ndarray, max_samples: int = 200_000) -> float:
    """1.4826 x median absolute deviation of (a regular subsample of) ``values``."""
    if values.size == 0:
        return 0.0
    sample = values[:: max(1, values.size // max_samples)]
    median = np.median(sample)
    return float(1.4826 * np.median(np.abs(sample - median)))


def robust_background(values: np.ndarray, mask: np.ndarray, *, cell_px: int = 8,
                      cells: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Local background level and sigma of ``values`` over ``mask``, robust to bright targets.

    The grid is cut into ``cell_px`` x ``cell_px`` cells; in each, the median of the masked
    pixels is the level and (84th percentile − median) the sigma (the bright side, because sea
    clutter is skewed bright and dark seas are clipped at zero), so a hull filling less than a
    sixth of a cell changes neither. Both are then median-filtered over ``cells`` x ``cells``
    cells (a hull covering whole cells is voted out) and expanded back to pixels. Cells without
    enough masked pixels take their nearest neighbour's values.

    Parameters
    ----------
    values : numpy.ndarray
        float32 (rows, cols).
    mask : numpy.ndarray of bool
        Pixels that belong to the background population (sea).

    Returns
    -------
    level, sigma : numpy.ndarray
        float32 (rows, cols).
    """
    rows, cols = values.shape
    n_r, n_c = -(-rows // cell_px), -(-cols // cell_px)
    size = cell_px * cell_px
    masked = np.where(mask, values, np.float32(np.nan)).astype(np.float32, copy=False)
    if (n_r * cell_px, n_c * cell_px) != (rows, cols):
        padded = np.full((n_r * cell_px, n_c * cell_px), np.nan, np.float32)
        padded[:rows, :cols] = masked
        masked = padded
    groups = masked.reshape(n_r, cell_px, n_c, cell_px).transpose(0, 2, 1, 3).reshape(n_r, n_c, size)
    del masked
    count = np.sum(np.isfinite(groups), axis=-1)
    enough = count >= max(4, size // 8)
    median = np.full((n_r, n_c), np.nan, np.float32)
    high = np.full((n_r, n_c), np.nan, np.float32)
    full = count == size
    if full.any():  # the common case: a partial sort is enough
        cells_full = groups[full]
        cells_full.partition([size // 2, (size * 84) // 100], axis=-1)
        median[full] = cells_full[:, size // 2]
        high[full] = cells_full[:, (size * 84) // 100]
        del cells_full
    partial = enough & ~full
    if partial.any():
        cells_partial = groups[partial]
        cells_partial.sort(axis=-1)  # NaN last
        n_valid = count[partial]
        at = np.arange(len(n_valid))
        median[partial] = cells_partial[at, n_valid // 2]
        high[partial] = cells_partial[at, (n_valid * 84) // 100]
    del groups
    level = np.where(enough, median, np.nan)
    sigma = np.where(enough, high - median, np.nan)
    if not enough.any():
        return np.full(values.shape, np.nan, np.float32), np.full(values.shape, np.nan, np.float32)
    if not enough.all():
        nearest = ndimage.distance_transform_edt(~enough, return_distances=False, return_indices=True)
        level = level[nearest[0], nearest[1]]
        sigma = sigma[nearest[0], nearest[1]]
    level = ndimage.median_filter(level, size=cells, mode="nearest")
    sigma = ndimage.median_filter(sigma, size=cells, mode="nearest")
    level = np.repeat(np.repeat(level, cell_px, axis=0), cell_px, axis=1)[:rows, :cols]
    sigma = np.repeat(np.repeat(sigma, cell_px, axis=0), cell_px, axis=1)[:rows, :cols]
    return level.astype(np.float32), sigma.astype(np.float32)


def _cfar_components(nir: np.ndarray, sea: np.ndarray, land: np.ndarray,
                     config: DetectorConfig, *, blue: np.ndarray | None = None) -> _Components:
    """Bright components of ``nir`` over ``sea`` and their weighted moments (block pixels)."""
    level, sigma = robust_background(nir, sea, cell_px=config.cell_px, cells=config.background_cells)
    block_sigma = np.float32(config.block_sigma_fraction * _robust_sigma(nir[sea]))
    sigma = np.maximum(sigma, np.maximum(np.float32(config.sigma_floor_fraction) * np.abs(level), block_sigma))
    excess = nir - level
    with np.errstate(invalid="ignore", divide="ignore"):
        z = excess / sigma
    candidates = sea & (z > config.z_low)
    labels, count = ndimage.label(candidates, structure=np.ones((3, 3), bool))
    if count == 0:
        return _Components(*(np.zeros(0) for _ in range(8)))

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
    # The sea's level under each component (average over its pixels).
    level_at = np.bincount(lab, weights=level.ravel()[idx], minlength=n) / np.maximum(area, 1)
    # A component touches land when any of its pixels has a land pixel among its 8 neighbours.
    beside_land = np.zeros(len(idx), bool)
    last_row, last_col = land.shape[0] - 1, land.shape[1] - 1
    for d_row, d_col in ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)):
        beside_land |= land[np.clip(rr + d_row, 0, last_row), np.clip(cc + d_col, 0, last_col)]
    touches_land = np.bincount(lab, weights=beside_land, minlength=n) > 0

    # Weights: excess above 30 % of the component's peak, so faint wake foam does not pull the centre.
    w = np.maximum(ex - 0.3 * peak_excess[lab], 0.0)
    w[w == 0] = 1e-9
    blue_ratio = np.zeros(n)
    if blue is not None:
        # Hulls are brightest in NIR; clouds are white and wake foam bluish. Weighted like the
        # centroid, so the hull's own pixels decide, not the wake it is merged with.
        blue_level, _ = robust_background(blue, sea, cell_px=config.cell_px, cells=config.background_cells)
        blue_excess = np.bincount(lab, weights=w * (blue.ravel()[idx] - blue_level.ravel()[idx]),
                                  minlength=n)
        nir_excess = np.bincount(lab, weights=w * excess.ravel()[idx], minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            blue_ratio = np.where(nir_excess > 0, blue_excess / nir_excess, np.inf)
    # Labels with no pixel here (components dropped earlier) weigh nothing; keep them finite.
    sw = np.maximum(np.bincount(lab, weights=w, minlength=n), 1e-300)
    r_mean = np.bincount(lab, weights=w * rr, minlength=n) / sw
    c_mean = np.bincount(lab, weights=w * cc, minlength=n) / sw
    dr = rr - r_mean[lab]
    dc = cc - c_mean[lab]
    # Extent: the hull's pixels (excess at least 30 % of the peak) weighted by their own excess,
    # so partly covered edge pixels count for what they cover.
    w_extent = np.where(ex >= 0.3 * peak_excess[lab], ex, 0.0)
    s_extent = np.maximum(np.bincount(lab, weights=w_extent, minlength=n), 1e-12)
    crr = np.bincount(lab, weights=w_extent * dr * dr, minlength=n) / s_extent
    ccc = np.bincount(lab, weights=w_extent * dc * dc, minlength=n) / s_extent
    crc = np.bincount(lab, weights=w_extent * dr * dc, minlength=n) / s_extent
    half_trace = 0.5 * (crr + ccc)
    root = np.sqrt(np.maximum(0.25 * (ccc - crr) ** 2 + crc**2, 0.0))
    var_major = half_trace + root
    var_minor = np.maximum(half_trace - root, 0.0)
    angle = 0.5 * np.arctan2(2.0 * crc, ccc - crr)

    with np.errstate(invalid="ignore", divide="ignore"):
        contrast = peak_excess / np.abs(level_at)
    keep = (
        (peak >= config.z_peak)
        & (contrast >= config.min_contrast)
        & (peak_excess >= config.min_excess)
        & (area >= config.min_area_px)
        & (area <= config.max_area_px)
        & (blue_ratio <= config.max_blue_ratio)
        & (~touches_land | (peak >= config.land_contact_z))
    )
    keep[0] = False
    sel = np.flatnonzero(keep)
    return _Components(
        row=r_mean[sel] + 0.5, col=c_mean[sel] + 0.5, var_major=var_major[sel], var_minor=var_minor[sel],
        angle_rad=angle[sel], peak_sigma=peak[sel], blue_ratio=blue_ratio[sel],
        area_px=area[sel],
    )


def _to_detections(found: tuple[np.ndarray, ...], metadata: SceneMetadata, pixel_m: float,
                   config: DetectorConfig) -> Detections:
    row, col, var_major, var_minor, angle, peak, blue_ratio, area = found
    x, y = metadata.transform @ (col, row)
    x, y = np.asarray(x, float), np.asarray(y, float)
    to_lonlat = Transformer.from_crs(metadata.crs, "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform(x, y)
    # A run of n fully covered pixels has centre variance (n^2 - 1) / 12. Hulls taper to the bow,
    # which lowers the variance of their length by about (1 / 1.15)^2 against a rectangle's
    # (calibrated on the rendered hulls of pipeline.synthetic, 80-350 m).
    length_m = np.sqrt(HULL_TAPER**2 * 12.0 * var_major + 1.0) * pixel_m
    width_m = np.sqrt(12.0 * var_minor + 1.0) * pixel_m
    # Long axis (cos a, sin a) in (col, row); grid bearing clockwise from up (-row).
    orientation = np.degrees(np.arctan2(np.cos(angle), -np.sin(angle))) % 180.0
    return Detections(
        row=row.astype(float), col=col.astype(float), lon=np.asarray(lon, float), lat=np.asarray(lat, float),
        x=x, y=y, length_m=length_m, width_m=width_m, orientation_deg=orientation,
        score=1.0 - np.exp(-np.asarray(peak, float) / 10.0), peak_sigma=np.asarray(peak, float),
        blue_ratio=np.asarray(blue_ratio, float),
        area_px=np.asarray(area, np.int64),
    )

"""Fixed-size image chips around detections, ready for the heading model.

Each chip is a square window of the scene grid centred on a detection (the detection's pixel is
at index ``size_px // 2`` in both axes), read in every reflectance band and reflect-padded where
the window runs past the scene. A chip carries its own affine transform, CRS and the meridian
convergence at its centre (``grid_north_deg``): away from a UTM zone's central meridian grid up
is not north, and the heading model works in grid bearings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from affine import Affine
from pyproj import CRS, Geod, Transformer
from pyproj.exceptions import CRSError, ProjError
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from pipeline.detect import DetectorConfig, Detections, iter_block_detections
from pipeline.ingest import Scene
from vesselwatch.errors import InputError

_GEOD = Geod(ellps="WGS84")
log = logging.getLogger(__name__)


@dataclass
class Chip:
    """One chip: reflectance bands around a detection plus its georeferencing.

    Attributes
    ----------
    data : numpy.ndarray
        float32 (bands, H, W) reflectance; NaN no-data replaced by 0.
    band_names : list of str
        Band of each plane of ``data``.
    transform : Affine
        Affine of the chip's pixel corners (chip pixel (0, 0) at the window's origin).
    crs : CRS
        Scene CRS.
    grid_north_deg : float
        True bearing of the chip's grid-up direction at its centre, degrees clockwise from north,
        so ``true_bearing = grid_bearing + grid_north_deg``.
    center_lon, center_lat : float
        Chip centre, WGS84 degrees.
    window : Window
        The chip in scene pixels; may extend past the scene (that part is reflect-padded).
    """

    data: np.ndarray
    band_names: list[str]
    transform: Affine
    crs: object
    grid_north_deg: float
    center_lon: float
    center_lat: float
    window: Window


#: Largest ratio of a chip pixel's ground sides for which a grid bearing is taken as a ground bearing.
MAX_PIXEL_ASPECT = 1.1


def chip_grid_problem(transform: Affine, crs: CRS | object, height: int, width: int,
                      sides: tuple[float, float] | None = None) -> str | None:
    """Why a georeferenced chip's pixel grid cannot give a true bearing as ``grid + grid_north_deg``, or None.

    The heading model works in the chip's pixel grid and assumes square pixels with rows running
    down the grid (north-up, as the pipeline cuts chips). A rotated or mirrored transform turns or
    flips every bearing, and pixels that are not square on the ground (a geographic CRS away from
    the equator: at 52° N, 0.0001° is 6.9 m × 11.1 m) bend them; those chips must be warped first.

    Parameters
    ----------
    transform : Affine
        Pixel (col, row) → ``crs`` coordinates.
    crs : CRS
        The chip's CRS (projected or geographic).
    height, width : int
        Chip size, pixels.
    sides : (float, float), optional
        The centre pixel's ``(across, down)`` metres when the caller has :func:`ground_pixel_m`
        already; computed here otherwise.

    Returns
    -------
    str or None
        A sentence naming what is wrong and what to do, or None when the grid is usable.
    """
    a, b, d, e = transform.a, transform.b, transform.d, transform.e
    tolerance = 1e-9 * max(abs(a), abs(e))  # rounding in a written transform is not a rotation
    if abs(b) > tolerance or abs(d) > tolerance or a <= 0.0 or e >= 0.0:
        return (f"transform is rotated or flipped (a={a:g}, b={b:g}, d={d:g}, e={e:g}); "
                "warp the chip north-up first (e.g. gdalwarp)")
    try:
        across, down = sides if sides is not None else ground_pixel_m(transform, crs, height, width)
    except ValueError as error:
        return str(error)
    if max(across, down) / min(across, down) > MAX_PIXEL_ASPECT:
        return (f"pixels are {across:.1f} m × {down:.1f} m on the ground, not square; reproject the chip "
                "to a projected CRS with square pixels (e.g. UTM at 10 m)")
    return None


def ground_pixel_m(transform: Affine, crs: CRS | object, height: int, width: int) -> tuple[float, float]:
    """Ground size of the chip's centre pixel, ``(across, down)`` metres (geodesic on WGS84).

    Raises
    ------
    ValueError
        When the CRS cannot be turned into longitude and latitude or the size is not a positive
        number of metres; the message says which.
    """
    a, e = transform.a, transform.e
    col, row = width / 2.0, height / 2.0
    xs = np.array([a * col + transform.c, a * (col + 1) + transform.c, a * col + transform.c])
    ys = np.array([e * row + transform.f, e * row + transform.f, e * (row + 1) + transform.f])
    try:
        lon, lat = Transformer.from_crs(CRS.from_user_input(crs), "EPSG:4326", always_xy=True).transform(xs, ys)
    except (CRSError, ProjError) as error:
        raise ValueError(f"CRS cannot be turned into longitude and latitude: {error}") from error
    _, _, sides = _GEOD.inv(np.full(2, lon[0]), np.full(2, lat[0]), lon[1:], lat[1:])
    across, down = float(sides[0]), float(sides[1])
    if not (np.isfinite(across) and np.isfinite(down)) or min(across, down) <= 0.0:
        raise ValueError("pixel size on the ground could not be computed from the transform and CRS")
    return across, down


def grid_north_deg(crs: CRS | object, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """True bearing of grid up at points of a projected CRS (meridian convergence), degrees.

    Computed as the geodesic azimuth from each point to a point a short step up the grid, so it
    holds for any CRS pyproj knows. Positive east of a UTM central meridian in the northern
    hemisphere (grid north lies clockwise of true north there).

    Parameters
    ----------
    crs : CRS
        Projected (or geographic) CRS of ``x, y``.
    x, y : array_like
        Coordinates in ``crs``; broadcast together.

    Returns
    -------
    numpy.ndarray
        Degrees in (-180, 180].

    Examples
    --------
    >>> import numpy as np
    >>> float(np.round(grid_north_deg("EPSG:32631", 500000.0, 5_800_000.0), 6))  # on the central meridian
    0.0
    >>> bool(grid_north_deg("EPSG:32631", 600000.0, 5_800_000.0) > 0)  # east of it, northern hemisphere
    True
    """
    x, y = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    crs = CRS.from_user_input(crs)
    step = 1e-4 if crs.is_geographic else 10.0
    to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon0, lat0 = to_lonlat.transform(x.ravel(), y.ravel())
    lon1, lat1 = to_lonlat.transform(x.ravel(), y.ravel() + step)
    azimuth, _, _ = _GEOD.inv(lon0, lat0, lon1, lat1)
    azimuth = np.asarray(azimuth, dtype=np.float64)
    azimuth = np.where(azimuth <= -180.0, azimuth + 360.0, azimuth)
    return azimuth.reshape(x.shape)


def chip_windows(row: np.ndarray, col: np.ndarray, size_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Upper-left corners (row_off, col_off) of chips centred on (row, col) pixel coordinates.

    The pixel containing the point lands at chip index ``size_px // 2``.

    >>> chip_windows(np.array([10.5]), np.array([3.2]), 8)
    (array([6]), array([-1]))
    """
    half = size_px // 2
    return (np.floor(np.asarray(row)).astype(np.int64) - half, np.floor(np.asarray(col)).astype(np.int64) - half)


def cut_chips(scene: Scene, detections: Detections, size_px: int = 128, *,
              band_names: Sequence[str] | None = None) -> list[Chip]:
    """Chips of ``size_px`` x ``size_px`` scene pixels around every detection.

    Parameters
    ----------
    scene : Scene
        Open scene the detections come from.
    detections : Detections
        Centroids in scene pixels (``row``, ``col``).
    size_px : int
        Chip edge, pixels (10 m grid).
    band_names : sequence of str, optional
        Bands to cut; default every reflectance band of the scene.

    Returns
    -------
    list of Chip
        In the order of ``detections``.
    """
    if size_px < 2:
        raise InputError(f"size_px={size_px}: a chip needs at least 2 pixels")
    metadata = scene.metadata
    bands = list(band_names or scene.band_names)
    if len(detections) == 0:
        return []
    row_off, col_off = chip_windows(detections.row, detections.col, size_px)
    centre_c = col_off + size_px / 2.0
    centre_r = row_off + size_px / 2.0
    cx, cy = metadata.transform @ (centre_c, centre_r)
    cx, cy = np.asarray(cx, float), np.asarray(cy, float)
    convergence = grid_north_deg(metadata.crs, cx, cy)
    lon, lat = Transformer.from_crs(metadata.crs, "EPSG:4326", always_xy=True).transform(cx, cy)
    lon, lat = np.atleast_1d(lon), np.atleast_1d(lat)

    chips: list[Chip | None] = [None] * len(detections)
    # Raster order, so each compressed tile of the band files is decoded once while it is cached.
    for i in np.lexsort((col_off, row_off)):
        window = Window(int(col_off[i]), int(row_off[i]), size_px, size_px)
        data = _read_padded(scene, bands, window, metadata.height, metadata.width)
        chips[i] = Chip(
            data=data, band_names=bands, transform=window_transform(window, metadata.transform),
            crs=metadata.crs, grid_north_deg=float(convergence[i]), center_lon=float(lon[i]),
            center_lat=float(lat[i]), window=window,
        )
    return chips  # type: ignore[return-value]  # every slot is filled


def detect_and_cut(scene: Scene, *, size_px: int = 128, band_names: Sequence[str] | None = None,
                   land_path: str | Path | None = None,
                   config: DetectorConfig = DetectorConfig()) -> tuple[Detections, list[Chip]]:
    """:func:`pipeline.detect.detect_vessels` and :func:`cut_chips` in one pass over the scene.

    The chips of each block's vessels are cut while the detector's pixels of that block are still
    in memory, so the bands the detector read (B08, B02, B03) are not decoded a second time (on a
    full SAFE tile, 7 s of the 18 s the chips took). The result equals ``detect_vessels`` followed by
    ``cut_chips``; chips wider than twice the detector's block overlap read their outer part
    from the files.
    """
    parts: list[Detections] = []
    chips: list[Chip] = []
    for found in iter_block_detections(scene, land_path=land_path, config=config):
        parts.append(found)
        chips.extend(cut_chips(scene, found, size_px, band_names=band_names))
    detections = Detections.concatenate(parts)
    log.info("%s: %d vessel detections, %d chips", scene.metadata.product_id, len(detections), len(chips))
    return detections, chips


def _read_padded(scene: Scene, bands: list[str], window: Window, height: int, width: int) -> np.ndarray:
    """Read ``window`` (may run past the scene) in every band, reflect-padding the outside part."""
    r0, c0 = int(window.row_off), int(window.col_off)
    r1, c1 = r0 + int(window.height), c0 + int(window.width)
    ir0, ic0, ir1, ic1 = max(r0, 0), max(c0, 0), min(r1, height), min(c1, width)
    if ir1 <= ir0 or ic1 <= ic0:
        raise InputError(f"chip window {window} does not overlap the scene ({height} x {width})")
    inner = Window(ic0, ir0, ic1 - ic0, ir1 - ir0)
    data = np.stack([scene.read(band, inner) for band in bands])
    np.nan_to_num(data, copy=False, nan=0.0)
    pad = ((0, 0), (ir0 - r0, r1 - ir1), (ic0 - c0, c1 - ic1))
    if any(p for axis in pad for p in axis):
        # numpy's reflect pads wider than the data by reflecting repeatedly.
        data = np.pad(data, pad, mode="reflect" if min(data.shape[1:]) > 1 else "edge")
    return data.astype(np.float32, copy=False)

"""Speed from one image: a hull under way sits apart in bands recorded about a second apart.

Sentinel-2's MSI is a push-broom: its bands see a point one after another, B04 about 1.005 s after
B02 (Heiselberg 2019 measures ship and aircraft speeds this way). A moored hull lies on the same
pixels in both bands; a hull at 20 kn has moved about 10 m, one pixel. This module measures that
displacement on each chip's hull and turns it into a speed over ground and an axis of motion.

Only the *size* and the *axis* of the motion are claimed, not its direction along the axis: as we
understand the MSI's staggered focal plane, the order of the bands is mirrored between its odd and
even detector modules, so the same displacement means opposite directions in neighbouring strips of
the swath. The heading (which way along the axis) comes from the wake (:mod:`pipeline.heading`).

Method, per chip (all chips in one vectorised pass):

1. **Hull**: each pixel's largest excess over the chip's median among B02, B04 and B08, in units of
   that band's robust sigma (white hulls are bright in blue, steel hulls in NIR); the connected
   pixels at or above ``max(0.3 × peak, 3 σ)`` around the brightest pixel within 4 px of the
   centre (the detector's 30 % rule for hull pixels), dilated by 3 px. A hull of more than 400 px
   or reaching the crop's edge (merged with a quay) is not fitted.
2. **Fit**: ``B04 ≈ gain · shift(B02, d) + offset`` by least squares over the hull (gain and offset
   absorb the bands' reflectances), ``d`` searched on a 0.75 px grid within 2.25 px, then refined
   on 0.2 and 0.05 px grids around the best; shifts are applied in the Fourier domain on a 48 px crop
   around the centre.
3. **Speed**: ``|d| × pixel size / 1.005 s`` (ground metres, so Web Mercator grids are scaled),
   reported when the hull is at least 2× longer than wide, ``|d| ≥ min_shift_px`` (0.6 px: on the
   real port scenes 1 of 54 moored vessels reached it, 11 of 12 vessels under way did), below the
   search edge, along the hull's own long axis (within 20°: vessels move along themselves) and the
   fit explains at least half of B04's variance over the hull; the axis is turned into a true
   bearing (0–180°) with the chip's grid north.

Known limits: the stationary foam of the wake just behind the stern is part of the fit and pulls
the displacement towards zero (Heiselberg's "wakes affect the band positions"), so fast vessels
with bright wakes may be reported slower than they are; an elongated hull is least constrained
along its own axis, which is also the axis of motion. The gates were set looking at the 100 real
port vessels; no speed labels are bundled, so the speeds are not validated beyond the moored /
under-way split on those scenes (``docs/heading.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from geo.angles import axis_difference_deg
from geo.earth import KNOT_M_S
from pipeline.chips import ground_pixel_m

__all__ = ["B02_B04_SECONDS", "MIN_SHIFT_PX", "Motion", "hull_axes", "hull_masks", "interband_displacement", "measure_motion"]

#: Seconds between the B02 and B04 records of a ground point (ESA's MSI timing).
B02_B04_SECONDS = 1.005
#: Smallest displacement reported as motion, pixels (below it moored hulls and noise mix).
MIN_SHIFT_PX = 0.6
#: Crop around the chip centre in which hulls are fitted, pixels (a hull reaching its edge is not fitted).
CROP_PX = 48
#: Largest displacement measured, pixels (2.25 px at 10 m in 1.005 s is 44 kn).
SEARCH_PX = 2.25
#: A hull must be at least this elongated (long / short axis) to have an axis to move along.
MIN_ELONGATION = 2.0
#: Largest angle between the displacement and the hull's own long axis, degrees (vessels move along it).
MAX_AXIS_MISMATCH_DEG = 20.0
#: Smallest share of B04's variance over the hull the shifted B02 must explain.
MIN_EXPLAINED = 0.5

_PLANE_8 = np.zeros((3, 3, 3), dtype=bool)
_PLANE_8[1] = True  # 8-connected within each chip, never across chips of a stack


@dataclass(frozen=True)
class Motion:
    """Hull motion of N chips between B02 and B04.

    Attributes
    ----------
    displacement_px : numpy.ndarray
        ``(N, 2)`` ``(drow, dcol)`` of the hull in B04 against B02, chip pixels (row down, col right);
        NaN where the chip has no B02/B04 or no hull.
    speed_kn : numpy.ndarray
        ``(N,)`` speed over ground, knots; NaN where :func:`measure_motion`'s gates say the motion
        is not measurable (slow, round or merged hull, off-axis shift, poor fit, no metric grid).
    axis_deg : numpy.ndarray
        ``(N,)`` true bearing of the axis of motion, degrees clockwise from north in [0, 180); NaN
        where ``speed_kn`` is.
    """

    displacement_px: np.ndarray
    speed_kn: np.ndarray
    axis_deg: np.ndarray

    def __len__(self) -> int:
        return len(self.speed_kn)

    def as_dicts(self) -> list[dict[str, float | None]]:
        """One JSON-ready ``{"speed_kn", "motion_axis_deg"}`` per chip (``None`` when unknown), rounded."""
        return [
            {"speed_kn": None if not np.isfinite(s) else round(float(s), 1),
             "motion_axis_deg": None if not np.isfinite(a) else round(float(a), 1) % 180.0}
            for s, a in zip(self.speed_kn, self.axis_deg)
        ]


def hull_masks(bands: np.ndarray, *, margin_px: int = 3, seed_radius_px: int = 4, max_hull_px: int = 400,
               min_hull_px: int = 3) -> np.ndarray:
    """Hull pixels of each chip of an ``(N, B, H, W)`` stack of bands, dilated by ``margin_px``; bool ``(N, H, W)``.

    Brightness is each pixel's largest excess over its band's chip median in units of that band's
    robust sigma (MAD), so NIR-bright steel hulls and white hulls both stand out. The hull is the
    connected set of pixels reaching ``max(0.3 × peak, 3)`` around the brightest pixel within
    ``seed_radius_px`` of the centre. A chip whose centre holds nothing above 3 σ, or whose hull has
    fewer than ``min_hull_px`` or more than ``max_hull_px`` pixels or reaches the chip's edge (a
    hull merged with a quay or a cloud), gets an empty mask.
    """
    bands = np.asarray(bands, dtype=np.float64)
    n, _, h, w = bands.shape
    excess = bands - np.median(bands, axis=(2, 3), keepdims=True)
    sigma = 1.4826 * np.median(np.abs(excess), axis=(2, 3), keepdims=True)
    z = (excess / np.maximum(sigma, 1e-12)).max(axis=1)
    rows, cols = np.mgrid[:h, :w]
    near_centre = np.hypot(rows + 0.5 - h / 2.0, cols + 0.5 - w / 2.0) <= seed_radius_px
    seed = np.where(near_centre[None], z, -np.inf).reshape(n, -1).argmax(axis=1)
    peak = z.reshape(n, -1)[np.arange(n), seed][:, None, None]
    bright = (z >= np.maximum(0.3 * peak, 3.0)) & (peak > 3.0)
    labels, _ = ndimage.label(bright, structure=_PLANE_8)
    seed_label = labels.reshape(n, -1)[np.arange(n), seed]
    hull = (labels == seed_label[:, None, None]) & (seed_label[:, None, None] > 0)
    size = hull.sum(axis=(1, 2))
    edge = hull[:, 0].any(axis=1) | hull[:, -1].any(axis=1) | hull[:, :, 0].any(axis=1) | hull[:, :, -1].any(axis=1)
    hull[(size < min_hull_px) | (size > max_hull_px) | edge] = False
    if margin_px > 0:
        hull = ndimage.binary_dilation(hull, structure=_PLANE_8, iterations=margin_px)
    return hull


def _fourier_shift(spectrum: np.ndarray, d_row: np.ndarray, d_col: np.ndarray, width: int) -> np.ndarray:
    """``(N, H, width)`` images of the real-input spectrum ``spectrum`` (``rfft2``) shifted by per-chip ``(d_row, d_col)`` px."""
    h = spectrum.shape[1]
    fy = np.fft.fftfreq(h)[None, :, None]
    fx = np.fft.rfftfreq(width)[None, None, :]
    ramp = np.exp(-2j * np.pi * (fy * d_row[:, None, None] + fx * d_col[:, None, None]))
    return np.fft.irfft2(spectrum * ramp, s=(h, width))


def _misfit(shifted: np.ndarray, target: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Per chip, the residual sum of squares of ``target ≈ gain · shifted + offset`` over ``weight``."""
    count = weight.sum(axis=(1, 2))
    sx, sy = (weight * shifted).sum(axis=(1, 2)), (weight * target).sum(axis=(1, 2))
    sxx = (weight * shifted**2).sum(axis=(1, 2)) - sx**2 / np.maximum(count, 1)
    sxy = (weight * shifted * target).sum(axis=(1, 2)) - sx * sy / np.maximum(count, 1)
    syy = (weight * target**2).sum(axis=(1, 2)) - sy**2 / np.maximum(count, 1)
    return syy - sxy**2 / np.maximum(sxx, 1e-30)


def interband_displacement(earlier: np.ndarray, later: np.ndarray, masks: np.ndarray, *,
                           search_px: float = SEARCH_PX) -> tuple[np.ndarray, np.ndarray]:
    """Displacement ``(drow, dcol)`` of each chip's masked target from ``earlier`` to ``later``, pixels.

    ``earlier``, ``later``: ``(N, H, W)`` bands; ``masks``: ``(N, H, W)`` bool, where to fit (a
    hull and a margin of sea). Least squares of ``later ≈ gain · shift(earlier, d) + offset`` over
    the mask, ``d`` on a 7 × 7 grid spanning ``± search_px``, refined on a 0.2 px grid (± 0.4 px)
    and a 0.05 px grid (± 0.15 px) around the best so far. Returns the
    ``(N, 2)`` displacements (positive ``drow`` down the grid, positive ``dcol`` right) and the
    ``(N,)`` share of ``later``'s variance over the mask the fit explains (R²); NaN for masks of
    fewer than 3 pixels.
    """
    earlier = np.asarray(earlier, dtype=np.float64)
    later = np.asarray(later, dtype=np.float64)
    masks = np.asarray(masks, dtype=bool)
    if not (earlier.shape == later.shape == masks.shape) or earlier.ndim != 3:
        raise ValueError(f"interband_displacement: expected three (N, H, W) stacks of one shape, got "
                         f"{earlier.shape}, {later.shape} and {masks.shape}")
    n = earlier.shape[0]
    out = np.full((n, 2), np.nan)
    explained = np.full(n, np.nan)
    usable = masks.reshape(n, -1).sum(axis=1) >= 3
    if not usable.any():
        return out, explained
    # Subtract each chip's sea level so the periodic Fourier shift wraps sea into sea.
    a = earlier[usable] - np.median(earlier[usable], axis=(1, 2), keepdims=True)
    b = later[usable] - np.median(later[usable], axis=(1, 2), keepdims=True)
    weight = masks[usable].astype(np.float64)
    spectrum = np.fft.rfft2(a)
    m, width = len(a), a.shape[2]

    def search(d_rows: np.ndarray, d_cols: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        best_cost = np.full(m, np.inf)
        best = centre.copy()
        for d_row in d_rows:
            for d_col in d_cols:
                trial = centre + (d_row, d_col)
                cost = _misfit(_fourier_shift(spectrum, trial[:, 0], trial[:, 1], width), b, weight)
                better = cost < best_cost
                best_cost[better], best[better] = cost[better], trial[better]
        return best, best_cost

    coarse = np.linspace(-search_px, search_px, 7)
    found, cost = search(coarse, coarse, np.zeros((m, 2)))
    for step, reach in ((0.2, 0.4), (0.05, 0.15)):  # refine: every point of a finer grid around the best so far
        around = np.arange(-reach, reach + 1e-9, step)
        found, cost = search(around, around, found)
    out[usable] = found
    count = weight.sum(axis=(1, 2))
    total = (weight * b**2).sum(axis=(1, 2)) - (weight * b).sum(axis=(1, 2)) ** 2 / count
    explained[usable] = 1.0 - cost / np.maximum(total, 1e-30)
    return out, explained


def _crop(planes: np.ndarray, size: int) -> np.ndarray:
    """The centre ``size`` × ``size`` of the planes ``(..., H, W)`` (all of them if smaller)."""
    h, w = planes.shape[-2:]
    r0, c0 = max((h - size) // 2, 0), max((w - size) // 2, 0)
    return planes[..., r0:r0 + min(size, h), c0:c0 + min(size, w)]


def hull_axes(hulls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Long-axis grid bearing (degrees in [0, 180)) and elongation (long / short) of ``(N, H, W)`` hull masks.

    From the masks' second moments; NaN bearing and elongation 1 for masks of fewer than 3 pixels.
    """
    hulls = np.asarray(hulls, dtype=np.float64)
    rows, cols = np.mgrid[: hulls.shape[1], : hulls.shape[2]]
    count = hulls.sum(axis=(1, 2))
    safe = np.maximum(count, 1.0)
    mean_r, mean_c = (hulls * rows).sum(axis=(1, 2)) / safe, (hulls * cols).sum(axis=(1, 2)) / safe
    var_r = (hulls * rows**2).sum(axis=(1, 2)) / safe - mean_r**2
    var_c = (hulls * cols**2).sum(axis=(1, 2)) / safe - mean_c**2
    cov = (hulls * rows * cols).sum(axis=(1, 2)) / safe - mean_r * mean_c
    spread = np.sqrt(((var_c - var_r) / 2.0) ** 2 + cov**2)
    major, minor = (var_c + var_r) / 2.0 + spread, (var_c + var_r) / 2.0 - spread
    # Grid bearing of the major axis: angle of (dcol, drow) measured clockwise from grid up.
    angle_from_cols = 0.5 * np.arctan2(2.0 * cov, var_c - var_r)  # radians from +col towards +row
    bearing = (90.0 + np.degrees(angle_from_cols)) % 180.0
    elongation = np.sqrt(major / np.maximum(minor, 1.0 / 12.0))
    few = count < 3
    return np.where(few, np.nan, bearing), np.where(few, 1.0, elongation)


def measure_motion(chips: Sequence[Any], *, min_shift_px: float = MIN_SHIFT_PX, search_px: float = SEARCH_PX) -> Motion:
    """Hull motion of the chips of one scene (:class:`pipeline.chips.Chip`, same size and bands).

    A speed is reported where the hull is measurable (see :func:`hull_masks`), elongated at least
    ``MIN_ELONGATION``, displaced at least ``min_shift_px`` and less than the search edge, along its
    own long axis (within ``MAX_AXIS_MISMATCH_DEG``; off-axis shifts are quays, piers or noise),
    with a fit explaining at least ``MIN_EXPLAINED`` of B04's variance. Chips without B02, B04
    and B08, or without a projected CRS (``crs=None`` or lon/lat), get NaN speeds. See the module
    docstring for the method and limits.
    """
    n = len(chips)
    displacement = np.full((n, 2), np.nan)
    nothing = np.full(n, np.nan)
    if n == 0 or not {"B02", "B04", "B08"} <= set(chips[0].band_names):
        return Motion(displacement, nothing, nothing.copy())
    names = list(chips[0].band_names)
    index = [names.index(b) for b in ("B02", "B04", "B08")]
    # Crop each chip before stacking (a full tile's whole chips would hold 150 MB more).
    bands = np.stack([_crop(chip.data[index], CROP_PX) for chip in chips])  # (N, 3, CROP_PX, CROP_PX)
    core = hull_masks(bands, margin_px=0)
    hull_axis, elongation = hull_axes(core)
    core[elongation < MIN_ELONGATION] = False  # no axis to move along: not fitted
    displacement, explained = interband_displacement(bands[:, 0], bands[:, 1],
                                                     ndimage.binary_dilation(core, _PLANE_8, 3), search_px=search_px)
    shift_px = np.hypot(displacement[:, 0], displacement[:, 1])
    grid_bearing = np.degrees(np.arctan2(displacement[:, 1], -displacement[:, 0])) % 180.0
    mismatch = axis_difference_deg(grid_bearing, hull_axis)
    with np.errstate(invalid="ignore"):
        measurable = ((shift_px >= min_shift_px) & (shift_px < search_px - 0.05)
                      & (elongation >= MIN_ELONGATION) & (mismatch <= MAX_AXIS_MISMATCH_DEG)
                      & (explained >= MIN_EXPLAINED))
    # Ground metres of the centre pixel (across, down), the heading chips' own measure, only where a
    # speed is reported (a projection per chip is slow); no grid, or degrees (the axis would be a
    # bearing in a grid that is not square on the ground): no speed.
    pixel_sides_m = np.full((n, 2), np.nan)
    for i in np.flatnonzero(measurable):
        c = chips[i]
        if c.crs is not None and not c.crs.is_geographic:
            try:
                pixel_sides_m[i] = ground_pixel_m(c.transform, c.crs, c.data.shape[1], c.data.shape[2])
            except ValueError:  # a CRS pyproj cannot take to lon/lat: no speed
                pass
    ground_shift_m = np.hypot(displacement[:, 1] * pixel_sides_m[:, 0], displacement[:, 0] * pixel_sides_m[:, 1])
    speed = ground_shift_m / B02_B04_SECONDS / KNOT_M_S
    grid_north = np.array([c.grid_north_deg for c in chips])
    axis = np.where(np.isfinite(speed), (grid_bearing + grid_north) % 180.0, np.nan)
    return Motion(displacement, speed, axis)

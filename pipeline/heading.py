"""Heading step of the pipeline: chips in, true headings (with uncertainty) out.

``chips → estimate_headings(chips, model) → HeadingResults``. The model predicts wake keypoints in
each chip's grid; the heading is the grid bearing from the wake end to the hull, turned into a true
bearing (degrees clockwise from true north) with the chip's ``grid_north_deg`` (meridian
convergence), and the keypoints are georeferenced with the chip's affine transform and CRS.

A wake runs on water. Where the chip has B03 and B08, the predicted wake line (hull to wake end)
is checked against the chip's NDWI land mask (:func:`pipeline.water.chip_land`): a vessel moored
against a quay or between pier fingers lies in a straight line of bright structure that the model,
trained on open sea, can read as a wake. When at least ``max_wake_land_share`` of the line lies on
land, the heading is withdrawn (NaN, ``ambiguous``, ``wake_on_land``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyproj import Transformer

from models.inference import HeadingModel, load_heading_model, predict_keypoints
from pipeline.water import chip_land

__all__ = [
    "MAX_WAKE_LAND_SHARE", "HeadingResults", "estimate_headings", "load_heading_model", "true_heading_deg", "wake_land_share",
]

log = logging.getLogger(__name__)

KEYPOINT_NAMES: tuple[str, ...] = ("hull", "wake_end", "arm_left_end", "arm_right_end")
#: Default share of a wake line on land at which its heading is withdrawn. On the sen2ships ports
#: the moored vessels' lines were 62–100% on land and the vessels under way 0%; on 2347 headings of
#: synthetic open-sea chips in linear radiometry (training and held-out ranges) none reached 10%.
MAX_WAKE_LAND_SHARE = 0.25


def true_heading_deg(heading_grid_deg: np.ndarray, grid_north_deg: np.ndarray) -> np.ndarray:
    """True bearing from a grid bearing: ``(grid + grid_north) mod 360`` (NaN propagates).

    Examples
    --------
    >>> true_heading_deg(np.array([350.0, 10.0]), np.array([15.0, -20.0])).tolist()
    [5.0, 350.0]
    """
    return np.mod(np.asarray(heading_grid_deg, dtype=np.float64) + np.asarray(grid_north_deg, dtype=np.float64), 360.0)


@dataclass
class HeadingResults:
    """Headings of N chips, aligned with the chips (and so with the detections).

    Attributes
    ----------
    heading_deg : numpy.ndarray
        ``(N,)`` true bearing of travel, degrees clockwise from north; NaN without a usable wake.
    uncertainty_deg : numpy.ndarray
        ``(N,)`` calibrated 1-sigma, degrees (NaN where the heading is NaN).
    ambiguous : numpy.ndarray
        ``(N,)`` bool: the 180° direction cannot be told (no usable wake, or sigma too large).
    heading_grid_deg : numpy.ndarray
        ``(N,)`` the same heading in the chip grid (clockwise from grid up).
    wake_probability : numpy.ndarray
        ``(N,)`` the model's probability that a wake is visible.
    keypoints_px : numpy.ndarray
        ``(N, 4, 2)`` ``(x, y)`` chip pixel coordinates (rasterio convention), NaN where absent.
    keypoints_lon, keypoints_lat : numpy.ndarray
        ``(N, 4)`` the keypoints in WGS84 degrees.
    wake_on_land : numpy.ndarray
        ``(N,)`` bool: the model found a wake but its line lies on land (a quay, a pier), so the
        heading was withdrawn; all False when not given.
    """

    heading_deg: np.ndarray
    uncertainty_deg: np.ndarray
    ambiguous: np.ndarray
    heading_grid_deg: np.ndarray
    wake_probability: np.ndarray
    keypoints_px: np.ndarray
    keypoints_lon: np.ndarray
    keypoints_lat: np.ndarray
    wake_on_land: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.wake_on_land is None:
            self.wake_on_land = np.zeros(len(self.heading_deg), dtype=bool)

    def __len__(self) -> int:
        return len(self.heading_deg)

    def keypoints_dict(self, i: int) -> dict[str, dict[str, float] | None]:
        """Keypoints of chip ``i`` as JSON-ready ``{name: {"x", "y", "lon", "lat"} or None}``."""
        out: dict[str, dict[str, float] | None] = {}
        for k, name in enumerate(KEYPOINT_NAMES):
            x, y = self.keypoints_px[i, k]
            if not (np.isfinite(x) and np.isfinite(y)):
                out[name] = None
                continue
            out[name] = {
                "x": round(float(x), 3), "y": round(float(y), 3),
                "lon": round(float(self.keypoints_lon[i, k]), 7), "lat": round(float(self.keypoints_lat[i, k]), 7),
            }
        return out

    @classmethod
    def empty(cls) -> HeadingResults:
        nothing = np.zeros((0,))
        return cls(nothing, nothing, nothing.astype(bool), nothing, nothing, np.zeros((0, 4, 2)),
                   np.zeros((0, 4)), np.zeros((0, 4)))


def _keypoints_lonlat(chips: Sequence[Any], keypoints_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Georeference chip-pixel keypoints with each chip's transform, grouped by CRS."""
    lon = np.full(keypoints_px.shape[:2], np.nan)
    lat = np.full(keypoints_px.shape[:2], np.nan)
    groups: dict[str, list[int]] = {}
    for i, chip in enumerate(chips):
        if getattr(chip, "crs", None) is not None:  # an un-georeferenced chip (a PNG) keeps NaN lon/lat
            groups.setdefault(str(chip.crs), []).append(i)
    for indices in groups.values():
        to_lonlat = Transformer.from_crs(chips[indices[0]].crs, "EPSG:4326", always_xy=True)
        map_x = np.empty((len(indices), keypoints_px.shape[1]))
        map_y = np.empty_like(map_x)
        for j, i in enumerate(indices):
            t = chips[i].transform
            x, y = keypoints_px[i, :, 0], keypoints_px[i, :, 1]
            map_x[j] = t.a * x + t.b * y + t.c
            map_y[j] = t.d * x + t.e * y + t.f
        glon, glat = to_lonlat.transform(map_x, map_y)
        finite = np.isfinite(map_x)
        lon[indices] = np.where(finite, glon, np.nan)
        lat[indices] = np.where(finite, glat, np.nan)
    return lon, lat


def wake_land_share(land: np.ndarray, keypoints_px: np.ndarray, *, start: float = 0.3, samples: int = 24) -> np.ndarray:
    """Share of each chip's predicted wake line that lies on land.

    The line runs from the hull to the wake end; it is sampled at ``samples`` points from
    ``start`` of the way along (the hull's own pixels are left out) to the wake end.

    Parameters
    ----------
    land : numpy.ndarray of bool
        ``(N, H, W)`` land mask of the chips (:func:`pipeline.water.chip_land`).
    keypoints_px : numpy.ndarray
        ``(N, 4, 2)`` ``(x, y)`` chip pixel coordinates (rasterio convention, pixel edges), hull
        first and wake end second.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` share in [0, 1]; NaN where the hull or the wake end is unknown. Points outside the
        chip count as not land.
    """
    land = np.asarray(land, dtype=bool)
    keypoints_px = np.asarray(keypoints_px, dtype=np.float64)
    if land.ndim != 3 or keypoints_px.shape[:1] != land.shape[:1] or keypoints_px.shape[1:] != (4, 2):
        raise ValueError(f"land, keypoints_px: expected (N, H, W) and (N, 4, 2), got {land.shape} and {keypoints_px.shape}")
    n, height, width = land.shape
    hull, wake_end = keypoints_px[:, 0], keypoints_px[:, 1]
    t = np.linspace(start, 1.0, samples)
    points = hull[:, None, :] + t[None, :, None] * (wake_end - hull)[:, None, :]  # (N, samples, 2)
    known = np.all(np.isfinite(points), axis=(1, 2))
    col = np.floor(np.nan_to_num(points[..., 0], nan=-1.0)).astype(np.int64)
    row = np.floor(np.nan_to_num(points[..., 1], nan=-1.0)).astype(np.int64)
    inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
    chip = np.broadcast_to(np.arange(n)[:, None], col.shape)
    on_land = np.zeros(col.shape, dtype=bool)
    on_land[inside] = land[chip[inside], row[inside], col[inside]]
    return np.where(known, on_land.mean(axis=1), np.nan)


def estimate_headings(
    chips: Sequence[Any], model: HeadingModel, *, batch_size: int = 256, tta: bool | None = None,
    max_wake_land_share: float | None = MAX_WAKE_LAND_SHARE,
) -> HeadingResults:
    """True headings, uncertainty, ambiguity and georeferenced keypoints for chips.

    Parameters
    ----------
    chips : sequence of pipeline.chips.Chip
        Anything with ``data (bands, H, W)``, ``band_names``, ``transform``, ``crs`` and
        ``grid_north_deg`` (contract 4). Chips with different band lists or sizes are run in groups.
    model : HeadingModel
        From :func:`load_heading_model`.
    batch_size : int
        Chips per forward pass.
    tta : bool or None
        Average the 8 dihedral symmetries and fold their spread into the uncertainty: ``True``
        for every chip (8x cost), ``False`` for none, ``None`` for the uncertain chips the weights'
        JSON names (``tta_above_sigma_deg``), see :func:`models.inference.predict_keypoints`.
    max_wake_land_share : float or None
        Withdraw a heading when at least this share of its wake line lies on land
        (:func:`wake_land_share`); ``None`` skips the check. Chips without B03 and B08 (an RGB
        PNG) are never checked: NDWI needs both.
    """
    if max_wake_land_share is not None and not 0.0 < max_wake_land_share <= 1.0:
        raise ValueError(f"max_wake_land_share: expected a share in (0, 1] or None, got {max_wake_land_share}")
    n = len(chips)
    if n == 0:
        return HeadingResults.empty()
    keypoints = np.full((n, 4, 2), np.nan)
    visibility = np.zeros((n, 4))
    heading_grid = np.full(n, np.nan)
    sigma = np.full(n, np.nan)
    ambiguous = np.ones(n, dtype=bool)
    on_land = np.zeros(n, dtype=bool)
    groups: dict[tuple, list[int]] = {}
    for i, chip in enumerate(chips):
        groups.setdefault((tuple(chip.band_names), np.shape(chip.data)), []).append(i)
    for (band_names, _), indices in groups.items():
        data = np.stack([np.asarray(chips[i].data, dtype=np.float32) for i in indices])
        pred = predict_keypoints(model, data, band_names, batch_size=batch_size, tta=tta)
        keypoints[indices] = pred.keypoints_px
        visibility[indices] = pred.visibility
        heading_grid[indices] = pred.heading_grid_deg
        sigma[indices] = pred.uncertainty_deg
        ambiguous[indices] = pred.ambiguous
        if max_wake_land_share is not None and {"B03", "B08"} <= set(band_names):
            land = chip_land(data[:, band_names.index("B03")], data[:, band_names.index("B08")])
            share = wake_land_share(land, pred.keypoints_px)
            on_land[indices] = np.isfinite(pred.heading_grid_deg) & (share >= max_wake_land_share)
    if on_land.any():
        log.info("%d of %d wakes lie on land (moored vessels): headings withdrawn", int(on_land.sum()),
                 int(np.isfinite(heading_grid).sum()))
        heading_grid[on_land] = np.nan
        sigma[on_land] = np.nan
        ambiguous[on_land] = True
    grid_north = np.array([float(chip.grid_north_deg) for chip in chips])
    lon, lat = _keypoints_lonlat(chips, keypoints)
    return HeadingResults(
        heading_deg=true_heading_deg(heading_grid, grid_north), uncertainty_deg=sigma, ambiguous=ambiguous,
        heading_grid_deg=heading_grid, wake_probability=visibility[:, 1], keypoints_px=keypoints,
        keypoints_lon=lon, keypoints_lat=lat, wake_on_land=on_land,
    )

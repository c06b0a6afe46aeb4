"""Heading step of the pipeline: chips in, true headings (with uncertainty) out.

``chips → estimate_headings(chips, model) → HeadingResults``. The model predicts wake keypoints in
each chip's grid; the heading is the grid bearing from the wake end to the hull, turned into a true
bearing (degrees clockwise from true north) with the chip's ``grid_north_deg`` (meridian
convergence), and the keypoints are georeferenced with the chip's affine transform and CRS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyproj import Transformer

from models.inference import HeadingModel, load_heading_model, predict_keypoints

__all__ = ["HeadingResults", "estimate_headings", "load_heading_model", "true_heading_deg"]

KEYPOINT_NAMES: tuple[str, ...] = ("hull", "wake_end", "arm_left_end", "arm_right_end")


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
    """

    heading_deg: np.ndarray
    uncertainty_deg: np.ndarray
    ambiguous: np.ndarray
    heading_grid_deg: np.ndarray
    wake_probability: np.ndarray
    keypoints_px: np.ndarray
    keypoints_lon: np.ndarray
    keypoints_lat: np.ndarray

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


def estimate_headings(
    chips: Sequence[Any], model: HeadingModel, *, batch_size: int = 256, tta: bool | None = None,
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
    """
    n = len(chips)
    if n == 0:
        return HeadingResults.empty()
    keypoints = np.full((n, 4, 2), np.nan)
    visibility = np.zeros((n, 4))
    heading_grid = np.full(n, np.nan)
    sigma = np.full(n, np.nan)
    ambiguous = np.ones(n, dtype=bool)
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
    grid_north = np.array([float(chip.grid_north_deg) for chip in chips])
    lon, lat = _keypoints_lonlat(chips, keypoints)
    return HeadingResults(
        heading_deg=true_heading_deg(heading_grid, grid_north), uncertainty_deg=sigma, ambiguous=ambiguous,
        heading_grid_deg=heading_grid, wake_probability=visibility[:, 1], keypoints_px=keypoints,
        keypoints_lon=lon, keypoints_lat=lat,
    )

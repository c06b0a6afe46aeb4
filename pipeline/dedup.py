"""One vessel, one detection: merge the copies of a vessel seen by overlapping tiles of one pass.

Neighbouring Sentinel-2 tiles overlap by about 10 km (each 109.8 km tile sits on a 100 km
square), so a vessel in the overlap is detected once in each tile of the pass. Two detections
are *copies* of one vessel when

- they come from different scenes acquired within ``pass_window_s`` of each other (one pass of
  one satellite; detections whose time is unknown never match), and
- their centroids are within ``radius_m`` of each other (great circle), each being the other's
  nearest candidate (one-to-one matching, so two vessels moored side by side stay two).

Of two copies the one kept is the one farther from the edge of its own scene (a hull cut by the
tile edge is measured worse), ties broken by the smaller scene id. That is a total order on the
copies, so the stored result is the same whichever tile was processed first, and re-processing
either tile changes nothing.

Examples
--------
>>> new = Copies(["B/1"], ["B"], [3.0], [52.0], [500.0], [0.0])
>>> old = Copies(["A/7"], ["A"], [3.0002], [52.0], [20.0], [30.0])
>>> decision = resolve_copies(new, old, radius_m=60.0, pass_window_s=120.0)
>>> decision.drop_new.tolist(), decision.drop_old
([False], ['A/7'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from geo.earth import EARTH_RADIUS_KM
from geo.haversine import distance_km
from geo.unit_vectors import to_unit_vectors

__all__ = [
    "DEFAULT_OVERLAP_RADIUS_M",
    "DEFAULT_PASS_WINDOW_S",
    "Copies",
    "OverlapDecision",
    "edge_distance_px",
    "match_copies",
    "resolve_copies",
]

#: Two centroids closer than this (metres) in one pass are one vessel: a few 10 m pixels, enough
#: for the resampling shift between two UTM grids, far less than two hulls side by side need.
DEFAULT_OVERLAP_RADIUS_M = 60.0
#: Scenes acquired within this many seconds belong to one pass (tiles of one datatake are seconds apart).
DEFAULT_PASS_WINDOW_S = 300.0


@dataclass(frozen=True)
class Copies:
    """Detections that may be copies of one another, as equal-length arrays.

    Attributes
    ----------
    detection_id, scene_id : ndarray of str
    lon, lat : ndarray of float
        Centroids, degrees WGS84.
    edge_px : ndarray of float
        Distance of the centroid to the nearest edge of its scene, pixels (see :func:`edge_distance_px`).
    acquired_s : ndarray of float
        Acquisition time, POSIX seconds; NaN when unknown.
    """

    detection_id: NDArray[np.str_] | Sequence[str]
    scene_id: NDArray[np.str_] | Sequence[str]
    lon: ArrayLike
    lat: ArrayLike
    edge_px: ArrayLike
    acquired_s: ArrayLike

    def __post_init__(self) -> None:
        for name in ("detection_id", "scene_id"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=object).reshape(-1))
        for name in ("lon", "lat", "edge_px", "acquired_s"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.float64).reshape(-1))
        names = ("detection_id", "scene_id", "lon", "lat", "edge_px", "acquired_s")
        sizes = {getattr(self, name).size for name in names}
        if len(sizes) != 1:
            raise ValueError(f"Copies: arrays of unequal lengths {sorted(sizes)}")

    def __len__(self) -> int:
        return int(self.lon.size)


@dataclass(frozen=True)
class OverlapDecision:
    """What to store: ``drop_new[i]`` drops new detection ``i``; ``drop_old`` lists stored ids to delete."""

    drop_new: NDArray[np.bool_]
    drop_old: list[str] = field(default_factory=list)
    pairs: list[tuple[str, str]] = field(default_factory=list)


def edge_distance_px(row: ArrayLike, col: ArrayLike, height: ArrayLike, width: ArrayLike) -> NDArray[np.float64]:
    """Distance (pixels) from a centroid ``(row, col)`` to the nearest edge of a ``height x width`` scene.

    >>> edge_distance_px([5.0, 50.0], [90.0, 50.0], 100, 100).tolist()
    [5.0, 50.0]
    """
    row, col = np.asarray(row, dtype=np.float64), np.asarray(col, dtype=np.float64)
    height, width = np.asarray(height, dtype=np.float64), np.asarray(width, dtype=np.float64)
    return np.minimum(np.minimum(row, height - row), np.minimum(col, width - col))


def match_copies(
    new: Copies, old: Copies, *, radius_m: float, pass_window_s: float
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """One-to-one pairs ``(i_new, j_old)`` of copies of one vessel (mutual nearest within the limits).

    Returns
    -------
    (i_new, j_old) : tuple of int ndarray
        Indices into ``new`` and ``old``, sorted by ``i_new``.
    """
    empty = np.zeros(0, dtype=np.int64)
    if len(new) == 0 or len(old) == 0:
        return empty, empty
    chord = 2.0 * np.sin(0.5 * radius_m / 1000.0 / EARTH_RADIUS_KM) * (1.0 + 1e-9)
    new_xyz = to_unit_vectors(new.lon, new.lat)
    old_xyz = to_unit_vectors(old.lon, old.lat)
    _, j_of_new = cKDTree(old_xyz).query(new_xyz, k=1, distance_upper_bound=chord)
    _, i_of_old = cKDTree(new_xyz).query(old_xyz, k=1, distance_upper_bound=chord)
    i = np.flatnonzero(j_of_new < len(old))
    j = j_of_new[i]
    mutual = i_of_old[j] == i
    i, j = i[mutual], j[mutual]
    with np.errstate(invalid="ignore"):
        same_pass = np.abs(new.acquired_s[i] - old.acquired_s[j]) <= pass_window_s  # NaN time: False
    close = distance_km(new.lon[i], new.lat[i], old.lon[j], old.lat[j]) * 1000.0 <= radius_m
    other_scene = new.scene_id[i] != old.scene_id[j]
    keep = same_pass & close & other_scene
    return i[keep].astype(np.int64), j[keep].astype(np.int64)


def resolve_copies(new: Copies, old: Copies, *, radius_m: float, pass_window_s: float) -> OverlapDecision:
    """Decide which copy of each vessel to keep: the one farther from its scene edge, then the smaller scene id."""
    i, j = match_copies(new, old, radius_m=radius_m, pass_window_s=pass_window_s)
    drop_new = np.zeros(len(new), dtype=bool)
    drop_old: list[str] = []
    pairs: list[tuple[str, str]] = []
    for a, b in zip(i.tolist(), j.tolist()):
        new_key = (-new.edge_px[a], str(new.scene_id[a]))
        old_key = (-old.edge_px[b], str(old.scene_id[b]))
        if new_key < old_key:
            drop_old.append(str(old.detection_id[b]))
        else:
            drop_new[a] = True
        pairs.append((str(new.detection_id[a]), str(old.detection_id[b])))
    return OverlapDecision(drop_new, drop_old, pairs)

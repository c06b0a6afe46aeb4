"""Points on the sphere as 3-D unit vectors (the representation every index in :mod:`geo` uses).

Unit vectors have no antimeridian and no pole singularity: the straight-line (chord) distance
between two unit vectors is a monotonic function of their great-circle angle, so Euclidean
k-d trees on unit vectors answer great-circle questions exactly once the angle is recovered.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def to_unit_vectors(lon: ArrayLike, lat: ArrayLike) -> FloatArray:
    """Unit vectors ``(..., 3)`` (x towards lon 0 on the equator, z towards the north pole).

    ``lon`` and ``lat`` are degrees and broadcast against each other; no validation is done here.

    Examples
    --------
    >>> to_unit_vectors([0.0, 90.0], [0.0, 0.0]).round(12)
    array([[1., 0., 0.],
           [0., 1., 0.]])
    >>> to_unit_vectors(123.0, 90.0).round(12) + 0.0  # every longitude of the pole is the same point
    array([0., 0., 1.])
    """
    lon_rad = np.radians(np.asarray(lon, dtype=np.float64))
    lat_rad = np.radians(np.asarray(lat, dtype=np.float64))
    lon_rad, lat_rad = np.broadcast_arrays(lon_rad, lat_rad)
    cos_lat = np.cos(lat_rad)
    out = np.empty(lon_rad.shape + (3,), dtype=np.float64)
    out[..., 0] = cos_lat * np.cos(lon_rad)
    out[..., 1] = cos_lat * np.sin(lon_rad)
    out[..., 2] = np.sin(lat_rad)
    return out


def from_unit_vectors(xyz: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """``(lon, lat)`` in degrees of vectors ``(..., 3)`` (need not be normalised); lon in ``[-180, 180)``.

    Examples
    --------
    >>> lon, lat = from_unit_vectors([[0.0, -2.0, 0.0], [0.0, 0.0, 1.0]])
    >>> lon.tolist(), lat.tolist()
    ([-90.0, 0.0], [0.0, 90.0])
    """
    v = np.asarray(xyz, dtype=np.float64)
    lon = np.degrees(np.arctan2(v[..., 1], v[..., 0]))
    lat = np.degrees(np.arctan2(v[..., 2], np.hypot(v[..., 0], v[..., 1])))
    lon = np.where(lon >= 180.0, lon - 360.0, lon)
    return lon, lat


def angle_between(a: ArrayLike, b: ArrayLike) -> FloatArray:
    """Great-circle angle in radians between unit vectors ``a`` and ``b`` (``(..., 3)``, broadcast).

    Uses ``atan2(|a x b|, a . b)``, accurate for tiny and for near-antipodal angles alike.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    cross = np.cross(a, b)
    return np.arctan2(np.sqrt(np.einsum("...i,...i->...", cross, cross)), np.einsum("...i,...i->...", a, b))


def chord_from_angle(angle_rad: ArrayLike) -> FloatArray:
    """Chord length between unit vectors separated by ``angle_rad`` (``2 sin(angle / 2)``)."""
    return 2.0 * np.sin(0.5 * np.minimum(np.asarray(angle_rad, dtype=np.float64), np.pi))


def angle_from_chord(chord: ArrayLike) -> FloatArray:
    """Great-circle angle in radians of a chord between unit vectors (``2 asin(chord / 2)``)."""
    return 2.0 * np.arcsin(np.clip(0.5 * np.asarray(chord, dtype=np.float64), 0.0, 1.0))

"""Differences between undirected axes (bearings modulo 180°), degrees."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["axis_difference_deg"]


def axis_difference_deg(a_deg: ArrayLike, b_deg: ArrayLike) -> NDArray[np.float64]:
    """Angle between two undirected axes (or a bearing and an axis), degrees in [0, 90].

    Both are bearings in degrees, either direction along an axis counts as the same axis:
    ``axis_difference_deg(272, 90)`` is 2. NaN where either is NaN. Broadcasts like numpy.

    >>> axis_difference_deg([272.0, 45.0, 0.0], [90.0, 135.0, 179.0]).tolist()
    [2.0, 90.0, 1.0]
    """
    d = np.mod(np.asarray(a_deg, dtype=np.float64) - np.asarray(b_deg, dtype=np.float64), 180.0)
    return np.minimum(d, 180.0 - d)

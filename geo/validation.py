"""Validation of coordinate inputs shared by every ``geo`` function.

Latitudes must be finite and within ``[-90, 90]``; longitudes must be finite and are wrapped to
``[-180, 180)``. Errors are :class:`vesselwatch.errors.InputError` and name the input and the
offending row indices, so a bad row in a million-point batch can be found.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from vesselwatch.errors import InputError

_MAX_ROWS_NAMED = 10


def _row_list(bad: NDArray[np.bool_]) -> str:
    rows = np.flatnonzero(bad.ravel())
    shown = ", ".join(str(int(r)) for r in rows[:_MAX_ROWS_NAMED])
    more = f" and {rows.size - _MAX_ROWS_NAMED} more" if rows.size > _MAX_ROWS_NAMED else ""
    return f"rows [{shown}]{more}"


def check_lat(lat: ArrayLike, name: str = "lat") -> NDArray[np.float64]:
    """Return ``lat`` as float64 after checking it is finite and within ``[-90, 90]`` degrees.

    Raises
    ------
    InputError
        If any value is NaN, infinite or outside ``[-90, 90]``; the message names ``name`` and the
        (flattened) row indices.

    Examples
    --------
    >>> check_lat([0, 90, -90.0])
    array([  0.,  90., -90.])
    >>> check_lat([10, 91, float("nan")])
    Traceback (most recent call last):
    ...
    vesselwatch.errors.InputError: lat must be finite and within [-90, 90] degrees; bad values at rows [1, 2]
    """
    values = np.asarray(lat, dtype=np.float64)
    bad = ~(np.abs(values) <= 90.0)  # also catches NaN
    if bad.any():
        raise InputError(f"{name} must be finite and within [-90, 90] degrees; bad values at {_row_list(bad)}")
    return values


def wrap_lon(lon: ArrayLike, name: str = "lon") -> NDArray[np.float64]:
    """Return ``lon`` as float64 wrapped to ``[-180, 180)`` degrees after checking it is finite.

    Values already in range are returned unchanged (bit for bit), so wrapping never moves a point.

    Raises
    ------
    InputError
        If any value is NaN or infinite.

    Examples
    --------
    >>> wrap_lon([180.0, -180.0, 190.0, -190.0, 540.0, 12.5])
    array([-180. , -180. , -170. ,  170. , -180. ,   12.5])
    >>> wrap_lon([0.0, float("inf")])
    Traceback (most recent call last):
    ...
    vesselwatch.errors.InputError: lon must be finite; bad values at rows [1]
    """
    values = np.asarray(lon, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise InputError(f"{name} must be finite; bad values at {_row_list(bad)}")
    outside = (values < -180.0) | (values >= 180.0)
    if outside.any():
        values = np.where(outside, (values + 180.0) % 360.0 - 180.0, values)
        # the modulo of a value just below -180 can round up to exactly 180.0
        values = np.where(values >= 180.0, values - 360.0, values)
    return values


def check_lon_lat(lon: ArrayLike, lat: ArrayLike, prefix: str = "") -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Validate a ``(lon, lat)`` pair of arrays: wrapped longitudes and checked latitudes, in that order."""
    return wrap_lon(lon, f"{prefix}lon"), check_lat(lat, f"{prefix}lat")


def check_nonnegative(value: ArrayLike, name: str) -> NDArray[np.float64]:
    """Return ``value`` as float64 after checking it is finite and ``>= 0`` (distances, radii)."""
    values = np.asarray(value, dtype=np.float64)
    bad = ~(values >= 0.0) | ~np.isfinite(values)
    if bad.any():
        raise InputError(f"{name} must be finite and >= 0; bad values at {_row_list(bad)}")
    return values


def check_finite(value: ArrayLike, name: str) -> NDArray[np.float64]:
    """Return ``value`` as float64 after checking every element is finite (headings, angles)."""
    values = np.asarray(value, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise InputError(f"{name} must be finite; bad values at {_row_list(bad)}")
    return values

"""Great-circle measurements on the sphere of radius :data:`geo.earth.EARTH_RADIUS_KM`.

Every function takes scalars or arrays that broadcast like NumPy ufuncs, in ``lon, lat`` axis
order (as GeoJSON and ``pyproj.Geod``), degrees in, kilometres or degrees out. Inputs are validated
(:mod:`geo.validation`): latitudes outside ``[-90, 90]``, NaN or inf raise
:class:`vesselwatch.errors.InputError` naming the rows.

Distances use the haversine ``asin`` form with the argument clipped to ``[0, 1]``: exact to
rounding near zero, and within a few centimetres of the true value even for antipodal points.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from geo.earth import EARTH_RADIUS_KM
from geo.unit_vectors import angle_between, from_unit_vectors, to_unit_vectors
from geo.validation import check_finite, check_lon_lat, check_nonnegative

FloatArray = NDArray[np.float64]

__all__ = ["distance_km", "initial_bearing_deg", "destination_point", "cross_track_distance_km"]


def haversine_angle_rad(
    lon1_rad: FloatArray, lat1_rad: FloatArray, cos_lat1: FloatArray,
    lon2_rad: FloatArray, lat2_rad: FloatArray, cos_lat2: FloatArray,
) -> FloatArray:
    """Central angle (radians) by the haversine formula from radians and precomputed ``cos(lat)``.

    The one kernel behind :func:`distance_km` and the nearest-platform index, so both produce
    bit-identical distances (ties are decided by exact equality of these values).
    """
    sin_half_dlat = np.sin(0.5 * (lat2_rad - lat1_rad))
    sin_half_dlon = np.sin(0.5 * (lon2_rad - lon1_rad))
    h = sin_half_dlat * sin_half_dlat + cos_lat1 * cos_lat2 * (sin_half_dlon * sin_half_dlon)
    return 2.0 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def distance_km(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> FloatArray:
    """Great-circle (haversine) distance in km between ``(lon1, lat1)`` and ``(lon2, lat2)``.

    Parameters
    ----------
    lon1, lat1, lon2, lat2 : array_like
        Degrees; broadcast together. Longitudes may be any finite value.

    Returns
    -------
    ndarray of float64
        Distance in kilometres on the sphere of radius 6371.0088 km.

    Examples
    --------
    >>> float(distance_km(0, 0, 0, 0))
    0.0
    >>> round(float(distance_km(179.5, 0, -179.5, 0)), 3)  # across the antimeridian
    111.195
    >>> round(float(distance_km(0, 90, 123, 90)), 9)  # the pole has every longitude
    0.0
    >>> round(float(distance_km(0, 0, 180, 0)), 3)  # antipodes: half the circumference
    20015.114
    >>> distance_km(0, 0, [0, 1], 0).round(3)  # broadcasting
    array([  0.   , 111.195])
    """
    lon1, lat1 = check_lon_lat(lon1, lat1, "first point ")
    lon2, lat2 = check_lon_lat(lon2, lat2, "second point ")
    lat1_rad, lat2_rad = np.radians(lat1), np.radians(lat2)
    angle = haversine_angle_rad(
        np.radians(lon1), lat1_rad, np.cos(lat1_rad), np.radians(lon2), lat2_rad, np.cos(lat2_rad)
    )
    return EARTH_RADIUS_KM * angle


def initial_bearing_deg(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> FloatArray:
    """Initial bearing (degrees clockwise from true north, ``[0, 360)``) of the great circle 1 -> 2.

    Identical points give 0. At a pole the bearing is the limit along the meridian ``lon1``.

    Examples
    --------
    >>> initial_bearing_deg(0, 0, [0, 1, 0, -1], [1, 0, -1, 0]).tolist()
    [0.0, 90.0, 180.0, 270.0]
    >>> float(initial_bearing_deg(179.5, 0, -179.5, 0))  # east across the antimeridian
    90.0
    """
    lon1, lat1 = check_lon_lat(lon1, lat1, "first point ")
    lon2, lat2 = check_lon_lat(lon2, lat2, "second point ")
    lat1_rad, lat2_rad = np.radians(lat1), np.radians(lat2)
    dlon = np.radians(lon2) - np.radians(lon1)
    y = np.sin(dlon) * np.cos(lat2_rad)
    x = np.cos(lat1_rad) * np.sin(lat2_rad) - np.sin(lat1_rad) * np.cos(lat2_rad) * np.cos(dlon)
    bearing = np.degrees(np.arctan2(y, x)) % 360.0
    return np.where(bearing >= 360.0, 0.0, bearing) + 0.0  # + 0.0 turns -0.0 into 0.0


def destination_point(
    lon: ArrayLike, lat: ArrayLike, bearing_deg: ArrayLike, distance_km: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """The point reached by travelling ``distance_km`` along the great circle starting at ``bearing_deg``.

    Returns
    -------
    (lon, lat) : tuple of ndarray
        Degrees, lon wrapped to ``[-180, 180)``.

    Examples
    --------
    >>> lon, lat = destination_point(179.5, 0.0, 90.0, 6371.0088 * np.pi / 180)
    >>> round(float(lon), 9), round(float(lat), 9)
    (-179.5, 0.0)
    >>> lon, lat = destination_point(0.0, 89.0, 0.0, 222.38)  # over the pole
    >>> round(float(lon), 6), round(float(lat), 3)
    (-180.0, 89.0)
    """
    lon, lat = check_lon_lat(lon, lat)
    bearing = np.radians(check_finite(bearing_deg, "bearing_deg"))
    delta = check_nonnegative(distance_km, "distance_km") / EARTH_RADIUS_KM
    lat_rad, lon_rad = np.radians(lat), np.radians(lon)
    # start vector, local east and north unit vectors; exact for any distance and at the poles
    start = to_unit_vectors(lon, lat)
    east = np.stack(np.broadcast_arrays(-np.sin(lon_rad), np.cos(lon_rad), np.zeros_like(lon_rad)), axis=-1)
    north = np.stack(
        np.broadcast_arrays(-np.sin(lat_rad) * np.cos(lon_rad), -np.sin(lat_rad) * np.sin(lon_rad), np.cos(lat_rad)),
        axis=-1,
    )
    direction = np.cos(bearing)[..., None] * north + np.sin(bearing)[..., None] * east
    end = np.cos(delta)[..., None] * start + np.sin(delta)[..., None] * direction
    out_lon, out_lat = from_unit_vectors(end)
    return out_lon, out_lat


def cross_track_distance_km(
    lon: ArrayLike, lat: ArrayLike, lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike
) -> FloatArray:
    """Signed distance (km) from a point to the great circle through points 1 and 2.

    Positive when the point lies to the right of the direction 1 -> 2, negative to the left; NaN
    when points 1 and 2 coincide (the great circle is undefined).

    Examples
    --------
    >>> round(float(cross_track_distance_km(10, -1, 0, 0, 20, 0)), 3)  # south of an eastward path
    111.195
    >>> round(float(cross_track_distance_km(10, 1, 0, 0, 20, 0)), 3)
    -111.195
    >>> bool(np.isnan(cross_track_distance_km(10, 1, 5, 5, 5, 5)))
    True
    """
    lon, lat = check_lon_lat(lon, lat)
    lon1, lat1 = check_lon_lat(lon1, lat1, "first point ")
    lon2, lat2 = check_lon_lat(lon2, lat2, "second point ")
    q = to_unit_vectors(lon, lat)
    normal = np.cross(to_unit_vectors(lon1, lat1), to_unit_vectors(lon2, lat2))
    norm = np.sqrt(np.einsum("...i,...i->...", normal, normal))
    with np.errstate(invalid="ignore", divide="ignore"):
        unit_normal = normal / norm[..., None]
        # angle between q and the plane of the great circle, as pi/2 minus angle to the (left) normal
        angle = 0.5 * np.pi - angle_between(q, unit_normal)
    return np.where(norm > 0.0, -angle * EARTH_RADIUS_KM, np.nan)
